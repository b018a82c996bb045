#include "bench.hpp"

#include <array>

#include "bench_support.hpp"

namespace moirai::cli {

std::span<const LatencyBench* const> latency_benches() {
  static constexpr std::array<const LatencyBench*, 6> benches = {&kPingpongBench, &kTimerBench, &kSpawnBench,
                                                                 &kAllocBench,    &kRtBench,    &kEchoBench};
  return benches;
}

namespace {

// "pingpong, timer, ... or echo".
std::string bench_list() {
  std::string list;
  const std::span<const LatencyBench* const> benches = latency_benches();
  for (std::size_t i = 0; i < benches.size(); ++i) {
    if (i != 0) list += i + 1 == benches.size() ? " or " : ", ";
    list += benches[i]->name;
  }
  return list;
}

}  // namespace

BenchReport run_bench(std::string_view name, const BenchOptions& o) {
  for (const LatencyBench* bench : latency_benches()) {
    if (bench->name != name) continue;
    BenchReport r = bench->run(o);
    if (!o.policy.empty()) {
      r.note += "; shards asked for --policy " + detail::bench_policy(o).to_string() +
                " (a refusal is warned on stderr)";
    }
    return r;
  }
  throw Error(Errc::invalid_argument, "unknown bench '" + std::string(name) + "': use " + bench_list());
}

}  // namespace moirai::cli
