// The telemetry collector end to end on one host: the collector on every shard of a runtime (one per CPU
// given), and its load on the last shard, pushing over loopback TCP; at the end the load scrapes the metrics
// endpoint and checks that every sample it had acked is in the aggregates it serves. Before them, with both
// CPUs still free, a baseline: the same batches at the same rate from the load's CPU to the collector's first
// over loopback TCP with plain syscalls, folded into an Aggregator (baseline.hpp). What `moirai demo
// telemetry` and `telemetry demo` run.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "baseline.hpp"
#include "collector.hpp"
#include "moirai/core/runtime_options.hpp"
#include "telemetry_load.hpp"

namespace moirai::examples::telemetry {

struct DemoOptions {
  double seconds = 2;
  double rate = 200'000;  // samples per second
  unsigned connections = 16;
  unsigned batch = 20;
  unsigned keys = 256;
  std::vector<int> cpus;  // the collector's shards, the last also running the load (empty: the first two)
  // Spin: the load's shard spins between its sends anyway (pace_until), and a collector shard that slept
  // between batches would add a wake-up (tens of microseconds on a VM) to every one. SCHED_OTHER, so the host
  // stays usable.
  IdleStrategy idle = IdleStrategy::spin;
  // The baseline (baseline.telemetry.tcp_syscall) runs first for min(seconds, baseline_seconds); 0: none.
  double baseline_seconds = 2;
  unsigned baseline_connections = 1;
};

struct DemoResult {
  LoadResult load;
  CollectorSnapshot collector;
  std::string scrape_check;  // "" when the endpoint served every acked sample
  std::unique_ptr<LatencyHistogram> tcp_baseline = std::make_unique<LatencyHistogram>();  // plain syscalls
  TcpBaselineStats baseline;
  bool baseline_ran = false;
};

// Throws moirai::Error for bad options.
DemoResult run_demo(const DemoOptions& options);

}  // namespace moirai::examples::telemetry
