#include "moirai/numa/node_pool.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "moirai/numa/error.hpp"
#include "moirai/numa/memory_policy.hpp"
#include "moirai/numa/topology.hpp"
#include "numa_test_support.hpp"

namespace moirai::numa {
namespace {

using ::testing::HasSubstr;
using testing::mapping_count;

PoolOptions checked() {
  return {.checked = true};
}
PoolOptions unchecked() {
  return {.checked = false};
}

class NodePoolTest : public ::testing::TestWithParam<bool> {
 protected:
  PoolOptions options() const { return GetParam() ? checked() : unchecked(); }
};

TEST_P(NodePoolTest, AllocatesEveryBlockOnceThenNullptr) {
  NodePool pool(0, 60, 100, options());
  EXPECT_EQ(pool.block_size(), 64u);  // rounded up to 16
  EXPECT_EQ(pool.capacity(), 100u);
  EXPECT_EQ(pool.node(), 0);
  std::set<void*> seen;
  for (int i = 0; i < 100; ++i) {
    void* p = pool.allocate();
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % 16, 0u);
    EXPECT_TRUE(pool.owns(p));
    EXPECT_TRUE(seen.insert(p).second);
    std::memset(p, 0xab, 64);  // the whole block is usable
  }
  EXPECT_EQ(pool.allocate(), nullptr);
  EXPECT_EQ(pool.in_use(), 100u);
  EXPECT_EQ(pool.high_water(), 100u);
  for (void* p : seen)
    pool.deallocate(p);
  EXPECT_EQ(pool.in_use(), 0u);
  EXPECT_EQ(pool.high_water(), 100u);
  EXPECT_NE(pool.allocate(), nullptr);
  pool.deallocate(nullptr);  // ignored
}

TEST_P(NodePoolTest, ReusesFreedBlocksFirst) {
  NodePool pool(0, 16, 8, options());
  void* a = pool.allocate();
  pool.deallocate(a);
  EXPECT_EQ(pool.allocate(), a);
  EXPECT_EQ(pool.high_water(), 1u);
}

TEST_P(NodePoolTest, MemoryIsOnTheNode) {
  NodePool pool(0, 64, 1000, options());
  EXPECT_EQ(pool.memory().bound(), Topology::system().numa_available());
  void* p = pool.allocate();
  EXPECT_EQ(node_of_address(p), 0);
  pool.deallocate(p);
}

TEST_P(NodePoolTest, RemoteFreesComeBackToTheOwner) {
  NodePool pool(0, 64, 64, options());
  std::vector<void*> blocks;
  for (int i = 0; i < 64; ++i)
    blocks.push_back(pool.allocate());
  ASSERT_EQ(pool.allocate(), nullptr);
  std::thread([&] {
    for (void* p : blocks)
      pool.deallocate(p);
  }).join();
  EXPECT_EQ(pool.in_use(), 0u);
  for (int i = 0; i < 64; ++i)
    EXPECT_NE(pool.allocate(), nullptr) << i;
  EXPECT_EQ(pool.allocate(), nullptr);
}

TEST_P(NodePoolTest, ConcurrentRemoteFreesWhileTheOwnerAllocates) {
  constexpr int kBlocks = 256;
  constexpr int kRounds = 20000;
  NodePool pool(0, 32, kBlocks, options());
  std::mutex mutex;
  std::vector<void*> handoff;
  std::atomic<bool> done{false};
  std::vector<std::thread> freers;
  for (int t = 0; t < 3; ++t) {
    freers.emplace_back([&] {
      while (true) {
        void* p = nullptr;
        {
          std::lock_guard lock(mutex);
          if (!handoff.empty()) {
            p = handoff.back();
            handoff.pop_back();
          } else if (done.load()) {
            return;
          }
        }
        if (p != nullptr) {
          EXPECT_EQ(*static_cast<int*>(p), 42);
          pool.deallocate(p);
        } else {
          std::this_thread::yield();
        }
      }
    });
  }
  int allocated = 0;
  while (allocated < kRounds) {
    void* p = pool.allocate();
    if (p == nullptr) {
      std::this_thread::yield();
      continue;
    }
    *static_cast<int*>(p) = 42;
    if (allocated % 3 == 0) {
      pool.deallocate(p);  // the owner frees some itself
    } else {
      std::lock_guard lock(mutex);
      handoff.push_back(p);
    }
    ++allocated;
  }
  done.store(true);
  for (auto& t : freers)
    t.join();
  EXPECT_EQ(pool.in_use(), 0u);
  EXPECT_LE(pool.high_water(), static_cast<std::size_t>(kBlocks));
}

TEST_P(NodePoolTest, AdoptMovesOwnership) {
  NodePool pool(0, 64, 16, options());
  std::thread([&] {
    pool.adopt_current_thread();
    void* p = pool.allocate();
    ASSERT_NE(p, nullptr);
    pool.deallocate(p);
    EXPECT_EQ(pool.in_use(), 0u);
  }).join();
  pool.adopt_current_thread();
  EXPECT_NE(pool.allocate(), nullptr);
}

INSTANTIATE_TEST_SUITE_P(CheckedAndUnchecked, NodePoolTest, ::testing::Bool(),
                         [](const auto& param_info) { return param_info.param ? "checked" : "unchecked"; });

TEST(NodePool, BadInputIsRefusedAndNothingLeaks) {
  const std::size_t before = mapping_count();
  auto expect_error = [](auto&& fn, const std::string& needle) {
    try {
      fn();
      ADD_FAILURE() << "no throw: " << needle;
    } catch (const NumaError& e) {
      EXPECT_THAT(e.what(), HasSubstr(needle));
    }
  };
  expect_error([] { NodePool(0, 0, 10); }, "block size 0");
  expect_error([] { NodePool(0, 64, 0); }, "pool of 0 blocks");
  expect_error([] { NodePool(0, 64, SIZE_MAX / 8); }, "overflows");
  expect_error([] { NodePool(9, 64, 10); }, "node 9 does not exist");
  expect_error([] { NodePool(0, 64, std::size_t{1} << 40); }, "which holds");
  expect_error([] { NodePool(allocate_on_node(0, 4096), 64, 100, true); },
               "needs 6400 bytes but was given 4096");
  EXPECT_EQ(mapping_count(), before);
}

TEST(NodePool, OverSimulatedNodeMemory) {
  testing::FakeSysfs fs;
  testing::FakeSysfs::two_nodes(fs);
  const Topology topo = Topology::from_sysfs(fs.root());
  NodePool pool(allocate_on_node(topo, 1, 64 * 10), 64, 10, true);
  EXPECT_EQ(pool.node(), 1);
  EXPECT_FALSE(pool.memory().bound());
  void* p = pool.allocate();
  EXPECT_NE(p, nullptr);
  pool.deallocate(p);
}

class NodePoolDeathTest : public ::testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

TEST_F(NodePoolDeathTest, DoubleFreeAborts) {
  EXPECT_DEATH(
      {
        NodePool pool(0, 64, 8, checked());
        void* p = pool.allocate();
        pool.deallocate(p);
        pool.deallocate(p);
      },
      "double free detected");
}

TEST_F(NodePoolDeathTest, DoubleFreeFromAnotherThreadAborts) {
  EXPECT_DEATH(
      {
        NodePool pool(0, 64, 8, checked());
        void* p = pool.allocate();
        pool.deallocate(p);
        std::thread([&] { pool.deallocate(p); }).join();
      },
      "double free detected");
}

TEST_F(NodePoolDeathTest, ForeignPointerAborts) {
  EXPECT_DEATH(
      {
        NodePool pool(0, 64, 8, checked());
        int local = 0;
        pool.deallocate(&local);
      },
      "does not own");
}

TEST_F(NodePoolDeathTest, MisalignedPointerAborts) {
  EXPECT_DEATH(
      {
        NodePool pool(0, 64, 8, checked());
        char* p = static_cast<char*>(pool.allocate());
        pool.deallocate(p + 16);
      },
      "misaligned pointer");
}

TEST_F(NodePoolDeathTest, AllocationOffTheOwnerThreadAborts) {
  EXPECT_DEATH(
      {
        NodePool pool(0, 64, 8, checked());
        std::thread([&] { (void)pool.allocate(); }).join();
      },
      "not the pool's owner");
}

TEST_F(NodePoolDeathTest, WriteAfterFreeIsCaughtOnTheNextAllocation) {
  EXPECT_DEATH(
      {
        NodePool pool(0, 64, 8, checked());
        void* a = pool.allocate();
        void* b = pool.allocate();
        pool.deallocate(a);
        pool.deallocate(b);
        *static_cast<std::uintptr_t*>(b) = 0x1234;  // scribbles over the free list's link
        (void)pool.allocate();
        (void)pool.allocate();
      },
      "use after free");
}

}  // namespace
}  // namespace moirai::numa
