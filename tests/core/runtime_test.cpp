#include "moirai/core/runtime.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <initializer_list>
#include <stdexcept>
#include <string>

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

TEST(Runtime, IdleStrategyNamesReadBackAndAnUnknownOneNamesTheChoices) {
  for (const auto s : {moirai::IdleStrategy::spin, moirai::IdleStrategy::spin_then_sleep,
                       moirai::IdleStrategy::sleep, moirai::IdleStrategy::busy_poll})
    EXPECT_EQ(moirai::parse_idle_strategy(moirai::to_string(s)), s);
  try {
    moirai::parse_idle_strategy("busy");
    ADD_FAILURE() << "an unknown strategy was accepted";
  } catch (const moirai::Error& e) {
    EXPECT_EQ(e.code(), moirai::Errc::invalid_argument);
    EXPECT_NE(std::string(e.what()).find("busy-poll"), std::string::npos) << e.what();
  }
}

// Busy-poll durations out of range, each refused at start with an error naming the option.
void expect_busy_poll_option_refused(std::chrono::nanoseconds RuntimeOptions::*field, const char* name,
                                     std::initializer_list<std::chrono::nanoseconds> values) {
  for (const auto value : values) {
    RuntimeOptions o = two_shards(moirai::IdleStrategy::busy_poll);
    o.*field = value;
    try {
      Runtime rt(o);
      ADD_FAILURE() << name << " of " << value.count() << " ns was accepted";
    } catch (const moirai::Error& e) {
      EXPECT_EQ(e.code(), moirai::Errc::invalid_argument);
      EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
    }
  }
}

TEST(Runtime, ABusyPollWindowOutOfRangeIsRefusedAtStart) {
  expect_busy_poll_option_refused(&RuntimeOptions::busy_poll_window, "busy_poll_window",
                                  {std::chrono::nanoseconds(0), std::chrono::seconds(2)});
}

TEST(Runtime, ABusyPollSpinOutOfRangeIsRefusedAtStart) {
  expect_busy_poll_option_refused(&RuntimeOptions::busy_poll_after, "busy_poll_after",
                                  {std::chrono::nanoseconds(-1), std::chrono::seconds(2)});
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
