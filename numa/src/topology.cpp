// The host's topology, read once (Topology::system) or afresh, or from a simulated tree; the questions asked
// of it, and its description. The reading itself is in topology_sysfs.cpp.
#include "moirai/numa/topology.hpp"

#include <numa.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <limits>
#include <sstream>
#include <string>
#include <system_error>
#include <vector>

#include "moirai/numa/cpu_list.hpp"
#include "moirai/numa/error.hpp"

namespace moirai::numa {
namespace fs = std::filesystem;
namespace {

const fs::path kSystemRoot = "/sys/devices/system";

void say_no_numa_once(const std::string& why) {
  // Once per process, however many times the host is read: the fallback is a fact about the host, not news.
  static std::atomic<bool> said{false};
  if (!said.exchange(true, std::memory_order_relaxed)) {
    std::fprintf(stderr, "moirai: NUMA not available (%s); treating the host as one node\n", why.c_str());
  }
}

std::string gib(std::uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f GiB", static_cast<double>(bytes) / (1024.0 * 1024.0 * 1024.0));
  return buf;
}

}  // namespace

const Topology& Topology::system() {
  static const Topology topo = load();  // C++11 magic static: initialised once, thread-safe
  return topo;
}

Topology Topology::load() {
  if (::numa_available() < 0) {
    say_no_numa_once("the kernel or container offers no NUMA API: numa_available() < 0");
    return read(kSystemRoot, false, false);
  }
  if (!fs::is_directory(kSystemRoot / "node")) {
    say_no_numa_once((kSystemRoot / "node").string() + " is missing");
    return read(kSystemRoot, false, false);
  }
  return read(kSystemRoot, false, true);
}

Topology Topology::from_sysfs(const fs::path& root) {
  std::error_code ec;
  const bool is_host = fs::equivalent(root, kSystemRoot, ec) && !ec;
  if (!fs::is_directory(root)) {
    throw NumaError(ENOENT, "numa: " + root.string() + " is not a directory; pass a tree laid out like " +
                                kSystemRoot.string());
  }
  return read(root, !is_host, true);
}

const NodeInfo* Topology::node(int id) const noexcept {
  for (const NodeInfo& info : nodes_) {
    if (info.id == id) return &info;
  }
  return nullptr;
}

int Topology::node_of_cpu(int cpu) const noexcept {
  if (cpu < 0 || static_cast<std::size_t>(cpu) >= cpu_to_node_.size()) return -1;
  return cpu_to_node_[static_cast<std::size_t>(cpu)];
}

int Topology::distance(int from, int to) const noexcept {
  const NodeInfo* a = node(from);
  if (a == nullptr || node(to) == nullptr) return -1;
  if (a->distances.empty()) return from == to ? 10 : -1;
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    if (nodes_[i].id == to) return a->distances[i];
  }
  return -1;
}

std::vector<int> Topology::nodes_by_distance(int from) const {
  if (node(from) == nullptr) {
    throw NumaError(ENODEV, "numa: node " + std::to_string(from) + " does not exist (" + node_list() +
                                "); pick a node from `moirai topo`");
  }
  std::vector<int> order;
  for (const NodeInfo& info : nodes_) {
    if (info.id != from) order.push_back(info.id);
  }
  // Unknown distances (-1) sort after every known one; ties by id (stable on an id-sorted input).
  auto key = [&](int id) {
    const int d = distance(from, id);
    return d < 0 ? std::numeric_limits<int>::max() : d;
  };
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return key(a) < key(b); });
  order.insert(order.begin(), from);
  return order;
}

std::string Topology::node_list() const {
  std::vector<int> ids;
  for (const NodeInfo& info : nodes_)
    ids.push_back(info.id);
  return std::string(simulated_ ? "the simulated topology has " : "this host has ") +
         (ids.size() == 1 ? "node " : "nodes ") + format_cpu_list(ids);
}

std::string Topology::describe() const {
  std::ostringstream out;
  out << nodes_.size() << (nodes_.size() == 1 ? " NUMA node" : " NUMA nodes");
  if (simulated_) out << " (simulated from " << source_.string() << ")";
  if (!numa_available_) out << " (NUMA not available: one node holding every CPU)";
  out << "\n";
  for (const NodeInfo& info : nodes_) {
    out << "  node " << info.id << ": cpus " << format_cpu_list(info.cpus) << ", memory "
        << gib(info.memory_bytes) << " (" << gib(info.free_bytes) << " free), distances";
    if (info.distances.empty()) out << " unknown";
    for (int d : info.distances)
      out << ' ' << d;
    out << "\n";
  }
  out << "  isolated cpus: " << format_cpu_list(isolated_)
      << "; nohz_full cpus: " << format_cpu_list(nohz_full_);
  return out.str();
}

}  // namespace moirai::numa
