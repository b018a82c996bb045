// Where the calling thread runs right now, for a few nanoseconds: the CPU and its NUMA node.
//
// The answer is a snapshot: the kernel may migrate the thread the moment after. It is right for a pinned
// thread (a shard) and a good hint for the others (which node's pool to draw from).
#pragma once

#include <cstdint>

namespace moirai::numa {

// The calling thread's CPU. With glibc's rseq registration (2.35+) one load from the thread's rseq area,
// which the kernel rewrites before the thread returns to user space on a new CPU; otherwise getcpu(2) (vDSO).
int current_cpu() noexcept;

// The calling thread's NUMA node: the rseq node_id field when glibc says the kernel fills it (__rseq_size
// covers it: glibc 2.40+ on Linux 6.3+), otherwise current_cpu() mapped through a table built once from
// Topology::system(); getcpu(2) as a last resort. 0 on a host without NUMA.
int current_numa_node() noexcept;

// How the two functions above find their answer in this process; for tests, benchmarks and `moirai topo`.
enum class CpuSource : std::uint8_t {
  rseq_node_id,  // node straight from the rseq area
  rseq_cpu_id,   // CPU from the rseq area, node through the table
  getcpu,        // the syscall (vDSO): rseq not registered, e.g. GLIBC_TUNABLES=glibc.pthread.rseq=0
};
CpuSource cpu_source() noexcept;
const char* to_string(CpuSource source) noexcept;

namespace detail {
// Test hook: force the getcpu path in this process (true) or go back to the best available (false).
void force_getcpu_for_testing(bool force) noexcept;
}  // namespace detail

}  // namespace moirai::numa
