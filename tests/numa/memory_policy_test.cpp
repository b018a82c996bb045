#include "moirai/numa/memory_policy.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <numaif.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <thread>

#include "moirai/numa/error.hpp"
#include "moirai/numa/topology.hpp"
#include "numa_test_support.hpp"

namespace moirai::numa {
namespace {

using ::testing::ElementsAre;
using testing::expect_numa_error;
using testing::FakeSysfs;
using ::testing::HasSubstr;

template <typename F>
void on_own_thread(F body) {
  std::thread(body).join();  // a thread's memory policy dies with it: other tests are not affected
}

TEST(MemoryPolicy, ThreadPolicyRoundTrips) {
  if (!Topology::system().numa_available()) GTEST_SKIP() << "no NUMA on this host";
  on_own_thread([] {
    EXPECT_EQ(current_memory_policy(), NumaPolicy::default_policy());
    set_memory_policy(NumaPolicy::bind({0}));
    EXPECT_EQ(current_memory_policy(), NumaPolicy::bind({0}));
    set_memory_policy(NumaPolicy::preferred(0));
    EXPECT_EQ(current_memory_policy(), NumaPolicy::preferred(0));
    set_memory_policy(NumaPolicy::interleave({0}));
    EXPECT_EQ(current_memory_policy(), NumaPolicy::interleave({0}));
    // Memory allocated now follows the policy.
    const std::size_t len = 16 * 4096;
    void* p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ASSERT_NE(p, MAP_FAILED);
    std::memset(p, 1, len);
    EXPECT_EQ(node_of_address(p), 0);
    munmap(p, len);
    set_memory_policy(NumaPolicy::default_policy());
    EXPECT_EQ(current_memory_policy(), NumaPolicy::default_policy());
  });
}

TEST(MemoryPolicy, RangePolicyIsAppliedAndPagesLandOnTheNode) {
  const std::size_t len = 8 * 4096;
  void* p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(p, MAP_FAILED);
  EXPECT_EQ(node_of_address(p), -1);  // not faulted in yet, and asking does not fault it in
  EXPECT_EQ(node_of_address(p), -1);
  set_memory_policy(p, len, NumaPolicy::bind({0}));
  if (Topology::system().numa_available()) {
    int mode = -1;
    unsigned long mask[16] = {};
    ASSERT_EQ(get_mempolicy(&mode, mask, 1025, p, MPOL_F_ADDR), 0);
    EXPECT_EQ(mode, MPOL_BIND);
    EXPECT_EQ(mask[0], 1ul);
  }
  std::memset(p, 1, len);
  for (std::size_t off = 0; off < len; off += 4096)
    EXPECT_EQ(node_of_address(static_cast<char*>(p) + off), 0);
  // Moving already-faulted pages to where they are is a no-op that must succeed.
  set_memory_policy(p, len, NumaPolicy::bind({0}), /*move_existing=*/true);
  set_memory_policy(p, len, NumaPolicy::default_policy());
  munmap(p, len);
}

TEST(MemoryPolicy, BadInputIsRefusedBeforeAnySyscall) {
  on_own_thread([] {
    set_memory_policy(NumaPolicy::preferred(0));
    const NumaPolicy before = current_memory_policy();
    EXPECT_EQ(expect_numa_error([] { set_memory_policy(NumaPolicy::bind({})); }, "needs at least one node"),
              EINVAL);
    EXPECT_EQ(
        expect_numa_error([] { set_memory_policy(NumaPolicy::interleave({})); }, "interleave policy needs"),
        EINVAL);
    EXPECT_EQ(expect_numa_error(
                  [] {
                    set_memory_policy(NumaPolicy::bind({0, 42}));
                  },
                  "node 42 does not exist"),
              ENODEV);
    EXPECT_EQ(
        expect_numa_error([] { set_memory_policy(NumaPolicy::preferred(-1)); }, "node -1 does not exist"),
        ENODEV);
    EXPECT_EQ(expect_numa_error(
                  [] {
                    set_memory_policy(NumaPolicy{PolicyMode::default_policy, {0}});
                  },
                  "default policy takes no nodes"),
              EINVAL);
    EXPECT_EQ(expect_numa_error(
                  [] {
                    set_memory_policy(NumaPolicy{PolicyMode::preferred, {0, 0}});
                  },
                  "exactly one node"),
              EINVAL);
    EXPECT_EQ(current_memory_policy(), before);  // nothing half-applied
  });
  const std::size_t len = 4096;
  void* p = mmap(nullptr, 2 * len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(p, MAP_FAILED);
  EXPECT_EQ(
      expect_numa_error([&] { set_memory_policy(static_cast<char*>(p) + 8, len, NumaPolicy::bind({0})); },
                        "page-aligned address"),
      EINVAL);
  EXPECT_EQ(expect_numa_error([&] { set_memory_policy(p, 0, NumaPolicy::bind({0})); }, "empty range"),
            EINVAL);
  EXPECT_EQ(
      expect_numa_error([&] { set_memory_policy(nullptr, len, NumaPolicy::bind({0})); }, "page-aligned"),
      EINVAL);
  munmap(p, 2 * len);
}

TEST(MemoryPolicy, ValidateAgainstASimulatedTopology) {
  FakeSysfs fs;
  FakeSysfs::four_nodes(fs, /*memoryless=*/2);
  const Topology topo = Topology::from_sysfs(fs.root());
  validate(NumaPolicy::interleave({0, 1, 3}), topo);
  validate(NumaPolicy::default_policy(), topo);
  EXPECT_EQ(expect_numa_error(
                [&] {
                  validate(NumaPolicy::bind({1, 2}), topo);
                },
                "node 2 has no memory (a CPU-only node); bind to a node with memory, e.g. the "
                "nearest: node 0"),
            EINVAL);
  EXPECT_EQ(expect_numa_error([&] { validate(NumaPolicy::preferred(4), topo); },
                              "node 4 does not exist (the simulated topology has nodes 0-3)"),
            ENODEV);
}

}  // namespace
}  // namespace moirai::numa
