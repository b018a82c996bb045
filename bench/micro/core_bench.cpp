// Micro-figures of the core's building blocks, each beside the obvious alternative in the same binary:
// frame allocation vs malloc, timer arm+cancel, and a local spawn+join on a live shard.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <vector>

#include "moirai/core/detail/frame_allocator.hpp"
#include "moirai/core/detail/timer_queue.hpp"
#include "moirai/core/runtime.hpp"
#include "moirai/core/spawn.hpp"

namespace {

void BM_FrameAllocateFree(benchmark::State& state) {
  moirai::detail::FrameAllocator alloc;
  moirai::detail::t_frame_allocator = &alloc;
  for (auto _ : state) {
    void* p = alloc.allocate(static_cast<std::size_t>(state.range(0)));
    benchmark::DoNotOptimize(p);
    moirai::detail::FrameAllocator::deallocate(p);
  }
  moirai::detail::t_frame_allocator = nullptr;
}
BENCHMARK(BM_FrameAllocateFree)->Arg(64)->Arg(512);

void BM_MallocFree(benchmark::State& state) {
  for (auto _ : state) {
    void* p = std::malloc(static_cast<std::size_t>(state.range(0)));
    benchmark::DoNotOptimize(p);
    std::free(p);
  }
}
BENCHMARK(BM_MallocFree)->Arg(64)->Arg(512);

void BM_TimerArmCancel(benchmark::State& state) {
  moirai::detail::TimerQueue q;
  std::vector<moirai::detail::TimerEntry> background(static_cast<std::size_t>(state.range(0)));
  for (std::size_t i = 0; i < background.size(); ++i) {
    background[i].deadline = static_cast<std::int64_t>(i * 7919 % 100'000);
    q.arm(&background[i]);
  }
  moirai::detail::TimerEntry e;
  std::int64_t d = 0;
  for (auto _ : state) {
    e.deadline = (d += 4099) % 100'000;
    q.arm(&e);
    q.cancel(&e);
  }
}
BENCHMARK(BM_TimerArmCancel)->Arg(0)->Arg(1000)->Arg(100'000);

moirai::Task<void> empty() {
  co_return;
}

// stall_check 1: the stall check on (the default), which reads the cycle counter after every resumption;
// 0: off. metrics 1: the latency histograms on (off is the default), which read it again as each task becomes
// ready; 0: off.
void BM_SpawnJoinOnAShard(benchmark::State& state) {
  moirai::RuntimeOptions o;
  o.cpus = {0};
  if (state.range(0) == 0) o.stall_budget = std::chrono::nanoseconds(0);
  o.metrics = state.range(1) != 0;
  moirai::Runtime rt(o);
  rt.run([&]() -> moirai::Task<void> {
    for (auto _ : state)
      co_await moirai::spawn(empty()).join();
  });
}
BENCHMARK(BM_SpawnJoinOnAShard)->ArgsProduct({{1, 0}, {1, 0}})->ArgNames({"stall_check", "metrics"});

}  // namespace
