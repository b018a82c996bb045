// Shared-memory IPC round trip between two processes (a forked echo child on CPU 1, a one-shard runtime on
// CPU 0, both spinning) beside its physical limit measured in the same run: two pinned threads bouncing one
// cache line. Compare the two means; only their ratio means anything on a shared host.
#include <benchmark/benchmark.h>
#include <pthread.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "moirai/core/cpu_relax.hpp"
#include "moirai/core/runtime.hpp"
#include "moirai/transport/ipc.hpp"

namespace {

using namespace moirai::transport;

void pin_self(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

void unpin_self() {
  cpu_set_t set;
  CPU_ZERO(&set);
  for (int c = 0; c < CPU_SETSIZE; ++c)
    CPU_SET(c, &set);
  pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

void BM_CachelineBounce(benchmark::State& state) {
  struct alignas(64) Line {
    std::atomic<std::uint64_t> value{0};
  } line;
  constexpr std::uint64_t kStop = ~0ull;
  std::thread responder([&line] {
    pin_self(1);
    for (std::uint64_t expected = 1;; expected += 2) {
      std::uint64_t seen;
      while ((seen = line.value.load(std::memory_order_acquire)) != expected) {
        if (seen == kStop) return;
        moirai::cpu_relax();
      }
      line.value.store(expected + 1, std::memory_order_release);
    }
  });
  pin_self(0);
  std::uint64_t n = 0;
  for (auto _ : state) {
    line.value.store(n + 1, std::memory_order_release);
    while (line.value.load(std::memory_order_acquire) != n + 2)
      moirai::cpu_relax();
    n += 2;
  }
  line.value.store(kStop, std::memory_order_release);
  responder.join();
  unpin_self();
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

BENCHMARK(BM_CachelineBounce)->MinTime(0.5);
BENCHMARK(BM_IpcRoundTrip)->Arg(48)->Arg(64)->MinTime(0.5);
BENCHMARK(BM_CachelineBounce)->MinTime(0.5);
