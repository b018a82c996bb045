#include "moirai/numa/topology.hpp"

#include <numa.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <fstream>
#include <limits>
#include <optional>
#include <sstream>
#include <string_view>
#include <system_error>

#include "moirai/numa/cpu_list.hpp"
#include "moirai/numa/error.hpp"

namespace moirai::numa {
namespace fs = std::filesystem;
namespace {

const fs::path kSystemRoot = "/sys/devices/system";

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

Topology Topology::read(const fs::path& root, bool simulated, bool numa_supported) {
  Topology topo;
  topo.source_ = root;
  topo.simulated_ = simulated;
  const fs::path node_dir = root / "node";
  const fs::path cpu_dir = root / "cpu";
  const std::vector<int> online_cpus = all_cpus(cpu_dir);

  if (numa_supported && fs::is_directory(node_dir)) {
    topo.numa_available_ = true;
    for (int id : node_ids(node_dir)) {
      const fs::path dir = node_dir / ("node" + std::to_string(id));
      if (!fs::is_directory(dir)) {
        throw NumaError(ENOENT, "numa: " + dir.string() + " is missing although " +
                                    (node_dir / "online").string() + " lists node " + std::to_string(id) +
                                    "; the sysfs tree is inconsistent");
      }
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
      topo.nodes_.push_back(std::move(info));
    }
    if (topo.nodes_.empty()) {
      throw NumaError(EINVAL,
                      "numa: " + node_dir.string() + " lists no online node; the sysfs tree is broken");
    }
    for (const NodeInfo& info : topo.nodes_) {
      if (!info.distances.empty() && info.distances.size() != topo.nodes_.size()) {
        throw NumaError(EINVAL,
                        "numa: " + (node_dir / ("node" + std::to_string(info.id)) / "distance").string() +
                            " has " + std::to_string(info.distances.size()) + " entries for " +
                            std::to_string(topo.nodes_.size()) + " online nodes");
      }
    }
  } else {
    NodeInfo only;
    only.id = 0;
    only.cpus = online_cpus;
    only.memory_bytes = host_memory_bytes(_SC_PHYS_PAGES);
    only.free_bytes = host_memory_bytes(_SC_AVPHYS_PAGES);
    only.distances = {10};
    topo.nodes_.push_back(std::move(only));
  }

  int max_cpu = -1;
  for (const NodeInfo& info : topo.nodes_) {
    if (!info.cpus.empty()) max_cpu = std::max(max_cpu, info.cpus.back());
  }
  if (!online_cpus.empty()) max_cpu = std::max(max_cpu, online_cpus.back());
  topo.cpu_to_node_.assign(static_cast<std::size_t>(max_cpu + 1), -1);
  for (const NodeInfo& info : topo.nodes_) {
    for (int cpu : info.cpus) {
      int& node = topo.cpu_to_node_[static_cast<std::size_t>(cpu)];
      if (node != -1) {
        throw NumaError(EINVAL, "numa: CPU " + std::to_string(cpu) + " is listed by node" +
                                    std::to_string(node) + "/cpulist and node" + std::to_string(info.id) +
                                    "/cpulist under " + node_dir.string() +
                                    "; the sysfs tree is inconsistent");
      }
      node = info.id;
    }
  }
  for (int cpu : online_cpus) {
    const fs::path dir = cpu_dir / ("cpu" + std::to_string(cpu)) / "topology";
    CpuInfo c;
    c.id = cpu;
    c.node = topo.cpu_to_node_[static_cast<std::size_t>(cpu)];
    c.core_id = read_int(dir / "core_id");
    c.package_id = read_int(dir / "physical_package_id");
    c.thread_siblings = read_list(dir / "thread_siblings_list", false);
    topo.cpus_.push_back(std::move(c));
  }
  topo.isolated_ = read_list(cpu_dir / "isolated", false);
  topo.nohz_full_ = read_list(cpu_dir / "nohz_full", false);
  return topo;
}

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
