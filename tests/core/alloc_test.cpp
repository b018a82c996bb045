// Zero heap allocations per task and per message in steady state: 100k spawns and 100k submit_to round trips
// (and the real-time paths) run after a warm-up with the counter of allocation_counter.hpp armed.
#include <gtest/gtest.h>

#include "../support/allocation_counter.hpp"

#include <atomic>
#include <cstdlib>
#include <new>

#include "moirai/core/periodic.hpp"
#include "moirai/core/runtime.hpp"
#include "moirai/core/submit.hpp"
#include "moirai/core/timer.hpp"

namespace {

using moirai::Task;
using moirai_test::count_allocations;
using moirai_test::Counted;
using moirai_test::g_allocations;

Task<int> small_work(int x) {
  co_return x + 1;
}

TEST(Allocations, NoneAcrossOneHundredThousandSpawns) {
  auto body = [](int n) -> Task<std::uint64_t> {
    std::uint64_t sum = 0;
    for (int i = 0; i < n; ++i)
      sum += static_cast<std::uint64_t>(co_await moirai::spawn(small_work(i)).join());
    co_return sum;
  };
  Counted c = count_allocations(body);
  EXPECT_EQ(c.allocations, 0u);
  EXPECT_GT(c.sum, 0u);  // the work really ran
}

TEST(Allocations, NoneAcrossOneHundredThousandSubmitTo) {
  auto body = [](int n) -> Task<std::uint64_t> {
    std::uint64_t sum = 0;
    for (int i = 0; i < n; ++i) {
      sum += co_await moirai::submit_to(
          1, [i] { return static_cast<std::uint64_t>(i) + moirai::this_shard_id(); });
    }
    co_return sum;
  };
  Counted c = count_allocations(body);
  EXPECT_EQ(c.allocations, 0u);
  EXPECT_GT(c.sum, 0u);
}

TEST(Allocations, NoneAcrossCrossShardTasksAndTimers) {
  auto body = [](int n) -> Task<std::uint64_t> {
    std::uint64_t sum = 0;
    for (int i = 0; i < n / 10; ++i) {
      sum += static_cast<std::uint64_t>(co_await moirai::submit_to(1, [i] { return small_work(i); }));
      co_await moirai::sleep_for(std::chrono::nanoseconds(1));
    }
    co_return sum;
  };
  Counted c = count_allocations(body);
  EXPECT_EQ(c.allocations, 0u);
  EXPECT_GT(c.sum, 0u);
}

// Real-time tasks take the same path plus their class's queue (EDF heap, priority level, period bucket):
// after the warm-up has grown those, spawning them allocates nothing either.
TEST(Allocations, NoneAcrossRealTimeSpawns) {
  auto body = [](int n) -> Task<std::uint64_t> {
    std::uint64_t sum = 0;
    for (int i = 0; i < n; ++i) {
      moirai::TaskContext ctx;
      switch (i % 3) {
        case 0:
          ctx.with_deadline(std::chrono::seconds(1));
          break;
        case 1:
          ctx.with_priority(7);
          break;
        default:
          ctx.with_round_robin(std::chrono::microseconds(100)).with_priority(3);
      }
      sum += static_cast<std::uint64_t>(co_await moirai::spawn(small_work(i), ctx).join());
    }
    co_return sum;
  };
  Counted c = count_allocations(body);
  EXPECT_EQ(c.allocations, 0u);
  EXPECT_GT(c.sum, 0u);
}

// A periodic task's releases (timer, job frame, accounting) allocate nothing once it runs.
TEST(Allocations, NoneAcrossPeriodicReleases) {
  auto body = [](int n) -> Task<std::uint64_t> {
    std::uint64_t jobs = 0;
    const int releases = n / 100;
    auto p = moirai::every(
        std::chrono::microseconds(20),
        [&jobs, releases](const moirai::JobInfo& job) {
          ++jobs;
          return job.index + 1 < static_cast<std::uint64_t>(releases);
        },
        moirai::TaskContext{}.with_period(std::chrono::microseconds(20), std::chrono::microseconds(5)));
    g_allocations.store(0);  // every() made the task's statistics record; count the releases only
    co_await p.join();
    co_return jobs;
  };
  Counted c = count_allocations(body);
  EXPECT_EQ(c.allocations, 0u);
  EXPECT_EQ(c.sum, 1000u + 10u);
}

}  // namespace
