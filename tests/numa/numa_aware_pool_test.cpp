#include "moirai/numa/numa_aware_pool.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "moirai/numa/error.hpp"
#include "moirai/numa/memory_policy.hpp"
#include "numa_test_support.hpp"

namespace moirai::numa {
namespace {

using testing::FakeSysfs;
using ::testing::HasSubstr;

constexpr std::size_t kBlocks = 40;  // more than a magazine, so the shared stacks are exercised

PoolOptions opts(bool checked) {
  return {.checked = checked};
}

struct Fixture {
  FakeSysfs fs;
  Topology topo;
  explicit Fixture(int memoryless = -1) : topo(make(fs, memoryless)) {}
  static Topology make(const FakeSysfs& fs, int memoryless) {
    FakeSysfs::four_nodes(fs, memoryless);
    return Topology::from_sysfs(fs.root());
  }
};

class NumaAwarePoolTest : public ::testing::TestWithParam<bool> {};

TEST_P(NumaAwarePoolTest, FallsBackByDistanceThenFails) {
  Fixture f;
  NumaAwarePool pool(f.topo, 64, kBlocks, /*preferred_node=*/3, opts(GetParam()));
  EXPECT_EQ(pool.preferred_node(), 3);
  std::vector<int> nodes;
  std::set<void*> seen;
  for (std::size_t i = 0; i < 4 * kBlocks; ++i) {
    void* p = pool.allocate();
    ASSERT_TRUE(seen.insert(p).second);
    std::memset(p, 0x5a, 64);
    nodes.push_back(pool.node_of(p));
  }
  // Node 3 first, then 1 and 2 (distance 21, by id), then 0 (31).
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    const int expected[] = {3, 1, 2, 0};
    ASSERT_EQ(nodes[i], expected[i / kBlocks]) << "allocation " << i;
  }
  try {
    (void)pool.allocate();
    FAIL() << "no throw";
  } catch (const NumaError& e) {
    EXPECT_EQ(e.code().value(), ENOMEM);
    EXPECT_THAT(e.what(), HasSubstr("exhausted"));
    EXPECT_THAT(e.what(), HasSubstr("tried node 3, node 1, node 2, node 0"));
    EXPECT_THAT(e.what(), HasSubstr("raise blocks_per_node"));
  }
  EXPECT_EQ(pool.try_allocate(), nullptr);
  NumaPoolStats s = pool.stats();
  EXPECT_EQ(s.capacity, 4 * kBlocks);
  EXPECT_EQ(s.in_use, 4 * kBlocks);
  EXPECT_EQ(s.allocations, 4 * kBlocks);
  EXPECT_EQ(s.fallbacks, 3 * kBlocks);
  EXPECT_EQ(s.failures, 2u);
  ASSERT_EQ(s.nodes.size(), 4u);
  EXPECT_EQ(s.nodes[3].failures, 2u);
  EXPECT_EQ(s.nodes[3].fallbacks, 0u);
  EXPECT_EQ(s.nodes[0].fallbacks, kBlocks);
  for (const NodePoolStats& n : s.nodes) {
    EXPECT_EQ(n.capacity, kBlocks);
    EXPECT_EQ(n.in_use, kBlocks);
    EXPECT_EQ(n.high_water, kBlocks);
    EXPECT_EQ(n.allocations, kBlocks);
  }
  for (void* p : seen)
    pool.deallocate(p);
  s = pool.stats();
  EXPECT_EQ(s.in_use, 0u);
  EXPECT_EQ(s.high_water, 4 * kBlocks);
  // Everything is free again, and node 3 is preferred again.
  void* p = pool.allocate();
  EXPECT_EQ(pool.node_of(p), 3);
  pool.deallocate(p);
}

TEST_P(NumaAwarePoolTest, AllocatePreferringAnotherNode) {
  Fixture f;
  NumaAwarePool pool(f.topo, 64, kBlocks, 0, opts(GetParam()));
  std::vector<void*> blocks;
  for (std::size_t i = 0; i < kBlocks; ++i) {
    blocks.push_back(pool.allocate_preferring(2));
    ASSERT_EQ(pool.node_of(blocks.back()), 2);
  }
  // Node 2 exhausted: nearest to 2 are 0 and 3 (21); 0 by id.
  blocks.push_back(pool.allocate_preferring(2));
  EXPECT_EQ(pool.node_of(blocks.back()), 0);
  const NumaPoolStats s = pool.stats();
  EXPECT_EQ(s.nodes[2].allocations, kBlocks);
  EXPECT_EQ(s.nodes[0].fallbacks, 1u);
  EXPECT_EQ(s.fallbacks, 1u);
  try {
    (void)pool.allocate_preferring(9);
    FAIL() << "no throw";
  } catch (const NumaError& e) {
    EXPECT_EQ(e.code().value(), ENODEV);
    EXPECT_THAT(e.what(), HasSubstr("allocate_preferring(9)"));
  }
  EXPECT_EQ(pool.try_allocate_preferring(9), nullptr);
  for (void* p : blocks)
    pool.deallocate(p);
  EXPECT_EQ(pool.stats().in_use, 0u);
}

TEST_P(NumaAwarePoolTest, MemorylessPreferredNodeFallsBackToTheNearest) {
  Fixture f(/*memoryless=*/1);
  NumaAwarePool pool(f.topo, 64, kBlocks, 1, opts(GetParam()));
  void* p = pool.allocate();
  EXPECT_EQ(pool.node_of(p), 0);  // 0 and 3 at 21 from node 1: 0 by id
  const NumaPoolStats s = pool.stats();
  EXPECT_EQ(s.nodes[1].capacity, 0u);
  EXPECT_EQ(s.capacity, 3 * kBlocks);
  EXPECT_EQ(s.fallbacks, 1u);
  pool.deallocate(p);
  try {
    std::vector<void*> all;
    for (;;)
      all.push_back(pool.allocate());
  } catch (const NumaError& e) {
    EXPECT_THAT(e.what(), HasSubstr("tried node 1 (no memory), node 0, node 3, node 2"));
  }
}

TEST_P(NumaAwarePoolTest, ForeignPointersAreIgnoredAndCounted) {
  if (GetParam()) GTEST_SKIP() << "checked mode aborts instead (death test below)";
  Fixture f;
  NumaAwarePool pool(f.topo, 64, kBlocks, 0, opts(false));
  int local = 0;
  EXPECT_EQ(pool.node_of(&local), -1);
  pool.deallocate(&local);
  pool.deallocate(nullptr);
  EXPECT_EQ(pool.stats().foreign_frees, 1u);
}

TEST_P(NumaAwarePoolTest, AllocateOnOneThreadFreeOnAnother) {
  Fixture f;
  NumaAwarePool pool(f.topo, 64, 256, 0, opts(GetParam()));
  std::mutex mutex;
  std::vector<void*> handoff;
  std::atomic<bool> done{false};
  std::thread consumer([&] {
    for (;;) {
      std::vector<void*> batch;
      {
        std::lock_guard lock(mutex);
        batch.swap(handoff);
      }
      for (void* p : batch) {
        EXPECT_EQ(*static_cast<std::uint64_t*>(p), reinterpret_cast<std::uintptr_t>(p));
        pool.deallocate(p);
      }
      if (batch.empty() && done.load()) return;
      if (batch.empty()) std::this_thread::yield();
    }
  });
  std::thread producer([&] {
    for (int i = 0; i < 20000; ++i) {
      void* p = pool.try_allocate();
      if (p == nullptr) {
        std::this_thread::yield();
        continue;
      }
      *static_cast<std::uint64_t*>(p) = reinterpret_cast<std::uintptr_t>(p);
      std::lock_guard lock(mutex);
      handoff.push_back(p);
    }
    done.store(true);
  });
  producer.join();
  consumer.join();
  // Both threads have exited, so their caches went back to the pool.
  const NumaPoolStats s = pool.stats();
  EXPECT_EQ(s.in_use, 0u);
  EXPECT_GE(s.allocations, 1u);
  // All blocks are allocatable again from this thread.
  std::vector<void*> all;
  while (void* p = pool.try_allocate())
    all.push_back(p);
  EXPECT_EQ(all.size(), 4 * 256u);
  for (void* p : all)
    pool.deallocate(p);
}

TEST_P(NumaAwarePoolTest, ManyThreadsAllocateAndFreeConcurrently) {
  Fixture f;
  constexpr std::size_t kPerNode = 128;
  NumaAwarePool pool(f.topo, 48, kPerNode, 1, opts(GetParam()));
  constexpr int kThreads = 6;
  std::vector<std::thread> threads;
  std::atomic<int> ready{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(static_cast<unsigned>(t));
      std::vector<void*> mine;
      ready.fetch_add(1);
      while (ready.load() < kThreads)
        std::this_thread::yield();
      for (int i = 0; i < 20000; ++i) {
        if (mine.empty() || (rng() % 3 != 0 && mine.size() < 64)) {
          void* p = (rng() % 5 == 0) ? pool.try_allocate_preferring(static_cast<int>(rng() % 4))
                                     : pool.try_allocate();
          if (p == nullptr) continue;
          std::memset(p, t, 48);
          mine.push_back(p);
        } else {
          const std::size_t at = rng() % mine.size();
          void* p = mine[at];
          mine[at] = mine.back();
          mine.pop_back();
          for (int b = 0; b < 48; ++b)
            ASSERT_EQ(static_cast<unsigned char*>(p)[b], t);
          pool.deallocate(p);
        }
      }
      for (void* p : mine)
        pool.deallocate(p);
    });
  }
  for (auto& t : threads)
    t.join();
  const NumaPoolStats s = pool.stats();
  EXPECT_EQ(s.in_use, 0u);
  EXPECT_LE(s.high_water, s.capacity);
  EXPECT_EQ(s.failures + s.allocations, s.allocations + s.failures);  // counters readable, no crash
}

