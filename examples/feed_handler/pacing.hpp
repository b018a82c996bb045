// How a sender keeps to a schedule of intended send times: a timed sleep for most of the wait, woken early
// by a margin, and a spin for the last stretch, so that the send leaves on its time whatever a timed wake-up
// costs on this host (on a kvm guest a sleeping thread wakes tens of microseconds late; a spinning shard's
// timer fires within a microsecond). The margin is learned: the recent worst lateness of the sleeps,
// decaying.
#pragma once

#include <algorithm>
#include <cstdint>

namespace moirai::examples::feed {

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

 private:
  static constexpr std::int64_t kPadNs = 2'000;
  static constexpr std::int64_t kDecay = 64;  // the worst lateness loses 1/64 at each sleep
  static constexpr std::int64_t kLearnCapNs = 200'000;
  std::int64_t worst_ns_ = 50'000;  // until the first sleeps are measured
};

}  // namespace moirai::examples::feed
