// `moirai bench pingpong`: the cross-core round trip of submit_to, from shard 0 to shard 1 and back, beside
// two pinned threads bouncing one cache line between the same two CPUs: the physical limit of any round trip
// between them.
#include <memory>
#include <string>

#include "baselines.hpp"
#include "bench.hpp"
#include "bench_support.hpp"
#include "metrics_option.hpp"
#include "moirai/core/runtime.hpp"
#include "moirai/core/submit.hpp"

namespace moirai::cli {
namespace {

using namespace detail;

void moirai_pingpong(const BenchOptions& o, int a, int b, IdleStrategy idle, const RunBudget& budget,
                     LatencyHistogram& hist) {
  RuntimeOptions ro = bench_runtime(o, {a, b}, idle);
  Runtime rt(ro);
  rt.run([&]() -> Task<void> {
    serve_metrics_if_asked(o.metrics);
    for (int i = 0; i < 1000; ++i)
      co_await submit_to(1, [] { return 0; });
    TimedPasses passes(budget);
    for (std::uint64_t i = 0; passes.next(i); ++i) {
      co_await submit_to(1, [] { return 0; });
      passes.record(hist);
    }
  });
}

BenchReport bench_pingpong(const BenchOptions& o) {
  const auto [a, b] = two_cpus(o);
  const RunBudget budget = or_default(o.budget, 200'000);
  const IdleStrategy idle = idle_or(o, IdleStrategy::spin);
  auto base = std::make_unique<LatencyHistogram>();
  auto mine = std::make_unique<LatencyHistogram>();
  for (unsigned round = 0; round < kRounds; ++round) {
    progress(o, "pingpong: baseline.cacheline");
    cacheline_pingpong(a, b, share(budget, kRounds), *base);
    progress(o, "pingpong: moirai.submit_to");
    moirai_pingpong(o, a, b, idle, share(budget, kRounds), *mine);
  }
  BenchReport r;
  r.bench = "pingpong";
  r.rows.push_back(summarize("baseline.cacheline", *base));
  r.rows.push_back(summarize("moirai.submit_to", *mine));
  r.note = "round trip shard " + std::to_string(a) + " -> " + std::to_string(b) + " and back; idle " +
           to_string(idle) + "; baseline: two pinned threads bouncing one cache line";
  return r;
}

}  // namespace

const LatencyBench kPingpongBench{"pingpong", "Cross-core submit_to round trip vs. a bounced cache line",
                                  bench_pingpong};

}  // namespace moirai::cli