INSTANTIATE_TEST_SUITE_P(CheckedAndUnchecked, NumaAwarePoolTest, ::testing::Bool(),
                         [](const auto& param_info) { return param_info.param ? "checked" : "unchecked"; });

TEST(NumaAwarePool, OnTheRealTopologyMemoryIsBoundToTheNode) {
  const Topology& topo = Topology::system();
  NumaAwarePool pool(topo, 64, 4096, 0);
  void* p = pool.allocate();
  EXPECT_EQ(pool.node_of(p), 0);
  EXPECT_EQ(node_of_address(p), 0);
  pool.deallocate(p);
}

TEST(NumaAwarePool, BadInput) {
  Fixture f;
  const std::size_t before = testing::mapping_count();
  auto expect_error = [](auto&& fn, const std::string& needle, int code) {
    try {
      fn();
      ADD_FAILURE() << "no throw: " << needle;
    } catch (const NumaError& e) {
      EXPECT_THAT(e.what(), HasSubstr(needle));
      EXPECT_EQ(e.code().value(), code);
    }
  };
  expect_error([&] { NumaAwarePool(f.topo, 64, 8, 5); }, "preferred node 5 does not exist", ENODEV);
  expect_error([&] { NumaAwarePool(f.topo, 0, 8, 0); }, "both must be at least 1", EINVAL);
  expect_error([&] { NumaAwarePool(f.topo, 64, 0, 0); }, "both must be at least 1", EINVAL);
  expect_error([&] { NumaAwarePool(f.topo, 1 << 20, 1 << 20, 0); }, "which holds", ENOMEM);
  EXPECT_EQ(testing::mapping_count(), before);
}

