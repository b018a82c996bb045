// Reading a Topology from a tree laid out like /sys/devices/system: the files of each node and CPU, checked
// for the inconsistencies a broken or hand-made tree can have.
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "moirai/numa/cpu_list.hpp"
#include "moirai/numa/error.hpp"
#include "moirai/numa/topology.hpp"

namespace moirai::numa {
namespace fs = std::filesystem;
namespace {

std::optional<std::string> read_text(const fs::path& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::vector<int> read_list(const fs::path& path, bool required) {
  auto text = read_text(path);
  if (!text) {
    if (!required) return {};
    throw NumaError(ENOENT,
                    "numa: cannot read " + path.string() +
                        " (missing or unreadable); is sysfs mounted, or is the simulated tree complete?");
  }
  auto ids = parse_cpu_list(*text);
  if (!ids) {
    throw NumaError(EINVAL, "numa: " + path.string() + " is not a CPU/node list (\"" + *text +
                                "\"); expected the kernel's format, e.g. 0-3,8");
  }
  return *ids;
}

int read_int(const fs::path& path) {
  auto text = read_text(path);
  if (!text) return -1;
  int value = -1;
  const char* begin = text->data();
  while (begin < text->data() + text->size() && *begin == ' ')
    ++begin;
  auto [ptr, ec] = std::from_chars(begin, text->data() + text->size(), value);
  (void)ptr;
  return ec == std::errc{} ? value : -1;
}

std::vector<int> read_distances(const fs::path& path) {
  auto text = read_text(path);
  if (!text) return {};  // older kernels and some hypervisors give none: distances become "unknown"
  std::vector<int> out;
  std::istringstream in(*text);
  std::string word;
  while (in >> word) {
    int value = 0;
    auto [ptr, ec] = std::from_chars(word.data(), word.data() + word.size(), value);
    if (ec != std::errc{} || ptr != word.data() + word.size() || value < 0) {
      throw NumaError(EINVAL, "numa: " + path.string() + " is malformed (\"" + *text +
                                  "\"); expected one distance per online node, e.g. \"10 21\"");
    }
    out.push_back(value);
  }
  return out;
}

// "Node 0 MemTotal:  5728032 kB" -> bytes for the given key; nullopt when absent.
std::optional<std::uint64_t> meminfo_field(const std::string& text, std::string_view key) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    const std::size_t at = line.find(key);
    // The key and its colon: a line that ends at the key (a truncated file) is not a field either.
    if (at == std::string::npos || at + key.size() >= line.size() || line[at + key.size()] != ':') continue;
    std::istringstream fields(line.substr(at + key.size() + 1));
    std::uint64_t value = 0;
    std::string unit;
    if (!(fields >> value)) return std::nullopt;
    fields >> unit;
    return unit == "kB" ? value * 1024 : value;
  }
  return std::nullopt;
}

std::uint64_t host_memory_bytes(int name) {
  const long pages = sysconf(name);
  const long page = sysconf(_SC_PAGESIZE);
  return pages > 0 && page > 0 ? static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(page) : 0;
}

// Node ids present under node/: node/online, else node/possible, else the node* directories.
std::vector<int> node_ids(const fs::path& node_dir) {
  for (const char* name : {"online", "possible"}) {
    if (fs::exists(node_dir / name)) return read_list(node_dir / name, true);
  }
  std::vector<int> ids;
  for (const auto& entry : fs::directory_iterator(node_dir)) {
    const std::string name = entry.path().filename().string();
    if (name.size() > 4 && name.compare(0, 4, "node") == 0) {
      if (auto id = parse_cpu_list(name.substr(4)); id && id->size() == 1) ids.push_back(id->front());
    }
  }
  std::sort(ids.begin(), ids.end());
  return ids;
}

std::vector<int> all_cpus(const fs::path& cpu_dir) {
  if (fs::exists(cpu_dir / "online")) return read_list(cpu_dir / "online", true);
  std::vector<int> ids;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(cpu_dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.size() > 3 && name.compare(0, 3, "cpu") == 0) {
      if (auto id = parse_cpu_list(name.substr(3)); id && id->size() == 1) ids.push_back(id->front());
    }
  }
  std::sort(ids.begin(), ids.end());
  if (ids.empty()) {
    const long n = sysconf(_SC_NPROCESSORS_ONLN);
    for (int i = 0; i < n; ++i)
      ids.push_back(i);
  }
  return ids;
}

// One node's directory: its CPUs, distances and memory.
NodeInfo read_node(const fs::path& dir, int id) {
  NodeInfo info;
  info.id = id;
  info.cpus = read_list(dir / "cpulist", true);
  info.distances = read_distances(dir / "distance");
  auto meminfo = read_text(dir / "meminfo");
  if (!meminfo) {
    throw NumaError(ENOENT, "numa: cannot read " + (dir / "meminfo").string() +
                                "; is sysfs mounted, or is the simulated tree complete?");
  }
  auto total = meminfo_field(*meminfo, "MemTotal");
  if (!total) {
    throw NumaError(EINVAL, "numa: " + (dir / "meminfo").string() +
                                " has no MemTotal line; expected \"Node N MemTotal: <kB> kB\"");
  }
  info.memory_bytes = *total;
  info.free_bytes = meminfo_field(*meminfo, "MemFree").value_or(0);
  return info;
}

