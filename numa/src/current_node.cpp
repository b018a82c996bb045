#include "moirai/numa/current_node.hpp"

#include <sched.h>
#include <sys/rseq.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "moirai/numa/topology.hpp"

namespace moirai::numa {
namespace {

// The fields of struct rseq we read, by offset: the installed <linux/rseq.h> may predate node_id (Linux 6.3).
constexpr std::size_t kCpuIdOffset = 4;
constexpr std::size_t kNodeIdOffset = 20;
// glibc publishes in __rseq_size how much of the area the kernel maintains; node_id is usable when it covers
// the field. (glibc 2.36 says 20 even on a 6.3+ kernel that does fill node_id; we follow glibc's contract.)
constexpr unsigned kRseqSizeWithNodeId = kNodeIdOffset + 4;

const char* thread_pointer() noexcept {
#if defined(__has_builtin) && __has_builtin(__builtin_thread_pointer)
  return static_cast<const char*>(__builtin_thread_pointer());
#elif defined(__x86_64__)
  const char* tp;
  asm("mov %%fs:0, %0" : "=r"(tp));  // the TCB's self pointer, which is what the builtin returns
  return tp;
#else
#error "moirai::numa needs the thread pointer on this architecture"
#endif
}

// Volatile: the kernel writes the field behind the compiler's back; two calls around a migration must both
// load it rather than share one load.
std::int32_t rseq_field(std::size_t offset) noexcept {
  return *reinterpret_cast<const volatile std::int32_t*>(thread_pointer() + __rseq_offset + offset);
}

std::atomic<bool> g_force_getcpu{false};

// CPU -> node, built once from the system topology. A plain array so that the lookup is one bounds check and
// one load; never freed (it is needed until the last thread exits).
struct CpuNodeTable {
  const int* nodes = nullptr;
  int size = 0;
};

const CpuNodeTable& cpu_node_table() noexcept {
  static const CpuNodeTable table = []() noexcept {
    CpuNodeTable t;
    try {
      const Topology& topo = Topology::system();
      int max_cpu = -1;
      for (const NodeInfo& n : topo.nodes()) {
        if (!n.cpus.empty() && n.cpus.back() > max_cpu) max_cpu = n.cpus.back();
      }
      int* nodes = new int[static_cast<std::size_t>(max_cpu + 1)];
      for (int cpu = 0; cpu <= max_cpu; ++cpu)
        nodes[cpu] = topo.node_of_cpu(cpu);
      t.nodes = nodes;
      t.size = max_cpu + 1;
    } catch (...) {
      // No table: current_numa_node() asks getcpu(2) for the node instead.
    }
    return t;
  }();
  return table;
}

int getcpu_node(int* cpu_out) noexcept {
  unsigned cpu = 0;
  unsigned node = 0;
  if (getcpu(&cpu, &node) != 0) {
    if (cpu_out != nullptr) *cpu_out = sched_getcpu();
    return 0;
  }
  if (cpu_out != nullptr) *cpu_out = static_cast<int>(cpu);
  return static_cast<int>(node);
}

}  // namespace

int current_cpu() noexcept {
  if (__rseq_size != 0 && !g_force_getcpu.load(std::memory_order_relaxed)) [[likely]] {
    // cpu_id is negative (-1 uninitialised, -2 registration failed) when the kernel does not maintain it.
    const std::int32_t cpu = rseq_field(kCpuIdOffset);
    if (cpu >= 0) [[likely]]
      return cpu;
  }
  int cpu = 0;
  getcpu_node(&cpu);
  return cpu;
}

int current_numa_node() noexcept {
  // Relaxed loads: the flag and __rseq_size are set before any thread asks and never change meanwhile.
  if (__rseq_size != 0 && !g_force_getcpu.load(std::memory_order_relaxed)) [[likely]] {
    const std::int32_t cpu = rseq_field(kCpuIdOffset);
    if (cpu >= 0) [[likely]] {
      if (__rseq_size >= kRseqSizeWithNodeId) return rseq_field(kNodeIdOffset);
      const CpuNodeTable& table = cpu_node_table();
      if (cpu < table.size && table.nodes[cpu] >= 0) [[likely]]
        return table.nodes[cpu];
    }
  }
  return getcpu_node(nullptr);
}

CpuSource cpu_source() noexcept {
  if (__rseq_size == 0 || g_force_getcpu.load(std::memory_order_relaxed) || rseq_field(kCpuIdOffset) < 0) {
    return CpuSource::getcpu;
  }
  return __rseq_size >= kRseqSizeWithNodeId ? CpuSource::rseq_node_id : CpuSource::rseq_cpu_id;
}

const char* to_string(CpuSource source) noexcept {
  switch (source) {
    case CpuSource::rseq_node_id:
      return "rseq node_id";
    case CpuSource::rseq_cpu_id:
      return "rseq cpu_id + cpu->node table";
    case CpuSource::getcpu:
      return "getcpu";
  }
  return "?";
}

namespace detail {
void force_getcpu_for_testing(bool force) noexcept {
  g_force_getcpu.store(force, std::memory_order_relaxed);
}
}  // namespace detail

}  // namespace moirai::numa