TEST(NumaAwarePool, ManyPoolsOnOneThreadAndPoolsDyingBeforeThreads) {
  Fixture f;
  std::vector<std::unique_ptr<NumaAwarePool>> pools;
  for (int i = 0; i < 7; ++i)
    pools.push_back(std::make_unique<NumaAwarePool>(f.topo, 32, 64, i % 4, opts(true)));
  for (int round = 0; round < 3; ++round) {
    std::vector<std::pair<NumaAwarePool*, void*>> held;
    for (auto& pool : pools)
      held.emplace_back(pool.get(), pool->allocate());
    for (auto [pool, p] : held)
      pool->deallocate(p);
  }
  for (auto& pool : pools)
    EXPECT_EQ(pool->stats().in_use, 0u);
  pools.erase(pools.begin(), pools.begin() + 4);  // cached slots now name dead pools
  for (int i = 0; i < 4; ++i)
    pools.push_back(std::make_unique<NumaAwarePool>(f.topo, 32, 64, 0, opts(true)));
  for (auto& pool : pools) {
    void* p = pool->allocate();
    pool->deallocate(p);
    EXPECT_EQ(pool->stats().in_use, 0u);
  }
  NumaAwarePool::release_thread_caches();
  for (auto& pool : pools)
    EXPECT_EQ(pool->stats().in_use, 0u);
}

