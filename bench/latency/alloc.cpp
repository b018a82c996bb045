// `moirai bench alloc`: what a 64-byte allocate+free pair costs from each of Moirai's pools, beside the
// process's own malloc measured in the same run, and the steady cost of current_numa_node() beside
// sched_getcpu().
#include <dlfcn.h>
#include <sched.h>

#include <cstdlib>
#include <memory>

#include "bench.hpp"
#include "bench_support.hpp"
#include "metrics_option.hpp"
#include "moirai/core/detail/frame_allocator.hpp"
#include "moirai/core/runtime.hpp"
#include "moirai/numa/current_node.hpp"
#include "moirai/numa/node_pool.hpp"
#include "moirai/numa/numa_aware_pool.hpp"
#include "moirai/numa/topology.hpp"

namespace moirai::cli {
namespace {

using namespace detail;
using Hist = LatencyHistogram;

constexpr std::size_t kBlock = 64;
constexpr std::uint64_t kPairsPerSample = 1000;  // so that the clock reads are a small part of a sample
constexpr std::size_t kPoolBlocks = 4096;
constexpr std::uint64_t kPicoseconds = 1000;  // figures of one or two nanoseconds need the decimals

// Keeps the compiler from pairing a malloc with its free and deleting both, and from hoisting a pure call out
// of the timing loop.
inline void keep(const void* p) noexcept {
  asm volatile("" : : "r"(p) : "memory");
}
inline void keep(int v) noexcept {
  asm volatile("" : : "r"(v) : "memory");
}

// Which malloc `baseline.malloc` measured: an LD_PRELOADed allocator exports its own entry points.
std::string malloc_name() {
  if (dlsym(RTLD_DEFAULT, "mallctl") != nullptr) return "jemalloc";
  if (dlsym(RTLD_DEFAULT, "mi_malloc") != nullptr) return "mimalloc";
  if (dlsym(RTLD_DEFAULT, "tc_malloc") != nullptr) return "tcmalloc";
  return "glibc";
}

// The six rows' histograms, in the order of the report.
struct AllocRows {
  std::unique_ptr<Hist> base = std::make_unique<Hist>();
  std::unique_ptr<Hist> shard_pool = std::make_unique<Hist>();
  std::unique_ptr<Hist> node_pool = std::make_unique<Hist>();
  std::unique_ptr<Hist> aware_pool = std::make_unique<Hist>();
  std::unique_ptr<Hist> getcpu = std::make_unique<Hist>();
  std::unique_ptr<Hist> node_of = std::make_unique<Hist>();
};

// One round of every row, each timed in batches of kPairsPerSample, in picoseconds.
void measure_round(const BenchOptions& o, const RunBudget& part, numa::NodePool& pool,
                   numa::NumaAwarePool& aware, AllocRows& rows) {
  const auto row = [&](const char* what, Hist& hist, auto op) {
    progress(o, what);
    record_batches(part, kPairsPerSample, hist, op, kPicoseconds);
  };
  row("alloc: baseline.malloc", *rows.base, [] {
    void* p = std::malloc(kBlock);
    keep(p);
    std::free(p);
  });
  row("alloc: moirai.pool.shard", *rows.shard_pool, [] {
    void* p = moirai::detail::frame_allocate(kBlock);
    keep(p);
    moirai::detail::frame_deallocate(p);
  });
  row("alloc: moirai.pool.node", *rows.node_pool, [&pool] {
    void* p = pool.allocate();
    keep(p);
    pool.deallocate(p);
  });
  row("alloc: moirai.pool.numa_aware", *rows.aware_pool, [&aware] {
    void* p = aware.allocate();
    keep(p);
    aware.deallocate(p);
  });
  row("alloc: baseline.sched_getcpu", *rows.getcpu, [] { keep(sched_getcpu()); });
  row("alloc: moirai.current_numa_node", *rows.node_of, [] { keep(numa::current_numa_node()); });
}

BenchReport alloc_report(const AllocRows& rows, int cpu, int node) {
  BenchReport r;
  r.bench = "alloc";
  r.unit = "ps";
  r.rows.push_back(summarize("baseline.malloc", *rows.base));
  r.rows.push_back(summarize("moirai.pool.shard", *rows.shard_pool));
  r.rows.push_back(summarize("moirai.pool.node", *rows.node_pool));
  r.rows.push_back(summarize("moirai.pool.numa_aware", *rows.aware_pool));
  r.rows.push_back(summarize("baseline.sched_getcpu", *rows.getcpu));
  BenchRow n = summarize("moirai.current_numa_node", *rows.node_of);
  n.compare_with = "baseline.sched_getcpu";
  r.rows.push_back(std::move(n));
  r.note = "picoseconds per 64-byte allocate+free pair (pools) or per call, the mean of batches of " +
           std::to_string(kPairsPerSample) + " on a shard on CPU " + std::to_string(cpu) + " (node " +
           std::to_string(node) + "); baseline.malloc is this process's malloc (" + malloc_name() +
           "; LD_PRELOAD libjemalloc.so.2 or libmimalloc.so.2 to compare); moirai.current_numa_node is "
           "compared with sched_getcpu()";
  return r;
}

BenchReport bench_alloc(const BenchOptions& o) {
  const int cpu = first_cpu(o);
  const RunBudget budget = or_default(o.budget, 20'000'000);
  AllocRows rows;
  int node = 0;

  RuntimeOptions ro = bench_runtime(o, {cpu}, IdleStrategy::spin);
  ro.stall_budget = std::chrono::nanoseconds(0);  // the whole bench is one task that never suspends
  Runtime rt(ro);
  rt.run([&]() -> Task<void> {
    serve_metrics_if_asked(o.metrics);
    // Built on the shard: a NodePool's owner is the thread that made it. On the heap, not in the coroutine
    // frame: the pools are cache-line aligned, and a coroutine frame is only 16-byte aligned.
    node = numa::current_numa_node();
    auto node_pool_owner = std::make_unique<numa::NodePool>(node, kBlock, kPoolBlocks);
    auto aware_owner =
        std::make_unique<numa::NumaAwarePool>(numa::Topology::system(), kBlock, kPoolBlocks, node);
    for (unsigned round = 0; round < kRounds; ++round)
      measure_round(o, share(budget, kRounds), *node_pool_owner, *aware_owner, rows);
    co_return;
  });
  return alloc_report(rows, cpu, node);
}

}  // namespace

const LatencyBench kAllocBench{
    "alloc", "64-byte allocate+free from Moirai's pools vs. malloc; current_numa_node()", bench_alloc};

}  // namespace moirai::cli
