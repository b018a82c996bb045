// Timers: deadline order (ties in arming order), sleep_until, yield, with_timeout, mass cancellation, and
// sleeping under every idle strategy. Nothing here asserts on how long anything took; only on order and on
// "at least" guarantees that follow from the clock being monotonic.
#include "moirai/core/timer.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <numeric>
#include <random>
#include <stdexcept>
#include <vector>

#include "core_test_support.hpp"
#include "moirai/core/runtime.hpp"
#include "moirai/core/submit.hpp"

namespace {

using moirai::Runtime;
using moirai::Task;
using moirai::TaskCancelled;
using moirai::TaskHandle;
using moirai::TaskStatus;
using moirai::TimedOut;
using moirai_test::one_shard;
using moirai_test::two_shards;
using moirai_test::yield_n;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

Task<void> wake_at(Clock::time_point deadline, int id, std::vector<int>* order) {
  co_await moirai::sleep_until(deadline);
  order->push_back(id);
}

// Every deadline below lies far enough ahead that all tasks arm their timers before the first one is due. On
// a host so loaded that this fails (a deadline already passed when its task started, so it never armed), the
// order says nothing about the timer heap and the test is skipped rather than failed: the shard's count of
// fired timers tells which case happened.
constexpr auto kLead = 20ms;

TEST(Timers, FireInDeadlineOrder) {
  Runtime rt(one_shard());
  constexpr int kN = 200;
  const std::vector<int> order = rt.run([]() -> Task<std::vector<int>> {
    std::vector<int> slots(kN);
    std::iota(slots.begin(), slots.end(), 0);
    std::shuffle(slots.begin(), slots.end(), std::mt19937(12345));
    std::vector<int> seen;
    std::vector<TaskHandle<void>> hs;
    // One base for all, so the order depends on the deadlines alone, not on when each task started.
    const Clock::time_point base = Clock::now() + kLead;
    for (int i = 0; i < kN; ++i)
      hs.push_back(moirai::spawn(wake_at(base + slots[i] * 20us, slots[i], &seen)));
    for (auto& h : hs)
      co_await h.join();
    co_return seen;
  });
  ASSERT_EQ(order.size(), static_cast<std::size_t>(kN));
  if (rt.stats(0).timers_fired < static_cast<std::uint64_t>(kN))
    GTEST_SKIP() << "host too slow to arm in time";
  EXPECT_TRUE(std::is_sorted(order.begin(), order.end()));
}

TEST(Timers, EqualDeadlinesFireInArmingOrder) {
  Runtime rt(one_shard());
  constexpr int kN = 300;  // more than one task quota: arming spans several runs of the queue
  const std::vector<int> order = rt.run([]() -> Task<std::vector<int>> {
    std::vector<int> seen;
    std::vector<TaskHandle<void>> hs;
    const Clock::time_point deadline = Clock::now() + kLead;
    for (int i = 0; i < kN; ++i)
      hs.push_back(moirai::spawn(wake_at(deadline, i, &seen)));
    for (auto& h : hs)
      co_await h.join();
    co_return seen;
  });
  ASSERT_EQ(order.size(), static_cast<std::size_t>(kN));
  if (rt.stats(0).timers_fired < static_cast<std::uint64_t>(kN))
    GTEST_SKIP() << "host too slow to arm in time";
  for (int i = 0; i < kN; ++i)
    ASSERT_EQ(order[i], i);
}

TEST(Timers, CancellingSomeTimersKeepsTheOthersInOrder) {
  Runtime rt(one_shard());
  constexpr int kN = 100;
  const std::vector<int> order = rt.run([]() -> Task<std::vector<int>> {
    std::vector<int> seen;
    std::vector<TaskHandle<void>> hs;
    const Clock::time_point base = Clock::now() + kLead;
    std::vector<int> slots(kN);
    std::iota(slots.begin(), slots.end(), 0);
    std::shuffle(slots.begin(), slots.end(), std::mt19937(7));
    for (int i = 0; i < kN; ++i)
      hs.push_back(moirai::spawn(wake_at(base + slots[i] * 10us, slots[i], &seen)));
    co_await moirai::yield();  // all armed
    for (int i = 0; i < kN; ++i) {
      if (slots[i] % 3 == 0) hs[i].cancel();  // removes entries from the middle of the heap
    }
    for (int i = 0; i < kN; ++i) {
      if (slots[i] % 3 == 0) {
        EXPECT_THROW(co_await hs[i].join(), TaskCancelled);
      } else {
        co_await hs[i].join();
      }
    }
    co_return seen;
  });
  std::vector<int> expected;
  for (int i = 0; i < kN; ++i) {
    if (i % 3 != 0) expected.push_back(i);
  }
  if (rt.stats(0).timers_fired < expected.size()) GTEST_SKIP() << "host too slow to arm in time";
  EXPECT_EQ(order, expected);
}

TEST(Timers, SleepUntilWakesNoEarlierThanTheDeadlineAndAPastDeadlineReturnsAtOnce) {
  Runtime rt(two_shards());
  rt.run([]() -> Task<void> {
    const Clock::time_point deadline = Clock::now() + 2ms;
    co_await moirai::sleep_until(deadline);
    EXPECT_GE(Clock::now(), deadline);

    const std::int64_t before = moirai::monotonic_ns();
    co_await moirai::sleep_for(1ms);
    EXPECT_GE(moirai::monotonic_ns() - before, 1'000'000);

    co_await moirai::sleep_until(Clock::now() - 1h);  // in the past
    co_await moirai::sleep_for(0ns);
    co_await moirai::sleep_for(-5ms);

    // A periodic loop on absolute deadlines.
    Clock::time_point next = Clock::now();
    for (int i = 0; i < 5; ++i) {
      next += 200us;
      co_await moirai::sleep_until(next);
      EXPECT_GE(Clock::now(), next);
    }
  });
}

TEST(Timers, SleepingForTheLongestDurationSleepsUntilCancelled) {
  Runtime rt(one_shard());
  rt.run([]() -> Task<void> {
    bool woke = false;
    auto h = moirai::spawn([](bool* w) -> Task<void> {
      co_await moirai::sleep_for(moirai::Duration::max());  // "forever"
      *w = true;
    }(&woke));
    co_await moirai::sleep_for(2ms);
    // BUG (timer.hpp, sleep_for): the deadline is monotonic_ns() + d.count(), which overflows for
    // Duration::max() (undefined behaviour; in practice a negative deadline), so the sleep returns at once.
    EXPECT_FALSE(woke) << "sleep_for(Duration::max()) returned at once";
    EXPECT_EQ(h.status(), TaskStatus::running);
    h.cancel();
    try {
      co_await h.join();
    } catch (const TaskCancelled&) {
    }
    bool woke_until = false;
    auto u = moirai::spawn([](bool* w) -> Task<void> {
      co_await moirai::sleep_until(Clock::time_point::max());
      *w = true;
    }(&woke_until));
    co_await moirai::sleep_for(2ms);
    EXPECT_FALSE(woke_until);
    u.cancel();
    EXPECT_THROW(co_await u.join(), TaskCancelled);
  });
}

TEST(Timers, SleepOffAShardThrowsNotOnShard) {
  moirai_test::error_message([] { (void)moirai::sleep_for(1ms).await_ready(); }, moirai::Errc::not_on_shard);
}

TEST(Yield, LetsEveryOtherReadyTaskRunOnce) {
  Runtime rt(one_shard());
  const std::vector<char> trace = rt.run([]() -> Task<std::vector<char>> {
    std::vector<char> out;
    auto body = [](char name, std::vector<char>* log) -> Task<void> {
      for (int i = 0; i < 3; ++i) {
        log->push_back(name);
        co_await moirai::yield();
      }
    };
    auto a = moirai::spawn(body('a', &out));
    auto b = moirai::spawn(body('b', &out));
    auto c = moirai::spawn(body('c', &out));
    co_await a.join();
    co_await b.join();
    co_await c.join();
    co_return out;
  });
  EXPECT_EQ(std::string(trace.begin(), trace.end()), "abcabcabc");
}

TEST(Yield, AYieldingLoopDoesNotStarveTimers) {
  Runtime rt(one_shard());
  rt.run([]() -> Task<void> {
    bool woke = false;
    auto sleeper = moirai::spawn([](bool* w) -> Task<void> {
      co_await moirai::sleep_for(1ms);
      *w = true;
    }(&woke));
    while (!woke)
      co_await moirai::yield();  // busy, but the loop still fires timers between runs of the queue
    co_await sleeper.join();
  });
}

Task<int> quick(int v) {
  co_await moirai::yield();
  co_return v;
}

struct SlowProbe {
  bool cancelled = false;
  bool finished = false;
};
Task<int> slow(SlowProbe* p) {
  try {
    co_await moirai::sleep_for(1h);
  } catch (const TaskCancelled&) {
    p->cancelled = true;
    throw;
  }
  p->finished = true;
  co_return 0;
}

TEST(WithTimeout, ReturnsTheValueWhenTheTaskIsFast) {
  Runtime rt(one_shard());
  rt.run([&rt]() -> Task<void> {
    EXPECT_EQ(co_await moirai::with_timeout(100ms, quick(5)), 5);
    co_await moirai::with_timeout(100ms, []() -> Task<void> { co_await moirai::yield(); }());
    EXPECT_THROW(co_await moirai::with_timeout(100ms,
                                               []() -> Task<int> {
                                                 co_await moirai::yield();
                                                 throw std::runtime_error("own error");
                                               }()),
                 std::runtime_error)
        << "the task's own exception passes through";
    // Had a timeout's timer stayed armed, it would fire during this sleep, into a finished frame.
    co_await moirai::sleep_for(110ms);
    EXPECT_EQ(rt.stats(0).timers_fired, 1u) << "only the sleep's own timer fired";
    EXPECT_EQ(rt.stats(0).tasks_cancelled, 0u);
  });
}

TEST(WithTimeout, TheLongestTimeoutNeverExpires) {
  Runtime rt(one_shard());
  rt.run([]() -> Task<void> {
    moirai_test::Signal go;
    auto h = moirai::spawn([](moirai_test::Signal* g) -> Task<int> {
      co_return co_await moirai::with_timeout(moirai::Duration::max(),
                                              [](moirai_test::Signal* gg) -> Task<int> {
                                                co_await moirai_test::wait_for(gg);
                                                co_return 6;
                                              }(g));
    }(&go));
    co_await moirai::sleep_for(2ms);
    // BUG (spawn.hpp, JoinAwaiter): the timer's deadline is monotonic_ns() + timeout_ns, which overflows for
    // Duration::max(), so the timer fires at once and with_timeout throws TimedOut.
    EXPECT_EQ(h.status(), TaskStatus::running) << "with_timeout(Duration::max(), ...) timed out at once";
    go.set();
    try {
      EXPECT_EQ(co_await h.join(), 6);
    } catch (const TimedOut&) {
      ADD_FAILURE() << "TimedOut";
    }
  });
}

TEST(WithTimeout, ThrowsTimedOutWhenTheTaskIsSlowAndCancelsIt) {
  Runtime rt(one_shard());
  rt.run([&rt]() -> Task<void> {
    SlowProbe p;
    try {
      co_await moirai::with_timeout(2ms, slow(&p));
      ADD_FAILURE() << "with_timeout returned";
    } catch (const TimedOut& e) {
      EXPECT_EQ(e.code(), moirai::Errc::timed_out);
    }
    EXPECT_TRUE(p.cancelled) << "the slow task has ended, cancelled, before TimedOut is thrown";
    EXPECT_FALSE(p.finished);
    EXPECT_EQ(rt.stats(0).tasks_cancelled, 1u);
  });
}

TEST(WithTimeout, CancellingTheCallerCancelsTheInnerTask) {
  Runtime rt(one_shard());
  rt.run([]() -> Task<void> {
    SlowProbe p;
    auto outer = moirai::spawn(
        [](SlowProbe* pp) -> Task<int> { co_return co_await moirai::with_timeout(1h, slow(pp)); }(&p));
    co_await yield_n(3);
    outer.cancel();
    EXPECT_THROW(co_await outer.join(), TaskCancelled);
    co_await yield_n(10);
    // Regression: with_timeout once cancelled the inner task only on TimedOut; a cancelled caller dropped
    // the handle and left the inner task running, detached.
    EXPECT_TRUE(p.cancelled) << "with_timeout's inner task was left running after its caller was cancelled";
  });
}

struct RemoteWork {
  std::atomic<bool> release{false};
  std::atomic<bool> finished{false};
};

// Runs on shard 1 until released (or, so that a failure cannot hang the suite, for at most 300 ms).
Task<int> remote_until_released(RemoteWork* w) {
  const std::int64_t give_up = moirai::monotonic_ns() + 300'000'000;
  while (!w->release.load() && moirai::monotonic_ns() < give_up) {
    try {
      co_await moirai::sleep_for(20us);
    } catch (const TaskCancelled&) {
      break;  // nothing cancels it in this test; the request is not cancellable on the other side
    }
  }
  w->finished.store(true);
  co_return 1;
}

TEST(WithTimeout, BoundsAWaitForAnotherShard) {
  Runtime rt(two_shards());
  RemoteWork w;
  bool remote_done_at_timeout = true;
  rt.run([&]() -> Task<void> {
    try {
      co_await moirai::with_timeout(2ms, [](RemoteWork* rw) -> Task<int> {
        co_return co_await moirai::submit_to(1, [rw] { return remote_until_released(rw); });
      }(&w));
      ADD_FAILURE() << "with_timeout returned a value";
    } catch (const TimedOut&) {
      remote_done_at_timeout = w.finished.load();
    }
    w.release.store(true);
    while (!w.finished.load())
      co_await moirai::sleep_for(20us);
  });
  // A task waiting for a submit_to reply cannot end before the answer; with_timeout leaves it to finish in
  // the background and throws TimedOut at once, so the remote work is still running when the caller hears.
  EXPECT_FALSE(remote_done_at_timeout)
      << "with_timeout(2ms, submit_to(...)) waited for the remote work to finish before throwing TimedOut";
}

TEST(Timers, HundredThousandSleepersCancelledAllEndCancelled) {
  Runtime rt(one_shard());
  rt.run([&rt]() -> Task<void> {
    constexpr int kN = 100'000;
    int armed = 0;
    std::vector<TaskHandle<void>> hs;
    hs.reserve(kN);
    for (int i = 0; i < kN; ++i) {
      hs.push_back(moirai::spawn([](int* a) -> Task<void> {
        ++*a;
        co_await moirai::sleep_for(1h);
      }(&armed)));
    }
    while (armed < kN)
      co_await moirai::yield();
    co_await moirai::yield();  // the last ones have reached their sleep
    // Cancel in an order unlike the heap's, so entries leave from everywhere in it.
    for (int i = 0; i < kN; i += 2)
      hs[i].cancel();
    for (int i = kN - 1; i > 0; i -= 2)
      hs[i].cancel();
    int cancelled = 0;
    for (auto& h : hs) {
      try {
        co_await h.join();
      } catch (const TaskCancelled&) {
        ++cancelled;
      }
      if (h.status() != TaskStatus::cancelled) ADD_FAILURE() << "status " << moirai::to_string(h.status());
    }
    EXPECT_EQ(cancelled, kN);
    EXPECT_EQ(rt.stats(0).tasks_cancelled, static_cast<std::uint64_t>(kN));
    EXPECT_EQ(rt.stats(0).timers_fired, 0u);
    // The shard still keeps time afterwards.
    co_await moirai::sleep_for(100us);
  });
}

Task<int> nap_and_report() {
  co_await moirai::sleep_for(2ms);
  co_await moirai::sleep_until(Clock::now() + 500us);
  co_return static_cast<int>(moirai::this_shard_id());
}

class TimersUnderIdle : public ::testing::TestWithParam<moirai::IdleStrategy> {};

TEST_P(TimersUnderIdle, SleepWorksOnBothShards) {
  Runtime rt(two_shards(GetParam()));
  rt.run([&rt]() -> Task<void> {
    EXPECT_EQ(co_await nap_and_report(), 0);
    EXPECT_EQ(co_await moirai::submit_to(1, [] { return nap_and_report(); }), 1);
    // Both at once: one shard's sleep must not hold up the other's.
    auto here = moirai::spawn(nap_and_report());
    EXPECT_EQ(co_await moirai::submit_to(1, [] { return nap_and_report(); }), 1);
    EXPECT_EQ(co_await here.join(), 0);
    EXPECT_GE(rt.stats(0).timers_fired, 3u);
    EXPECT_GE(rt.stats(1).timers_fired, 3u);
    if (GetParam() == moirai::IdleStrategy::spin || GetParam() == moirai::IdleStrategy::busy_poll) {
      EXPECT_EQ(rt.stats(0).sleeps, 0u) << "a spinning shard never sleeps in the ring";
    }
    if (GetParam() == moirai::IdleStrategy::busy_poll && moirai::this_shard().kernel_busy_poll()) {
      EXPECT_GT(rt.stats(0).busy_polls, 0u) << "the idle shard waited busy-polling in the kernel";
    }
  });
}

INSTANTIATE_TEST_SUITE_P(Idle, TimersUnderIdle,
                         ::testing::Values(moirai::IdleStrategy::spin, moirai::IdleStrategy::spin_then_sleep,
                                           moirai::IdleStrategy::sleep, moirai::IdleStrategy::busy_poll),
                         [](const auto& p) {
                           switch (p.param) {
                             case moirai::IdleStrategy::spin:
                               return std::string("Spin");
                             case moirai::IdleStrategy::spin_then_sleep:
                               return std::string("SpinThenSleep");
                             case moirai::IdleStrategy::sleep:
                               return std::string("Sleep");
                             case moirai::IdleStrategy::busy_poll:
                               return std::string("BusyPoll");
                           }
                           return std::string("Unknown");
                         });

}  // namespace
