// The timer baseline: cyclictest's method, clock_nanosleep(TIMER_ABSTIME) on a pinned thread.
#include <time.h>

#include <cerrno>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <system_error>

#include "baselines.hpp"
#include "moirai/core/clock.hpp"
#include "pinned_threads.hpp"

namespace moirai::cli {
namespace {

using namespace baselines;

timespec to_timespec(std::int64_t ns) noexcept {
  timespec ts{};
  ts.tv_sec = static_cast<time_t>(ns / 1'000'000'000);
  ts.tv_nsec = static_cast<long>(ns % 1'000'000'000);
  return ts;
}

}  // namespace

void clock_nanosleep_lateness(int cpu, std::chrono::nanoseconds interval, const RunBudget& budget,
                              LatencyHistogram& hist, const rt::ThreadPolicy& policy) {
  if (interval.count() <= 0) {
    throw std::invalid_argument("clock_nanosleep lateness needs a positive interval, got " +
                                std::to_string(interval.count()) + " ns");
  }
  int sleep_error = 0;

  PinnedThread sleeper(cpu, Policy::inherit, [&] {
    if (policy != rt::ThreadPolicy{}) rt::apply_thread_policy(policy);  // refused: the inherited one stays
    const std::int64_t begin = monotonic_ns();
    std::int64_t target = begin;
    std::uint64_t iterations = 0;
    std::chrono::nanoseconds elapsed{0};
    while (!budget.done(iterations, elapsed)) {
      // Absolute targets one interval apart, as cyclictest does: a late wake-up does not shift later targets,
      // so lateness never accumulates into drift.
      target += interval.count();
      const timespec when = to_timespec(target);
      int rc;
      while ((rc = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &when, nullptr)) == EINTR) {
      }
      if (rc != 0) {
        sleep_error = rc;
        return;
      }
      const std::int64_t woke = monotonic_ns();
      hist.record(woke > target ? static_cast<std::uint64_t>(woke - target) : 0);
      ++iterations;
      elapsed = std::chrono::nanoseconds(woke - begin);
    }
  });

  sleeper.start();
  sleeper.join();
  if (sleep_error != 0) {
    throw std::runtime_error("clock_nanosleep on CPU " + std::to_string(cpu) +
                             " failed: " + std::generic_category().message(sleep_error));
  }
}

}  // namespace moirai::cli
