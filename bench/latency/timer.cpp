// `moirai bench timer`: how late a periodic sleep_for wakes up, beside clock_nanosleep(TIMER_ABSTIME) on the
// same CPU under the same policy (cyclictest's method); with no --idle, also with a spinning shard.
#include <memory>
#include <string>

#include "baselines.hpp"
#include "bench.hpp"
#include "bench_support.hpp"
#include "metrics_option.hpp"
#include "moirai/core/runtime.hpp"
#include "moirai/core/timer.hpp"

namespace moirai::cli {
namespace {

using namespace detail;

void moirai_sleep(const BenchOptions& o, int cpu, IdleStrategy idle, std::chrono::nanoseconds interval,
                  const RunBudget& budget, LatencyHistogram& hist) {
  RuntimeOptions ro = bench_runtime(o, {cpu}, idle);
  Runtime rt(ro);
  rt.run([&]() -> Task<void> {
    serve_metrics_if_asked(o.metrics);
    const std::int64_t start = monotonic_ns();
    std::int64_t target = start;
    for (std::uint64_t i = 0;; ++i) {
      if (budget.done(i, std::chrono::nanoseconds(monotonic_ns() - start))) break;
      target += interval.count();
      co_await sleep_until(std::chrono::steady_clock::time_point(std::chrono::nanoseconds(target)));
      const std::int64_t late = monotonic_ns() - target;
      hist.record(late > 0 ? static_cast<std::uint64_t>(late) : 0);
    }
  });
}

BenchReport bench_timer(const BenchOptions& o) {
  const int cpu = first_cpu(o);
  const std::chrono::nanoseconds interval = o.interval;
  if (interval.count() <= 0) throw Error(Errc::invalid_argument, "--interval-us must be at least 1");
  const RunBudget budget = or_default(o.budget, 5'000);
  const IdleStrategy idle = idle_or(o, IdleStrategy::sleep);
  auto base = std::make_unique<LatencyHistogram>();
  auto mine = std::make_unique<LatencyHistogram>();
  auto spin = std::make_unique<LatencyHistogram>();
  for (unsigned round = 0; round < kRounds; ++round) {
    progress(o, "timer: baseline.clock_nanosleep");
    clock_nanosleep_lateness(cpu, interval, share(budget, kRounds), *base, bench_policy(o));
    progress(o, "timer: moirai.sleep_for");
    moirai_sleep(o, cpu, idle, interval, share(budget, kRounds), *mine);
    if (o.idle.empty()) {
      progress(o, "timer: moirai.sleep_for.spin");
      moirai_sleep(o, cpu, IdleStrategy::spin, interval, share(budget, kRounds), *spin);
    }
  }
  BenchReport r;
  r.bench = "timer";
  r.rows.push_back(summarize("baseline.clock_nanosleep", *base));
  r.rows.push_back(summarize("moirai.sleep_for", *mine));
  if (o.idle.empty()) r.rows.push_back(summarize("moirai.sleep_for.spin", *spin));
  r.note = "wake-up lateness of a " + std::to_string(interval.count() / 1000) + " us periodic sleep on CPU " +
           std::to_string(cpu) + "; moirai.sleep_for idles by '" + to_string(idle) +
           "'; baseline: clock_nanosleep(TIMER_ABSTIME) on the same CPU (cyclictest's method)";
  return r;
}

}  // namespace

const LatencyBench kTimerBench{"timer", "sleep_for wake-up lateness vs. clock_nanosleep", bench_timer};

}  // namespace moirai::cli