// Every node listed under node/, each with a distance to every node (or none known).
std::vector<NodeInfo> read_nodes(const fs::path& node_dir) {
  std::vector<NodeInfo> nodes;
  for (int id : node_ids(node_dir)) {
    const fs::path dir = node_dir / ("node" + std::to_string(id));
    if (!fs::is_directory(dir)) {
      throw NumaError(ENOENT, "numa: " + dir.string() + " is missing although " +
                                  (node_dir / "online").string() + " lists node " + std::to_string(id) +
                                  "; the sysfs tree is inconsistent");
    }
    nodes.push_back(read_node(dir, id));
  }
  if (nodes.empty()) {
    throw NumaError(EINVAL, "numa: " + node_dir.string() + " lists no online node; the sysfs tree is broken");
  }
  for (const NodeInfo& info : nodes) {
    if (!info.distances.empty() && info.distances.size() != nodes.size()) {
      throw NumaError(
          EINVAL, "numa: " + (node_dir / ("node" + std::to_string(info.id)) / "distance").string() + " has " +
                      std::to_string(info.distances.size()) + " entries for " + std::to_string(nodes.size()) +
                      " online nodes");
    }
  }
  return nodes;
}

// A host without NUMA, or whose kernel hides it: one node 0 holding every CPU and all the memory.
NodeInfo only_node(const std::vector<int>& online_cpus) {
  NodeInfo only;
  only.id = 0;
  only.cpus = online_cpus;
  only.memory_bytes = host_memory_bytes(_SC_PHYS_PAGES);
  only.free_bytes = host_memory_bytes(_SC_AVPHYS_PAGES);
  only.distances = {10};
  return only;
}

// CPU id -> node id (-1 for CPUs no node lists), covering every CPU a node or cpu/online names.
std::vector<int> cpu_to_node_map(const std::vector<NodeInfo>& nodes, const std::vector<int>& online_cpus,
                                 const fs::path& node_dir) {
  int max_cpu = -1;
  for (const NodeInfo& info : nodes) {
    if (!info.cpus.empty()) max_cpu = std::max(max_cpu, info.cpus.back());
  }
  if (!online_cpus.empty()) max_cpu = std::max(max_cpu, online_cpus.back());
  std::vector<int> cpu_to_node(static_cast<std::size_t>(max_cpu + 1), -1);
  for (const NodeInfo& info : nodes) {
    for (int cpu : info.cpus) {
      int& node = cpu_to_node[static_cast<std::size_t>(cpu)];
      if (node != -1) {
        throw NumaError(EINVAL, "numa: CPU " + std::to_string(cpu) + " is listed by node" +
                                    std::to_string(node) + "/cpulist and node" + std::to_string(info.id) +
                                    "/cpulist under " + node_dir.string() +
                                    "; the sysfs tree is inconsistent");
      }
      node = info.id;
    }
  }
  return cpu_to_node;
}

std::vector<CpuInfo> read_cpus(const fs::path& cpu_dir, const std::vector<int>& online_cpus,
                               const std::vector<int>& cpu_to_node) {
  std::vector<CpuInfo> cpus;
  for (int cpu : online_cpus) {
    const fs::path dir = cpu_dir / ("cpu" + std::to_string(cpu)) / "topology";
    CpuInfo c;
    c.id = cpu;
    c.node = cpu_to_node[static_cast<std::size_t>(cpu)];
    c.core_id = read_int(dir / "core_id");
    c.package_id = read_int(dir / "physical_package_id");
    c.thread_siblings = read_list(dir / "thread_siblings_list", false);
    cpus.push_back(std::move(c));
  }
  return cpus;
}

}  // namespace

Topology Topology::read(const fs::path& root, bool simulated, bool numa_supported) {
  Topology topo;
  topo.source_ = root;
  topo.simulated_ = simulated;
  const fs::path node_dir = root / "node";
  const fs::path cpu_dir = root / "cpu";
  const std::vector<int> online_cpus = all_cpus(cpu_dir);
  topo.numa_available_ = numa_supported && fs::is_directory(node_dir);
  if (topo.numa_available_) {
    topo.nodes_ = read_nodes(node_dir);
  } else {
    topo.nodes_.push_back(only_node(online_cpus));
  }
  topo.cpu_to_node_ = cpu_to_node_map(topo.nodes_, online_cpus, node_dir);
  topo.cpus_ = read_cpus(cpu_dir, online_cpus, topo.cpu_to_node_);
  topo.isolated_ = read_list(cpu_dir / "isolated", false);
  topo.nohz_full_ = read_list(cpu_dir / "nohz_full", false);
  return topo;
}

}  // namespace moirai::numa
