#include "moirai/core/clock.hpp"

#include <thread>

namespace moirai {

double ticks_per_us() noexcept {
  static const double rate = [] {
#if defined(__x86_64__)
    // Two readings of both clocks 2 ms apart: the counter is invariant (constant_tsc) on any CPU Moirai
    // targets, so the ratio is good to 0.1%, plenty for a stall budget.
    const std::int64_t n0 = monotonic_ns();
    const std::uint64_t t0 = ticks();
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    const std::int64_t n1 = monotonic_ns();
    const std::uint64_t t1 = ticks();
    const double us = static_cast<double>(n1 - n0) / 1000.0;
    return us > 0 ? static_cast<double>(t1 - t0) / us : 1000.0;
#else
    return 1000.0;
#endif
  }();
  return rate;
}

}  // namespace moirai
