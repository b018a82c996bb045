#include "moirai/numa/topology.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <thread>

#include "moirai/numa/cpu_list.hpp"
#include "moirai/numa/error.hpp"
#include "numa_test_support.hpp"

namespace moirai::numa {
namespace {

using ::testing::ElementsAre;
using testing::FakeSysfs;
using ::testing::HasSubstr;

TEST(CpuList, ParsesTheKernelFormat) {
  EXPECT_THAT(*parse_cpu_list("0-3,8,10-11\n"), ElementsAre(0, 1, 2, 3, 8, 10, 11));
  EXPECT_THAT(*parse_cpu_list("5"), ElementsAre(5));
  EXPECT_TRUE(parse_cpu_list("\n")->empty());
  EXPECT_FALSE(parse_cpu_list("3-1"));
  EXPECT_FALSE(parse_cpu_list("a"));
  EXPECT_FALSE(parse_cpu_list("1,,2"));
  EXPECT_FALSE(parse_cpu_list("0-99999999"));
  // Ids stop at the kernel's largest NR_CPUS: a node listing "0-800000" is not from a kernel, and walking
  // such a tree would cost the topology and the doctor seconds.
  EXPECT_EQ(parse_cpu_list("0-8191")->size(), 8192u);
  EXPECT_FALSE(parse_cpu_list("8192"));
  EXPECT_FALSE(parse_cpu_list("0-800000"));
  // Digits only: a sign is never part of an id.
  EXPECT_FALSE(parse_cpu_list("0--0"));
  EXPECT_FALSE(parse_cpu_list("-0"));
  EXPECT_FALSE(parse_cpu_list("+1"));
  // Blanks around items, as the kernel reads them; not inside a range.
  EXPECT_THAT(*parse_cpu_list(" 0, 2 "), ElementsAre(0, 2));
  EXPECT_FALSE(parse_cpu_list("0 -2"));
  EXPECT_EQ(format_cpu_list({3, 0, 1, 2, 8, 10, 11}), "0-3,8,10-11");
  EXPECT_EQ(format_cpu_list({}), "none");
}

TEST(Topology, SystemHasNodeZeroWithEveryOnlineCpu) {
  const Topology& topo = Topology::system();
  ASSERT_FALSE(topo.nodes().empty());
  ASSERT_NE(topo.node(0), nullptr);
  EXPECT_FALSE(topo.simulated());
  const long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  for (int cpu = 0; cpu < cpus; ++cpu)
    EXPECT_GE(topo.node_of_cpu(cpu), 0) << "cpu " << cpu;
  EXPECT_EQ(topo.node_of_cpu(100000), -1);
  EXPECT_GT(topo.node(0)->memory_bytes, 0u);
  EXPECT_EQ(topo.distance(0, 0), 10);
  EXPECT_EQ(topo.nodes_by_distance(0).front(), 0);
  EXPECT_EQ(&Topology::system(), &topo);  // cached
  EXPECT_THAT(topo.describe(), HasSubstr("node 0: cpus"));
}

TEST(Topology, SystemIsReadOnceUnderConcurrentFirstUse) {
  std::vector<std::thread> threads;
  std::vector<const Topology*> seen(4);
  for (std::size_t i = 0; i < seen.size(); ++i)
    threads.emplace_back([&, i] { seen[i] = &Topology::system(); });
  for (auto& t : threads)
    t.join();
  for (const Topology* t : seen)
    EXPECT_EQ(t, &Topology::system());
}

TEST(Topology, FromSysfsOfTheHostIsNotSimulated) {
  const Topology topo = Topology::from_sysfs("/sys/devices/system");
  EXPECT_FALSE(topo.simulated());
  EXPECT_EQ(topo.nodes().size(), Topology::system().nodes().size());
}

TEST(Topology, ReadsAFourNodeTree) {
  FakeSysfs fs;
  FakeSysfs::four_nodes(fs);
  const Topology topo = Topology::from_sysfs(fs.root());
  EXPECT_TRUE(topo.simulated());
  EXPECT_TRUE(topo.numa_available());
  ASSERT_EQ(topo.nodes().size(), 4u);
  EXPECT_THAT(topo.node(2)->cpus, ElementsAre(4, 5));
  EXPECT_EQ(topo.node(2)->memory_bytes, (1ull << 20) * 1024);
  EXPECT_EQ(topo.node(2)->free_bytes, (1ull << 19) * 1024);
  EXPECT_EQ(topo.node_of_cpu(5), 2);
  EXPECT_EQ(topo.node_of_cpu(8), -1);
  EXPECT_EQ(topo.distance(0, 3), 31);
  EXPECT_EQ(topo.distance(3, 1), 21);
  EXPECT_EQ(topo.distance(0, 9), -1);
  EXPECT_EQ(topo.node(9), nullptr);
  EXPECT_THAT(topo.isolated_cpus(), ElementsAre(6, 7));
  EXPECT_THAT(topo.nohz_full_cpus(), ElementsAre(7));
  ASSERT_EQ(topo.cpus().size(), 8u);
  EXPECT_EQ(topo.cpus()[5].core_id, 2);
  EXPECT_EQ(topo.cpus()[5].package_id, 1);
  EXPECT_EQ(topo.cpus()[5].node, 2);
  EXPECT_THAT(topo.cpus()[5].thread_siblings, ElementsAre(4, 5));
  EXPECT_THAT(topo.describe(), HasSubstr("4 NUMA nodes (simulated"));
  EXPECT_THAT(topo.describe(), HasSubstr("isolated cpus: 6-7; nohz_full cpus: 7"));
}

TEST(Topology, NodesByDistanceIsSelfThenNearestThenById) {
  FakeSysfs fs;
  FakeSysfs::four_nodes(fs);
  const Topology topo = Topology::from_sysfs(fs.root());
  EXPECT_THAT(topo.nodes_by_distance(0), ElementsAre(0, 1, 2, 3));
  EXPECT_THAT(topo.nodes_by_distance(1), ElementsAre(1, 0, 3, 2));
  EXPECT_THAT(topo.nodes_by_distance(2), ElementsAre(2, 0, 3, 1));
  EXPECT_THAT(topo.nodes_by_distance(3), ElementsAre(3, 1, 2, 0));
  try {
    (void)topo.nodes_by_distance(7);
    FAIL() << "no throw";
  } catch (const NumaError& e) {
    EXPECT_EQ(e.code().value(), ENODEV);
    EXPECT_THAT(e.what(), HasSubstr("node 7 does not exist (the simulated topology has nodes 0-3)"));
  }
}

TEST(Topology, SparseNodeIdsAndUnknownDistances) {
  FakeSysfs fs;
  fs.write("node/online", "0,2\n");
  fs.add_node({0, "0", 1024, {10, 20}});
  fs.add_node({2, "1", 1024, {20, 10}});
  fs.set_cpus("0-1");
  Topology topo = Topology::from_sysfs(fs.root());
  EXPECT_EQ(topo.distance(0, 2), 20);
  EXPECT_EQ(topo.node(1), nullptr);
  EXPECT_THAT(topo.nodes_by_distance(2), ElementsAre(2, 0));

  std::filesystem::remove(fs.root() / "node/node0/distance");
  std::filesystem::remove(fs.root() / "node/node2/distance");
  topo = Topology::from_sysfs(fs.root());
  EXPECT_EQ(topo.distance(0, 2), -1);
  EXPECT_EQ(topo.distance(2, 2), 10);
  EXPECT_THAT(topo.nodes_by_distance(2), ElementsAre(2, 0));
}

TEST(Topology, WithoutNodeDirectoryTheHostIsOneNode) {
  FakeSysfs fs;
  fs.set_cpus("0-5");
  const Topology topo = Topology::from_sysfs(fs.root());
  EXPECT_FALSE(topo.numa_available());
  ASSERT_EQ(topo.nodes().size(), 1u);
  EXPECT_EQ(topo.nodes()[0].id, 0);
  EXPECT_THAT(topo.nodes()[0].cpus, ElementsAre(0, 1, 2, 3, 4, 5));
  EXPECT_GT(topo.nodes()[0].memory_bytes, 0u);
  EXPECT_EQ(topo.node_of_cpu(5), 0);
  EXPECT_THAT(topo.nodes_by_distance(0), ElementsAre(0));
  EXPECT_THAT(topo.describe(), HasSubstr("NUMA not available"));
}

// from_sysfs(fs) throws NumaError(EINVAL) saying `what`.
void expect_malformed(const FakeSysfs& fs, const char* what) {
  try {
    (void)Topology::from_sysfs(fs.root());
    FAIL() << "no throw";
  } catch (const NumaError& e) {
    EXPECT_EQ(e.code().value(), EINVAL);
    EXPECT_THAT(e.what(), HasSubstr(what));
  }
}

TEST(Topology, ErrorsNameTheBadFile) {
  {
    FakeSysfs fs;
    FakeSysfs::two_nodes(fs);
    fs.write("node/node1/cpulist", "2-x\n");
    expect_malformed(fs, "node/node1/cpulist is not a CPU/node list");
  }
  {
    FakeSysfs fs;
    FakeSysfs::two_nodes(fs);
    std::filesystem::remove(fs.root() / "node/node0/meminfo");
    EXPECT_THROW(
        {
          try {
            (void)Topology::from_sysfs(fs.root());
          } catch (const NumaError& e) {
            EXPECT_THAT(e.what(), HasSubstr("node/node0/meminfo"));
            throw;
          }
        },
        NumaError);
  }
  {
    // Found by tests/fuzz/sysfs_fuzz.cpp: a line ending at the key, without its colon, threw
    // std::out_of_range out of from_sysfs.
    FakeSysfs fs;
    FakeSysfs::two_nodes(fs);
    fs.write("node/node0/meminfo", "Node 0 MemTotal");
    expect_malformed(fs, "node/node0/meminfo has no MemTotal line");
  }
  {
    // Found by tests/fuzz/sysfs_fuzz.cpp: a CPU two nodes claim went to the last one read, silently.
    FakeSysfs fs;
    FakeSysfs::two_nodes(fs);
    fs.write("node/node1/cpulist", "1-3\n");
    expect_malformed(fs, "CPU 1 is listed by node0/cpulist and node1/cpulist");
  }
  {
    FakeSysfs fs;
    FakeSysfs::two_nodes(fs);
    fs.write("node/node0/distance", "10 21 30\n");
    EXPECT_THROW((void)Topology::from_sysfs(fs.root()), NumaError);
  }
  {
    FakeSysfs fs;
    FakeSysfs::two_nodes(fs);
    fs.write("node/online", "0-2\n");  // node2 directory missing
    EXPECT_THROW((void)Topology::from_sysfs(fs.root()), NumaError);
  }
  EXPECT_THROW((void)Topology::from_sysfs("/nonexistent/moirai"), NumaError);
}

}  // namespace
}  // namespace moirai::numa
