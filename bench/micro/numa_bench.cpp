// Allocation and "where am I" costs of the numa module against their baselines (malloc, sched_getcpu). On a
// shared host only ratios within one run mean anything.
#include <benchmark/benchmark.h>
#include <sched.h>

#include <cstdlib>
#include <moirai/numa/current_node.hpp>
#include <moirai/numa/node_pool.hpp>
#include <moirai/numa/numa_aware_pool.hpp>
#include <moirai/numa/topology.hpp>

namespace {

using namespace moirai::numa;

void BM_Malloc64_AllocFree(benchmark::State& state) {
  for (auto _ : state) {
    void* p = std::malloc(64);
    benchmark::DoNotOptimize(p);
    std::free(p);
    benchmark::ClobberMemory();
  }
}
BENCHMARK(BM_Malloc64_AllocFree);

void BM_NodePool64_AllocFree(benchmark::State& state) {
  NodePool pool(0, 64, 4096, {.checked = false});
  for (auto _ : state) {
    void* p = pool.allocate();
    benchmark::DoNotOptimize(p);
    pool.deallocate(p);
    benchmark::ClobberMemory();
  }
}
BENCHMARK(BM_NodePool64_AllocFree);

void BM_NodePool64_Checked_AllocFree(benchmark::State& state) {
  NodePool pool(0, 64, 4096, {.checked = true});
  for (auto _ : state) {
    void* p = pool.allocate();
    benchmark::DoNotOptimize(p);
    pool.deallocate(p);
    benchmark::ClobberMemory();
  }
}
BENCHMARK(BM_NodePool64_Checked_AllocFree);

void BM_NumaAwarePool64_AllocFree(benchmark::State& state) {
  NumaAwarePool pool(Topology::system(), 64, 4096, 0, {.checked = false});
  for (auto _ : state) {
    void* p = pool.allocate();
    benchmark::DoNotOptimize(p);
    pool.deallocate(p);
    benchmark::ClobberMemory();
  }
}
BENCHMARK(BM_NumaAwarePool64_AllocFree);

// Batches of 64 allocations then 64 frees: exercises the magazine's refill and spill (one CAS per 16 blocks).
void BM_NumaAwarePool64_Batch64(benchmark::State& state) {
  NumaAwarePool pool(Topology::system(), 64, 4096, 0, {.checked = false});
  void* blocks[64];
  for (auto _ : state) {
    for (void*& p : blocks)
      p = pool.allocate();
    benchmark::DoNotOptimize(blocks);
    for (void* p : blocks)
      pool.deallocate(p);
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * 64);
}
BENCHMARK(BM_NumaAwarePool64_Batch64);

void BM_Malloc64_Batch64(benchmark::State& state) {
  void* blocks[64];
  for (auto _ : state) {
    for (void*& p : blocks)
      p = std::malloc(64);
    benchmark::DoNotOptimize(blocks);
    for (void* p : blocks)
      std::free(p);
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * 64);
}
BENCHMARK(BM_Malloc64_Batch64);

void BM_CurrentNumaNode(benchmark::State& state) {
  for (auto _ : state)
    benchmark::DoNotOptimize(current_numa_node());
}
BENCHMARK(BM_CurrentNumaNode);

void BM_CurrentCpu(benchmark::State& state) {
  for (auto _ : state)
    benchmark::DoNotOptimize(current_cpu());
}
BENCHMARK(BM_CurrentCpu);

void BM_SchedGetcpu(benchmark::State& state) {
  for (auto _ : state)
    benchmark::DoNotOptimize(sched_getcpu());
}
BENCHMARK(BM_SchedGetcpu);

void BM_CurrentNumaNode_GetcpuFallback(benchmark::State& state) {
  detail::force_getcpu_for_testing(true);
  for (auto _ : state)
    benchmark::DoNotOptimize(current_numa_node());
  detail::force_getcpu_for_testing(false);
}
BENCHMARK(BM_CurrentNumaNode_GetcpuFallback);

}  // namespace
