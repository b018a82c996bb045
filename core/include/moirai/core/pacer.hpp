// Keeping to a schedule of intended send times (a load generator, a paced publisher, a replay at the rate it
// was recorded): a timed sleep for most of each wait, woken early by a margin, then yields for the last
// stretch, so that the send leaves on its time whatever a timed wake-up costs on the host (a sleeping shard
// may wake tens of microseconds late on a virtual machine; a spinning shard's timer fires within about a
// microsecond), while the shard's other tasks still run between the laps of the spin. The margin is learned:
// the recent worst lateness of the sleeps, decaying.
#pragma once

#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdint>

#include "moirai/core/clock.hpp"
#include "moirai/core/cpu_relax.hpp"
#include "moirai/core/task.hpp"
#include "moirai/core/timer.hpp"

namespace moirai {

class WakeMargin {
 public:
  // How early to wake before a deadline.
  std::int64_t ns() const noexcept { return worst_ns_ + kPadNs; }
  // A sleep meant to end at `target_ns` ended at `woke_ns`.
  void learn(std::int64_t target_ns, std::int64_t woke_ns) noexcept {
    worst_ns_ -= worst_ns_ / kDecay;
    // A wake-up held off by the host for milliseconds says little about the next one: counted up to a cap,
    // so that one such stall does not turn the next hundreds of waits into spins.
    const std::int64_t late = std::clamp<std::int64_t>(woke_ns - target_ns, 0, kLearnCapNs);
    worst_ns_ = std::max(worst_ns_, late);
  }

  static constexpr std::int64_t kPadNs = 2'000;
  static constexpr std::int64_t kDecay = 64;  // the worst lateness loses 1/64 at each sleep
  static constexpr std::int64_t kLearnCapNs = 200'000;
  static constexpr std::int64_t kInitialNs = 50'000;  // until the first sleeps are measured

 private:
  std::int64_t worst_ns_ = kInitialNs;
};

// On a shard: returns at `deadline_ns` (CLOCK_MONOTONIC) or just after, never before; sleeps until
// margin.ns() before it (and learns how late that sleep woke), then yields until it is there.
inline Task<void> pace_until(std::int64_t deadline_ns, WakeMargin& margin) {
  const std::int64_t now = monotonic_ns();
  const std::int64_t wake_ns = deadline_ns - margin.ns();
  if (wake_ns > now) {
    co_await sleep_for(std::chrono::nanoseconds(wake_ns - now));
    margin.learn(wake_ns, monotonic_ns());
  }
  while (monotonic_ns() < deadline_ns)
    co_await yield();
}

// The same off a shard, for a plain thread (a baseline's sender): the kernel's timer (clock_nanosleep,
// absolute) in place of the shard's, then a spin.
inline void pace_thread_until(std::int64_t deadline_ns, WakeMargin& margin) noexcept {
  const std::int64_t wake_ns = deadline_ns - margin.ns();
  if (wake_ns > monotonic_ns()) {
    const timespec t{static_cast<time_t>(wake_ns / 1'000'000'000),
                     static_cast<long>(wake_ns % 1'000'000'000)};
    while (::clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, nullptr) == EINTR) {
    }
    margin.learn(wake_ns, monotonic_ns());
  }
  while (monotonic_ns() < deadline_ns)
    cpu_relax();
}

}  // namespace moirai