// Unchecked pools take the inline paths through the thread's "last pool" entry: interleaving pools, a pool
// dying while it is the last one used, and a successor built at the same address must all stay exact.
TEST(NumaAwarePool, InterleavedUncheckedPoolsKeepExactCounts) {
  Fixture f;
  auto a = std::make_unique<NumaAwarePool>(f.topo, 64, kBlocks, 0, opts(false));
  auto b = std::make_unique<NumaAwarePool>(f.topo, 64, kBlocks, 1, opts(false));
  std::vector<void*> from_a;
  std::vector<void*> from_b;
  for (std::size_t i = 0; i < kBlocks; ++i) {  // beyond a magazine: refills and spills between switches
    from_a.push_back(a->allocate());
    from_b.push_back(b->allocate());
    EXPECT_EQ(a->node_of(from_a.back()), 0);
    EXPECT_EQ(b->node_of(from_b.back()), 1);
  }
  EXPECT_EQ(a->stats().allocations, kBlocks);
  EXPECT_EQ(b->stats().in_use, kBlocks);
  for (std::size_t i = 0; i < kBlocks; ++i) {
    a->deallocate(from_a[i]);
    b->deallocate(from_b[i]);
  }
  EXPECT_EQ(a->stats().in_use, 0u);
  EXPECT_EQ(b->stats().in_use, 0u);
  for (int i = 0; i < 100; ++i)
    a->deallocate(a->allocate());  // `a` is now the thread's last pool
  EXPECT_EQ(a->stats().allocations, kBlocks + 100);
  a.reset();                                                                 // dies while remembered
  a = std::make_unique<NumaAwarePool>(f.topo, 64, kBlocks, 0, opts(false));  // may reuse the address
  void* p = a->allocate();
  EXPECT_EQ(a->node_of(p), 0);
  EXPECT_EQ(a->stats().allocations, 1u);
  EXPECT_EQ(a->stats().in_use, 1u);
  a->deallocate(p);
  EXPECT_EQ(a->stats().in_use, 0u);
  NumaAwarePool::release_thread_caches();
  a->deallocate(a->allocate());  // after a release the thread claims a magazine again
  EXPECT_EQ(a->stats().allocations, 2u);
  NumaAwarePool::release_thread_caches();
  EXPECT_EQ(a->stats().in_use, 0u);
  EXPECT_EQ(b->stats().in_use, 0u);
  EXPECT_EQ(b->stats().allocations, kBlocks);
}

class NumaAwarePoolDeathTest : public ::testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

TEST_F(NumaAwarePoolDeathTest, DoubleFreeAborts) {
  EXPECT_DEATH(
      {
        Fixture f;
        NumaAwarePool pool(f.topo, 64, 8, 0, opts(true));
        void* p = pool.allocate();
        pool.deallocate(p);
        pool.deallocate(p);
      },
      "double free detected");
}

TEST_F(NumaAwarePoolDeathTest, DoubleFreeOfAFallbackBlockAborts) {
  EXPECT_DEATH(
      {
        Fixture f;
        NumaAwarePool pool(f.topo, 64, 8, 0, opts(true));
        void* p = pool.allocate_preferring(3);
        pool.deallocate(p);
        pool.deallocate(p);
      },
      "double free detected");
}

TEST_F(NumaAwarePoolDeathTest, ForeignPointerAborts) {
  EXPECT_DEATH(
      {
        Fixture f;
        NumaAwarePool pool(f.topo, 64, 8, 0, opts(true));
        int local = 0;
        pool.deallocate(&local);
      },
      "no node of this pool owns");
}

TEST_F(NumaAwarePoolDeathTest, MisalignedPointerAborts) {
  EXPECT_DEATH(
      {
        Fixture f;
        NumaAwarePool pool(f.topo, 64, 8, 0, opts(true));
        pool.deallocate(static_cast<char*>(pool.allocate()) + 8);
      },
      "misaligned pointer");
}

}  // namespace
}  // namespace moirai::numa
