// Time for the runtime: CLOCK_MONOTONIC nanoseconds for deadlines (timers, sleeps), and a cheaper cycle
// counter for the per-task stall check, which runs after every task and so must not cost a vDSO call (about
// 25 ns on a kvm-clock VM, against about 10 ns for rdtsc).
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

// Ticks per microsecond, measured once per process against CLOCK_MONOTONIC (about 2 ms the first time).
double ticks_per_us() noexcept;

}  // namespace moirai
