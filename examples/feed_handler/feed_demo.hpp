// The feed handler end to end on one host: the handler on a runtime of its own (the first CPU), the generator
// and a TCP subscriber on another runtime's one shard (the second CPU), and a strategy process (forked before
// the runtimes start, on the second CPU) reading the handler's IPC channel. Each role waits its own way when
// idle: the handler has a CPU to itself and spins; the load and the strategy share the other CPU, so the
// strategy sleeps (a futex wake-up through its ring) instead of taking that CPU from the generator, and the
// generator sleeps between its sends and spins only the last stretch before each. Before them, a baseline:
// the same packets over UDP multicast between the same two CPUs with plain syscalls (baseline.hpp).
// What `moirai demo feed` and `feed_handler demo` run.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "baseline.hpp"
#include "feed_handler.hpp"
#include "load.hpp"
#include "moirai/core/histogram.hpp"
#include "moirai/core/runtime_options.hpp"

namespace moirai::examples::feed {

struct DemoOptions {
  double seconds = 2;
  double rate = 100'000;           // quotes per second
  unsigned quotes_per_packet = 8;  // 12,500 packets a second at the default rate
  unsigned burst = 1;
  std::uint32_t symbols = 64;
  std::uint64_t skip_every = 0;  // the generator leaves out every n-th packet (a gap to detect)
  std::vector<int> cpus;         // two CPUs: the handler's, then the load's (empty: the first two allowed)
  std::string group = "239.255.0.1";
  std::string interface = "127.0.0.1";
  bool strategy = true;  // fork the IPC strategy process
  // How each role's shard waits when it has nothing to do.
  IdleStrategy handler_idle = IdleStrategy::spin;
  IdleStrategy load_idle = IdleStrategy::sleep;
  IdleStrategy strategy_idle = IdleStrategy::sleep;
  // The baseline (baseline.feed.udp_syscall) runs first for min(seconds, baseline_seconds); 0: none.
  double baseline_seconds = 2;
};

// Percentiles of a distribution measured in another process.
struct Figures {
  std::uint64_t count = 0, p50 = 0, p90 = 0, p99 = 0, p999 = 0, p9999 = 0, max = 0;
};
Figures figures_of(const LatencyHistogram& h) noexcept;

struct DemoResult {
  std::unique_ptr<LatencyHistogram> tick_to_publish = std::make_unique<LatencyHistogram>();  // TCP subscriber
  std::unique_ptr<LatencyHistogram> udp_baseline = std::make_unique<LatencyHistogram>();     // plain syscalls
  UdpBaselineStats baseline;
  bool baseline_ran = false;
  Figures tick_to_strategy;  // the IPC strategy process
  GeneratorStats generator;
  FeedStats feed;
  ConsumerStats subscriber;
  ConsumerStats strategy;
  bool strategy_ran = false;
  double seconds() const noexcept {
    return static_cast<double>(generator.ended_ns - generator.started_ns) / 1e9;
  }
};

// Throws moirai::Error for bad options and for a strategy process that failed.
DemoResult run_demo(const DemoOptions& options);

}  // namespace moirai::examples::feed
