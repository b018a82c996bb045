// `moirai bench`: latency distributions of the runtime's primitives, each beside an in-run baseline, because
// on shared machines only ratios measured in the same run mean anything.
#pragma once

#include <chrono>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "caps_option.hpp"
#include "moirai/core/runtime_options.hpp"
#include "report.hpp"

namespace moirai::cli {

struct BenchOptions {
  RunBudget budget;       // count or duration; zero for both means "each bench's default"
  std::vector<int> cpus;  // two CPUs (A for shard 0, B for shard 1); empty: the first two allowed
  std::string idle;       // empty: each bench's own default (spin, or sleep and spin for the timer)
  unsigned inline_io = RuntimeOptions{}.inline_io_per_resumption;  // sends per resumption as syscalls
  std::chrono::nanoseconds busy_poll_after = RuntimeOptions{}.busy_poll_after;
  bool poll_when_idle = true;               // bench echo's sockets: RecvOptions::poll_when_idle
  std::chrono::microseconds interval{100};  // timer bench: sleep interval
  bool progress = false;                    // progress lines on stderr
  std::string policy;   // kernel policy of the shards (and the timer baseline): "fifo:80" etc.; empty: other
  std::string metrics;  // HOST:PORT to serve each bench runtime's metrics at while it runs; empty: off
  CapsOptions caps;     // --keep-caps, --no-drop-caps
};

// One bench: `moirai bench NAME` runs it, and `moirai bench --help` shows its summary. Each is defined in the
// file named after it (pingpong.cpp, timer.cpp, ...).
struct LatencyBench {
  std::string_view name;
  std::string_view summary;
  BenchReport (*run)(const BenchOptions& o);
};

extern const LatencyBench kPingpongBench;
extern const LatencyBench kTimerBench;
extern const LatencyBench kSpawnBench;
extern const LatencyBench kAllocBench;
extern const LatencyBench kRtBench;
extern const LatencyBench kEchoBench;

// Every bench, in the order `moirai bench` runs them.
std::span<const LatencyBench* const> latency_benches();
// Runs the bench called `name` and notes a --policy in its report. Throws Error(invalid_argument) for a name
// no bench has.
BenchReport run_bench(std::string_view name, const BenchOptions& o);

}  // namespace moirai::cli
