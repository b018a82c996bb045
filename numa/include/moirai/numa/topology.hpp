// What this host is made of: NUMA nodes, their CPUs, memory and distances, and which CPUs the kernel keeps
// quiet (isolcpus, nohz_full). Read once from sysfs; a simulated tree with the same layout stands in for
// hosts we do not have (tests, "what would this do on a 4-node box").
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace moirai::numa {

struct NodeInfo {
  int id = -1;
  std::vector<int> cpus;           // sorted
  std::uint64_t memory_bytes = 0;  // MemTotal; 0 for a memoryless (CPU-only) node
  std::uint64_t free_bytes = 0;    // MemFree when the topology was read
  std::vector<int> distances;      // distances[i] = distance to nodes()[i]; empty when the kernel gave none
};

// Per-CPU placement, from cpu/cpuN/topology/*; -1 where the file is absent.
struct CpuInfo {
  int id = -1;
  int node = -1;
  int core_id = -1;
  int package_id = -1;
  std::vector<int> thread_siblings;  // SMT siblings, this CPU included
};

class Topology {
 public:
  // This host, read on first use and cached for the life of the process; safe to call from any thread.
  static const Topology& system();
  // This host, read afresh (CPUs and memory come and go under hotplug; free memory changes all the time).
  static Topology load();
  // A tree laid out like /sys/devices/system (node/node*/{cpulist,distance,meminfo}, node/online or possible,
  // cpu/online, cpu/isolated, cpu/nohz_full, cpu/cpu*/topology/*). A tree without node/ is a host without
  // NUMA: one node 0 holding every CPU. Throws NumaError naming the file that is missing or malformed.
  static Topology from_sysfs(const std::filesystem::path& root);

  const std::vector<NodeInfo>& nodes() const noexcept { return nodes_; }
  const NodeInfo* node(int id) const noexcept;
  const std::vector<CpuInfo>& cpus() const noexcept { return cpus_; }
  int node_of_cpu(int cpu) const noexcept;
  int distance(int from, int to) const noexcept;
  // `from` first, then the other nodes nearest first; equal distances by id, unknown distances last.
  // Throws NumaError(ENODEV) when `from` is not a node of this topology.
  std::vector<int> nodes_by_distance(int from) const;
  const std::vector<int>& isolated_cpus() const noexcept { return isolated_; }
  const std::vector<int>& nohz_full_cpus() const noexcept { return nohz_full_; }
  // False on a kernel or container without NUMA: then the topology is one node 0 holding every CPU.
  bool numa_available() const noexcept { return numa_available_; }
  // True when read from a tree other than /sys/devices/system: its nodes may not exist on this host, so
  // nothing is ever mbind'ed to them.
  bool simulated() const noexcept { return simulated_; }
  const std::filesystem::path& source() const noexcept { return source_; }
  // "node 3 does not exist (this host has nodes 0-1)" and the like, for error messages.
  std::string node_list() const;
  // A few lines: nodes, their CPUs, memory and distances, the isolated and nohz_full CPUs.
  std::string describe() const;

 private:
  static Topology read(const std::filesystem::path& root, bool simulated, bool numa_supported);

  std::vector<NodeInfo> nodes_;
  std::vector<CpuInfo> cpus_;
  std::vector<int> cpu_to_node_;  // indexed by CPU id, -1 for holes
  std::vector<int> isolated_;
  std::vector<int> nohz_full_;
  std::filesystem::path source_;
  bool numa_available_ = false;
  bool simulated_ = false;
};

}  // namespace moirai::numa
