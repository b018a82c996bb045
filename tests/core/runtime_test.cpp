#include "moirai/core/runtime.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>

#include "moirai/core/submit.hpp"
#include "moirai/core/timer.hpp"

namespace {

using moirai::Runtime;
using moirai::RuntimeOptions;
using moirai::Task;

RuntimeOptions two_shards(moirai::IdleStrategy idle = moirai::IdleStrategy::spin_then_sleep) {
  RuntimeOptions o;
  o.cpus = {0, 1};
  o.idle = idle;
  return o;
}

Task<int> add(int a, int b) {
  co_return a + b;
}

TEST(Runtime, RunReturnsTheMainTasksValue) {
  Runtime rt(two_shards());
  int v = rt.run([]() -> Task<int> { co_return co_await add(20, 22); });
  EXPECT_EQ(v, 42);
}

TEST(Runtime, RunRethrowsTheMainTasksException) {
  Runtime rt(two_shards());
  EXPECT_THROW(rt.run([]() -> Task<void> {
    throw std::runtime_error("boom");
    co_return;
  }),
               std::runtime_error);
}

TEST(Runtime, SubmitToRunsOnTheOtherShardAndReturnsItsValue) {
  Runtime rt(two_shards());
  auto [where, value] = rt.run([]() -> Task<std::pair<unsigned, int>> {
    unsigned w = co_await moirai::submit_to(1, [] { return moirai::this_shard_id(); });
    int v = co_await moirai::submit_to(1, []() -> Task<int> { co_return co_await add(1, 2); });
    co_return std::pair{w, v};
  });
  EXPECT_EQ(where, 1u);
  EXPECT_EQ(value, 3);
}

TEST(Runtime, ExceptionsCrossShards) {
  Runtime rt(two_shards());
  std::string what = rt.run([]() -> Task<std::string> {
    try {
      co_await moirai::submit_to(1, []() -> int { throw std::logic_error("from shard 1"); });
    } catch (const std::logic_error& e) {
      co_return e.what();
    }
    co_return "none";
  });
  EXPECT_EQ(what, "from shard 1");
}

TEST(Runtime, SpawnJoinAndSleep) {
  Runtime rt(two_shards());
  int v = rt.run([]() -> Task<int> {
    auto h = moirai::spawn([]() -> Task<int> {
      co_await moirai::sleep_for(std::chrono::milliseconds(1));
      co_return 7;
    });
    co_return co_await h.join();
  });
  EXPECT_EQ(v, 7);
}

TEST(Runtime, StartStopAndSubmitFromOutside) {
  Runtime rt(two_shards());
  rt.start();
  auto f = rt.submit(1, [] { return moirai::this_shard_id() + 10; });
  EXPECT_EQ(f.get(), 11u);
  auto g = rt.submit(0, []() -> Task<int> {
    co_await moirai::sleep_for(std::chrono::microseconds(100));
    co_return 5;
  });
  EXPECT_EQ(g.get(), 5);
  rt.stop();
  EXPECT_THROW(rt.submit(0, [] { return 1; }), moirai::Error);
}

}  // namespace
