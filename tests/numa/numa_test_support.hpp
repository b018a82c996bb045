// Test support for the numa tests (and the CLI's `moirai topo` tests): sysfs-like trees (laid out like
// /sys/devices/system) written into a fresh temporary directory, so that topologies this host does not have
// can be read through Topology::from_sysfs; a count of the process's mappings; and a NumaError expectation.
#pragma once

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/mman.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "moirai/numa/error.hpp"

namespace moirai::numa::testing {

struct FakeNode {
  int id;
  std::string cpulist;
  std::uint64_t mem_kb;
  std::vector<int> distances;
};

class FakeSysfs {
 public:
  FakeSysfs() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "moirai-numa-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    root_ = tmpl;
  }
  ~FakeSysfs() {
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
  }
  FakeSysfs(const FakeSysfs&) = delete;
  FakeSysfs& operator=(const FakeSysfs&) = delete;

  const std::filesystem::path& root() const { return root_; }

  void write(const std::string& relative, const std::string& content) const {
    const auto path = root_ / relative;
    std::filesystem::create_directories(path.parent_path());
    std::ofstream(path) << content;
  }

  void add_node(const FakeNode& node) const {
    const std::string dir = "node/node" + std::to_string(node.id) + "/";
    write(dir + "cpulist", node.cpulist + "\n");
    std::string distances;
    for (int d : node.distances) {
      if (!distances.empty()) distances += ' ';
      distances += std::to_string(d);
    }
    write(dir + "distance", distances + "\n");
    const std::string n = "Node " + std::to_string(node.id);
    write(dir + "meminfo", n + " MemTotal:       " + std::to_string(node.mem_kb) + " kB\n" + n +
                               " MemFree:        " + std::to_string(node.mem_kb / 2) + " kB\n" + n +
                               " MemUsed:        " + std::to_string(node.mem_kb / 2) + " kB\n");
  }

  void set_cpus(const std::string& online) const { write("cpu/online", online + "\n"); }

  // Two nodes of two CPUs each, 1 GiB each, distance 21 between them.
  static void two_nodes(const FakeSysfs& fs) {
    fs.write("node/online", "0-1\n");
    fs.add_node({0, "0-1", 1u << 20, {10, 21}});
    fs.add_node({1, "2-3", 1u << 20, {21, 10}});
    fs.set_cpus("0-3");
  }

  // Four nodes in a square: 0-1 and 0-2 near (21), 0-3 far (31); ties to check ordering by id.
  // `memoryless` names a node given MemTotal 0 (a CPU-only node), or -1 for none.
  static void four_nodes(const FakeSysfs& fs, int memoryless = -1) {
    fs.write("node/online", "0-3\n");
    const std::vector<std::vector<int>> d = {
        {10, 21, 21, 31}, {21, 10, 31, 21}, {21, 31, 10, 21}, {31, 21, 21, 10}};
    for (int id = 0; id < 4; ++id) {
      fs.add_node({id, std::to_string(2 * id) + "-" + std::to_string(2 * id + 1),
                   id == memoryless ? 0u : 1u << 20, d[static_cast<std::size_t>(id)]});
    }
    fs.set_cpus("0-7");
    fs.write("cpu/isolated", "6-7\n");
    fs.write("cpu/nohz_full", "7\n");
    for (int cpu = 0; cpu < 8; ++cpu) {
      const std::string dir = "cpu/cpu" + std::to_string(cpu) + "/topology/";
      fs.write(dir + "core_id", std::to_string(cpu / 2) + "\n");
      fs.write(dir + "physical_package_id", std::to_string(cpu / 4) + "\n");
      fs.write(dir + "thread_siblings_list", std::to_string(cpu & ~1) + "-" + std::to_string(cpu | 1) + "\n");
    }
  }

 private:
  std::filesystem::path root_;
};

// Number of mappings of this process: equal before and after a refused request means nothing leaked. Not
// under the sanitizers, whose runtimes map memory of their own as the test goes: there it always answers 0.
inline std::size_t mapping_count() {
#ifdef MOIRAI_SANITIZED
  return 0;
#endif
  std::ifstream maps("/proc/self/maps");
  std::size_t n = 0;
  std::string line;
  while (std::getline(maps, line))
    ++n;
  return n;
}

// Runs `fn`, expects a NumaError whose message contains `needle`, and returns its errno value (0 when none
// was thrown, after failing the test).
inline int expect_numa_error(auto&& fn, const std::string& needle) {
  try {
    fn();
  } catch (const NumaError& e) {
    EXPECT_THAT(e.what(), ::testing::HasSubstr(needle));
    return e.code().value();
  }
  ADD_FAILURE() << "no NumaError; expected one saying: " << needle;
  return 0;
}

}  // namespace moirai::numa::testing
