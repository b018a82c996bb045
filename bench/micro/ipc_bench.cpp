// Shared-memory IPC round trip between two processes (a forked echo child on CPU 1, a one-shard runtime on
// CPU 0, both spinning) beside its physical limit measured in the same run: two pinned threads bouncing one
// cache line. Compare BM_IpcRoundTrip's time with BM_CachelineBounce's ns_per_trip; only their ratio means
// anything on a shared host.
#include <benchmark/benchmark.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "baselines.hpp"
#include "moirai/core/histogram.hpp"
#include "moirai/core/runtime.hpp"
#include "moirai/transport/ipc.hpp"

namespace {

using namespace moirai::transport;

// The cache-line bounce of `moirai bench` (baseline.cacheline), in batches of kBatch trips: the figure is
// that of the same code the CLI reports, not of a second copy of it. An iteration is a batch (its time the
// batch's trips, not the threads' start); ns_per_trip is the figure to set beside BM_IpcRoundTrip's time.
void BM_CachelineBounce(benchmark::State& state) {
  constexpr std::uint64_t kBatch = 20'000;
  double mean_sum = 0;
  for (auto _ : state) {
    moirai::LatencyHistogram hist;
    moirai::cli::cacheline_pingpong(0, 1, moirai::cli::RunBudget{kBatch, {}}, hist);
    state.SetIterationTime(hist.mean() * static_cast<double>(kBatch) * 1e-9);
    mean_sum += hist.mean();
  }
  state.counters["ns_per_trip"] = benchmark::Counter(mean_sum, benchmark::Counter::kAvgIterations);
}

moirai::RuntimeOptions spinning_shard(int cpu) {
  moirai::RuntimeOptions o;
  o.cpus = {cpu};
  o.idle = moirai::IdleStrategy::spin;
  o.stall_budget = std::chrono::nanoseconds(0);
  return o;
}

void BM_IpcRoundTrip(benchmark::State& state) {
  static int serial = 0;
  const auto bytes = static_cast<std::size_t>(state.range(0));
  const std::string name = "moirai-ipc-bench-" + std::to_string(::getpid()) + "-" + std::to_string(serial++);
  IpcOptions io;
  io.slot_size = static_cast<std::uint32_t>((bytes + 16 + 63) / 64 * 64);
  IpcChannel ch = IpcChannel::create(name, io);
  std::fflush(nullptr);
  const pid_t child = ::fork();
  if (child == 0) {
    moirai::Runtime rt(spinning_shard(1));
    rt.run([&]() -> moirai::Task<void> {
      IpcChannel peer = IpcChannel::open(name, EndpointId{2, 0, 0});
      try {
        for (;;) {
          IpcMessage m = co_await peer.recv();
          while (!peer.try_send(m.payload)) {
          }
        }
      } catch (const TransportError&) {  // the parent closed: done
      }
    });
    ::_exit(0);
  }
  {
    moirai::Runtime rt(spinning_shard(0));
    rt.run([&]() -> moirai::Task<void> {
      std::vector<std::byte> payload(bytes);
      for (int i = 0; i < 1000; ++i) {  // warm-up: the child's runtime is up, the lines have moved
        while (!ch.try_send(payload)) {
        }
        (void)co_await ch.recv();
      }
      for (auto _ : state) {
        while (!ch.try_send(payload)) {
        }
        (void)co_await ch.recv();
      }
      ch.close();
    });
  }
  ch.close();
  ::waitpid(child, nullptr, 0);
}

}  // namespace

BENCHMARK(BM_CachelineBounce)->UseManualTime()->MinTime(0.5);
BENCHMARK(BM_IpcRoundTrip)->Arg(48)->Arg(64)->MinTime(0.5);
BENCHMARK(BM_CachelineBounce)->UseManualTime()->MinTime(0.5);
