// `moirai bench`: latency distributions of the runtime's primitives, each beside an in-run baseline, because
// on shared machines only ratios measured in the same run mean anything.
#pragma once

#include <chrono>
#include <string>
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
  bool poll_when_idle = true;               // bench echo's sockets: ReceiveOptions::poll_when_idle
  std::chrono::microseconds interval{100};  // timer bench: sleep interval
  bool progress = false;                    // progress lines on stderr
  std::string policy;   // kernel policy of the shards (and the timer baseline): "fifo:80" etc.; empty: other
  std::string metrics;  // HOST:PORT to serve each bench runtime's metrics at while it runs; empty: off
  CapsOptions caps;     // --keep-caps, --no-drop-caps
};

BenchReport bench_pingpong(const BenchOptions& o);
BenchReport bench_timer(const BenchOptions& o);
BenchReport bench_spawn(const BenchOptions& o);
BenchReport bench_alloc(const BenchOptions& o);
BenchReport bench_rt(const BenchOptions& o);
BenchReport bench_echo(const BenchOptions& o);

// The names `moirai bench NAME` accepts, in the order `moirai bench` runs them.
const std::vector<std::string>& bench_names();
BenchReport run_bench(const std::string& name, const BenchOptions& o);

}  // namespace moirai::cli
