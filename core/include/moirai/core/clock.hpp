// Time for the runtime: CLOCK_MONOTONIC nanoseconds for deadlines (timers, sleeps), and a cheaper cycle
// counter for what is measured around every resumption (the stall check, run times, real-time accounting),
// where a clock_gettime through the vDSO would cost several times a read of the counter
// (docs/performance.md).
#pragma once

#include <chrono>
#include <cstdint>
#include <ctime>

#if defined(__x86_64__)
#include <x86intrin.h>
#endif

namespace moirai {

using Duration = std::chrono::nanoseconds;

// Nanoseconds on CLOCK_MONOTONIC: the time base of every timer and deadline in Moirai.
inline std::int64_t monotonic_ns() noexcept {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// `now + d` for a deadline, saturating: Duration::max() means "never", not a deadline in the past.
inline std::int64_t deadline_after(Duration d) noexcept {
  const std::int64_t now = monotonic_ns();
  const std::int64_t n = d.count();
  if (n <= 0) return now;
  return n > INT64_MAX - now ? INT64_MAX : now + n;
}

// A free-running tick counter; only differences mean anything. Converted with ticks_per_us().
inline std::uint64_t ticks() noexcept {
#if defined(__x86_64__)
  return __rdtsc();
#else
  return static_cast<std::uint64_t>(monotonic_ns());
#endif
}

// Ticks per microsecond, measured once per process against CLOCK_MONOTONIC (it takes 2 ms the first time).
double ticks_per_us() noexcept;

// Conversions between ticks() differences and nanoseconds, at ticks_per_us(). Negative spans are 0 ticks.
inline std::uint64_t ns_to_ticks(std::int64_t ns) noexcept {
  return ns <= 0 ? 0 : static_cast<std::uint64_t>(static_cast<double>(ns) * ticks_per_us() / 1000.0);
}
inline std::int64_t ticks_to_ns(std::uint64_t t) noexcept {
  return static_cast<std::int64_t>(static_cast<double>(t) / ticks_per_us() * 1000.0);
}

}  // namespace moirai
