// spawn / spawn_detached / TaskHandle: values and exceptions through join, status transitions, cooperative
// cancellation of sleeping, io-blocked, joining and unstarted tasks, join_for, task contexts and stall
// reports.
#include "moirai/core/spawn.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "core_test_support.hpp"
#include "moirai/core/io.hpp"
#include "moirai/core/runtime.hpp"
#include "moirai/core/submit.hpp"
#include "moirai/core/timer.hpp"

namespace {

using moirai::Errc;
using moirai::Runtime;
using moirai::Task;
using moirai::TaskCancelled;
using moirai::TaskContext;
using moirai::TaskHandle;
using moirai::TaskStatus;
using moirai::TimedOut;
using moirai_test::one_shard;
using moirai_test::two_shards;
using moirai_test::yield_n;
using namespace std::chrono_literals;

Task<int> value_after_yield(int v) {
  co_await moirai::yield();
  co_return v;
}

Task<int> fails_after_yield() {
  co_await moirai::yield();
  throw std::runtime_error("task failed");
}

Task<int> wait_then(moirai_test::Signal* go, int v) {
  co_await moirai_test::wait_for(go);
  co_return v;
}

Task<std::unique_ptr<std::string>> boxed_name() {
  co_await moirai::yield();
  co_return std::make_unique<std::string>("boxed");
}

// Sleeps for an hour unless cancelled; records what it saw.
struct SleepProbe {
  bool started = false;
  bool saw_cancel = false;
  bool woke_normally = false;
};
Task<void> sleep_an_hour(SleepProbe* p) {
  p->started = true;
  try {
    co_await moirai::sleep_for(1h);
  } catch (const TaskCancelled&) {
    p->saw_cancel = true;
    throw;
  }
  p->woke_normally = true;
}

Task<void> mark(bool* ran) {
  *ran = true;
  co_return;
}

Task<void> inner_sleep() {
  co_await moirai::sleep_for(1h);
}

// Catches the cancellation in a nested frame and tries to suspend again: a cancelled task must never wait.
Task<int> swallow_cancel_then_sleep(int* stage) {
  try {
    co_await inner_sleep();
  } catch (const TaskCancelled&) {
    *stage = 1;
  }
  co_await moirai::sleep_for(1h);  // must throw at once
  *stage = 2;
  co_return 0;
}

Task<int> join_other(TaskHandle<int>* other) {
  co_return co_await other->join();
}

using moirai_test::Pipe;

struct IoProbe {
  bool submitted = false;
  bool saw_cancel = false;
  int result = 12345;
};
Task<void> read_pipe(int fd, char* buf, std::size_t n, IoProbe* p) {
  p->submitted = true;
  try {
    p->result = co_await moirai::async_read(fd, buf, n);
  } catch (const TaskCancelled&) {
    p->saw_cancel = true;
    throw;
  }
}

TEST(Spawn, JoinReturnsTheTasksValue) {
  Runtime rt(one_shard());
  rt.run([]() -> Task<void> {
    auto a = moirai::spawn(value_after_yield(1));
    auto b = moirai::spawn([]() -> Task<int> { co_return 2; });
    auto c = moirai::spawn(boxed_name());
    auto d = moirai::spawn([]() -> Task<void> { co_await moirai::yield(); });
    EXPECT_EQ(co_await b.join(), 2);
    EXPECT_EQ(co_await a.join(), 1);
    std::unique_ptr<std::string> s = co_await c.join();
    EXPECT_EQ(*s, "boxed");
    co_await d.join();
    EXPECT_EQ(d.status(), TaskStatus::completed);
  });
}

TEST(Spawn, JoinRethrowsTheTasksExceptionAndTheStatusIsFailed) {
  Runtime rt(one_shard());
  rt.run([]() -> Task<void> {
    auto h = moirai::spawn(fails_after_yield());
    try {
      co_await h.join();
      ADD_FAILURE() << "join did not throw";
    } catch (const std::runtime_error& e) {
      EXPECT_STREQ(e.what(), "task failed");
    }
    EXPECT_EQ(h.status(), TaskStatus::failed);
    EXPECT_TRUE(h.done());
  });
}

TEST(Spawn, JoiningAFinishedTaskReturnsAtOnce) {
  Runtime rt(one_shard());
  rt.run([]() -> Task<void> {
    auto h = moirai::spawn(value_after_yield(9));
    co_await yield_n(5);
    EXPECT_TRUE(h.done());
    EXPECT_EQ(co_await h.join(), 9);
  });
}

TEST(Spawn, StatusGoesQueuedRunningCompleted) {
  Runtime rt(one_shard());
  rt.run([]() -> Task<void> {
    moirai_test::Signal go;
    auto h = moirai::spawn(wait_then(&go, 5));
    EXPECT_EQ(h.status(), TaskStatus::queued) << "spawn only queues the task";
    EXPECT_FALSE(h.done());
    co_await moirai::yield();  // the task runs up to its wait
    EXPECT_EQ(h.status(), TaskStatus::running) << "suspended, but started and not finished";
    go.set();
    EXPECT_EQ(h.status(), TaskStatus::running);
    EXPECT_EQ(co_await h.join(), 5);
    EXPECT_EQ(h.status(), TaskStatus::completed);
    EXPECT_TRUE(h.done());
    EXPECT_STREQ(moirai::to_string(h.status()), "completed");
  });
}

TEST(Spawn, StatusGoesQueuedRunningCancelled) {
  Runtime rt(one_shard());
  rt.run([]() -> Task<void> {
    SleepProbe p;
    auto h = moirai::spawn(sleep_an_hour(&p));
    EXPECT_EQ(h.status(), TaskStatus::queued);
    co_await moirai::yield();
    EXPECT_EQ(h.status(), TaskStatus::running);
    h.cancel();
    EXPECT_THROW(co_await h.join(), TaskCancelled);
    EXPECT_EQ(h.status(), TaskStatus::cancelled);
  });
}

TEST(SpawnCancel, ASleepingTaskEndsCancelledAtOnce) {
  Runtime rt(two_shards());
  rt.run([&rt]() -> Task<void> {
    SleepProbe p;
    auto h = moirai::spawn(sleep_an_hour(&p));
    co_await yield_n(2);
    EXPECT_TRUE(p.started);
    h.cancel();
    try {
      co_await h.join();
      ADD_FAILURE() << "join of a cancelled task returned";
    } catch (const TaskCancelled& e) {
      EXPECT_EQ(e.code(), Errc::cancelled);
    }
    EXPECT_EQ(h.status(), TaskStatus::cancelled);
    EXPECT_TRUE(p.saw_cancel);
    EXPECT_FALSE(p.woke_normally);
    EXPECT_EQ(rt.stats(0).tasks_cancelled, 1u);
  });
}

TEST(SpawnCancel, ATaskBlockedOnAPipeReadHasItsIoCancelled) {
  Runtime rt(one_shard());
  rt.run([]() -> Task<void> {
    Pipe pipe;
    char buf[16] = {};
    IoProbe p;
    auto h = moirai::spawn(read_pipe(pipe.r, buf, sizeof buf, &p));
    co_await yield_n(3);  // the read is submitted and pending: the pipe is empty
    EXPECT_TRUE(p.submitted);
    EXPECT_FALSE(h.done());
    h.cancel();
    EXPECT_THROW(co_await h.join(), TaskCancelled);
    EXPECT_EQ(h.status(), TaskStatus::cancelled);
    EXPECT_TRUE(p.saw_cancel);
    EXPECT_EQ(p.result, 12345) << "the task must not continue past a cancelled read";

    // The request is gone from the kernel: data written now stays in the pipe for the next reader.
    EXPECT_EQ(::write(pipe.w, "x", 1), 1);
    EXPECT_TRUE(pipe.readable()) << "the cancelled read consumed the data";
    EXPECT_EQ(buf[0], '\0');
    char got = 0;
    EXPECT_EQ(co_await moirai::async_read(pipe.r, &got, 1), 1);
    EXPECT_EQ(got, 'x');
  });
}

TEST(SpawnCancel, ANotYetStartedTaskNeverRuns) {
  Runtime rt(one_shard());
  rt.run([&rt]() -> Task<void> {
    bool ran = false;
    auto h = moirai::spawn(mark(&ran));
    EXPECT_EQ(h.status(), TaskStatus::queued);
    h.cancel();
    EXPECT_THROW(co_await h.join(), TaskCancelled);
    EXPECT_FALSE(ran);
    EXPECT_EQ(h.status(), TaskStatus::cancelled);

    // Cancelled before start, without anyone joining at that moment.
    bool ran2 = false;
    auto h2 = moirai::spawn(mark(&ran2));
    h2.cancel();
    co_await yield_n(3);
    EXPECT_FALSE(ran2);
    EXPECT_EQ(h2.status(), TaskStatus::cancelled);
    EXPECT_THROW(co_await h2.join(), TaskCancelled);
    EXPECT_EQ(rt.stats(0).tasks_cancelled, 2u);
  });
}

TEST(SpawnCancel, ACancelledTaskThatCatchesTheCancellationCannotSuspendAgain) {
  Runtime rt(one_shard());
  rt.run([]() -> Task<void> {
    int stage = 0;
    auto h = moirai::spawn(swallow_cancel_then_sleep(&stage));
    co_await yield_n(2);
    h.cancel();
    EXPECT_THROW(co_await h.join(), TaskCancelled);
    EXPECT_EQ(stage, 1);
    EXPECT_EQ(h.status(), TaskStatus::cancelled);
  });
}

TEST(SpawnCancel, CancellingAFinishedTaskChangesNothing) {
  Runtime rt(one_shard());
  rt.run([]() -> Task<void> {
    auto h = moirai::spawn(value_after_yield(3));
    co_await yield_n(3);
    EXPECT_EQ(h.status(), TaskStatus::completed);
    h.cancel();
    h.cancel();
    EXPECT_EQ(h.status(), TaskStatus::completed);
    EXPECT_EQ(co_await h.join(), 3);
  });
}

TEST(SpawnCancel, CancellingAJoinerLeavesTheJoinedTaskRunning) {
  Runtime rt(one_shard());
  rt.run([]() -> Task<void> {
    moirai_test::Signal go;
    auto target = moirai::spawn(wait_then(&go, 11));
    auto joiner = moirai::spawn(join_other(&target));
    co_await yield_n(3);
    EXPECT_EQ(joiner.status(), TaskStatus::running);
    joiner.cancel();
    EXPECT_THROW(co_await joiner.join(), TaskCancelled);
    EXPECT_EQ(joiner.status(), TaskStatus::cancelled);
    EXPECT_EQ(target.status(), TaskStatus::running);
    go.set();
    EXPECT_EQ(co_await target.join(), 11);
  });
}

TEST(SpawnJoinFor, TimesOutAndTheTaskRunsOnAndCanBeJoinedLater) {
  Runtime rt(one_shard());
  rt.run([]() -> Task<void> {
    moirai_test::Signal go;
    auto h = moirai::spawn(wait_then(&go, 21));
    EXPECT_THROW(co_await h.join_for(1ms), TimedOut);
    EXPECT_EQ(h.status(), TaskStatus::running) << "a timed-out join does not cancel the task";
    try {
      co_await h.join_for(100us);
      ADD_FAILURE() << "join_for did not time out";
    } catch (const moirai::Error& e) {
      EXPECT_EQ(e.code(), Errc::timed_out);
    }
    go.set();
    EXPECT_EQ(co_await h.join(), 21);
    EXPECT_EQ(h.status(), TaskStatus::completed);
  });
}

TEST(SpawnJoinFor, ReturnsTheValueWhenTheTaskEndsInTimeAndLeavesNoTimerBehind) {
  Runtime rt(one_shard());
  rt.run([&rt]() -> Task<void> {
    for (int i = 0; i < 100; ++i) {
      auto h = moirai::spawn(value_after_yield(i));
      EXPECT_EQ(co_await h.join_for(100ms), i);
    }
    // Had a join_for timer stayed armed, it would fire during this sleep, into a finished awaiter.
    co_await moirai::sleep_for(110ms);
    EXPECT_EQ(rt.stats(0).timers_fired, 1u) << "only the sleep's own timer fired";
    auto f = moirai::spawn(fails_after_yield());
    EXPECT_THROW(co_await f.join_for(1h), std::runtime_error);
  });
}

TEST(SpawnJoinFor, TheLongestTimeoutNeverExpires) {
  Runtime rt(one_shard());
  rt.run([]() -> Task<void> {
    moirai_test::Signal go;
    auto target = moirai::spawn(wait_then(&go, 8));
    bool timed_out = false;
    auto joiner = moirai::spawn([](TaskHandle<int>* t, bool* to) -> Task<int> {
      try {
        co_return co_await t->join_for(moirai::Duration::max());
      } catch (const TimedOut&) {
        *to = true;
      }
      co_return -1;
    }(&target, &timed_out));
    co_await moirai::sleep_for(2ms);
    // BUG (spawn.hpp, JoinAwaiter::await_suspend): the deadline monotonic_ns() + timeout_ns overflows for
    // Duration::max() (undefined behaviour; in practice negative), so the join times out at once.
    EXPECT_FALSE(timed_out) << "join_for(Duration::max()) timed out at once";
    go.set();
    const int v = co_await joiner.join();
    if (!timed_out) {
      EXPECT_EQ(v, 8);
    }
    co_await target.join();
  });
}

TEST(SpawnJoinFor, AZeroTimeoutReturnsAFinishedTasksValueAndOtherwiseTimesOutAtOnce) {
  Runtime rt(one_shard());
  rt.run([]() -> Task<void> {
    moirai_test::Signal go;
    auto h = moirai::spawn(wait_then(&go, 4));
    EXPECT_THROW(co_await h.join_for(0ns), TimedOut);
    go.set();
    co_await yield_n(2);
    EXPECT_EQ(co_await h.join_for(0ns), 4);
  });
}

TEST(SpawnDetached, DetachedTasksAndDroppedHandlesRunToTheirEnd) {
  Runtime rt(one_shard());
  rt.run([&rt]() -> Task<void> {
    moirai_test::Signal done1, done2;
    moirai::spawn_detached([](moirai_test::Signal* e) -> Task<void> {
      co_await moirai::sleep_for(100us);
      e->set();
    }(&done1));
    {
      auto dropped = moirai::spawn([](moirai_test::Signal* e) -> Task<int> {
        co_await moirai::yield();
        e->set();
        co_return 1;
      }(&done2));
    }  // the handle goes; the task runs on
    co_await moirai_test::wait_for(&done1);
    co_await moirai_test::wait_for(&done2);
    co_await moirai::yield();
    EXPECT_EQ(rt.stats(0).tasks_completed, 2u);
  });
}

TEST(SpawnDetached, AFailingDetachedTaskIsCounted) {
  Runtime rt(one_shard());
  rt.run([&rt]() -> Task<void> {
    moirai::spawn_detached(fails_after_yield(), TaskContext{}.with_name("doomed"));
    co_await yield_n(3);
    EXPECT_EQ(rt.stats(0).tasks_failed, 1u);
  });
}

TEST(SpawnContext, NameAndIdAreVisibleThroughTheHandle) {
  Runtime rt(one_shard());
  rt.run([]() -> Task<void> {
    auto named = moirai::spawn(value_after_yield(1),
                               TaskContext{}.with_name("worker-7").with_id(1234).with_priority(7));
    EXPECT_EQ(named.id(), 1234u);
    EXPECT_STREQ(named.name(), "worker-7");
    // NOTE: TaskHandle offers no way to read the priority back (no priority() accessor), so the priority
    // given in TaskContext cannot be checked through the handle.

    auto a = moirai::spawn(value_after_yield(2));
    auto b = moirai::spawn(value_after_yield(3));
    EXPECT_NE(a.id(), 0u) << "id 0 means the shard assigns one";
    EXPECT_NE(b.id(), 0u);
    EXPECT_NE(a.id(), b.id());
    EXPECT_STREQ(a.name(), "");

    const std::string long_name(100, 'n');
    auto c = moirai::spawn(value_after_yield(4), TaskContext{}.with_name(long_name));
    EXPECT_EQ(std::string(c.name()), std::string(30, 'n')) << "names are cut to the 31-byte record";

    EXPECT_EQ(co_await named.join(), 1);
    EXPECT_STREQ(named.name(), "worker-7") << "still readable after the task ended";
    co_await a.join();
    co_await b.join();
    co_await c.join();
  });
}

TEST(SpawnContext, SpawnOfAnEmptyTaskIsRefused) {
  Runtime rt(one_shard());
  rt.run([]() -> Task<void> {
    Task<int> empty;
    const std::string msg =
        moirai_test::error_message([&] { moirai::spawn(std::move(empty)); }, Errc::invalid_argument);
    EXPECT_NE(msg.find("empty"), std::string::npos) << msg;
    co_return;
  });
}

TEST(SpawnContext, SpawnOffAShardThrowsNotOnShard) {
  moirai_test::error_message([] { moirai::spawn(value_after_yield(1)); }, Errc::not_on_shard);
}

struct StallLog {
  std::mutex m;
  std::vector<moirai::StallReport> reports;
  std::vector<moirai::StallReport> named(const std::string& name) {
    std::lock_guard lock(m);
    std::vector<moirai::StallReport> out;
    for (const auto& r : reports) {
      if (r.task_name == name && !r.ongoing) out.push_back(r);
    }
    return out;
  }
  // The reports peers made while the task was still running.
  std::vector<moirai::StallReport> ongoing() {
    std::lock_guard lock(m);
    std::vector<moirai::StallReport> out;
    for (const auto& r : reports) {
      if (r.ongoing) out.push_back(r);
    }
    return out;
  }
};

// Two shards with a stall budget whose reports go to `log`. The budget is wall time, so a thread the kernel
// preempts looks as if it overran: 20 ms (and hogs of 60 ms) keeps a quiet task from being reported when
// the suite runs loaded and sanitized on two CPUs, where a runnable thread can wait several milliseconds.
constexpr auto kTestStallBudget = 20ms;
moirai::RuntimeOptions recording_stalls(std::shared_ptr<StallLog> log) {
  moirai::RuntimeOptions o = two_shards();
  o.stall_budget = kTestStallBudget;
  o.on_stall = [log](const moirai::StallReport& r) {
    std::lock_guard lock(log->m);
    log->reports.push_back(r);
  };
  return o;
}

void busy_wait(std::chrono::nanoseconds d) {
  const std::int64_t end = moirai::monotonic_ns() + d.count();
  while (moirai::monotonic_ns() < end) {
  }
}

Task<void> hog(int laps) {
  for (int i = 0; i < laps; ++i) {
    busy_wait(3 * kTestStallBudget);
    co_await moirai::yield();
  }
}

TEST(SpawnStall, ATaskThatRunsPastTheBudgetIsReportedOnceWithItsName) {
  auto log = std::make_shared<StallLog>();
  Runtime rt(recording_stalls(log));
  rt.run([]() -> Task<void> {
    auto h = moirai::spawn(hog(2), TaskContext{}.with_name("hog").with_id(77));
    co_await h.join();
    auto quiet = moirai::spawn(value_after_yield(0), TaskContext{}.with_name("quiet"));
    co_await quiet.join();
  });
  const auto hog_reports = log->named("hog");
  ASSERT_EQ(hog_reports.size(), 1u) << "reported once, though it overran twice";
  EXPECT_EQ(hog_reports[0].shard, 0u);
  EXPECT_EQ(hog_reports[0].task_id, 77u);
  EXPECT_EQ(hog_reports[0].budget, std::chrono::nanoseconds(kTestStallBudget));
  EXPECT_GT(hog_reports[0].ran_for, hog_reports[0].budget);
  EXPECT_TRUE(log->named("quiet").empty());
  EXPECT_GE(rt.stats(0).stalls, 1u);
}

TEST(SpawnStall, EachStallingTaskIsReportedOnItsOwnShard) {
  auto log = std::make_shared<StallLog>();
  Runtime rt(recording_stalls(log));
  rt.run([]() -> Task<void> {
    auto a = moirai::spawn(hog(1), TaskContext{}.with_name("hog-a"));
    auto b = moirai::spawn(hog(1), TaskContext{}.with_name("hog-b"));
    co_await a.join();
    co_await b.join();
    co_await moirai::submit_to(1, []() -> Task<void> {
      auto c = moirai::spawn(hog(1), TaskContext{}.with_name("hog-c"));
      co_await c.join();
    });
  });
  EXPECT_EQ(log->named("hog-a").size(), 1u);
  EXPECT_EQ(log->named("hog-b").size(), 1u);
  const auto c = log->named("hog-c");
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].shard, 1u);
}

// What shard 1 does and sees while shard 0 is stuck in a task that never suspends.
struct StallWitness {
  std::atomic<int> pings{0};           // laps of shard 1's timer loop
  std::atomic<int> posted{0};          // one-way messages shard 1 got into its ring to shard 0
  std::atomic<int> delivered{0};       // of those, run on shard 0
  std::atomic<bool> timed_out{false};  // shard 1's request to shard 0 gave up at its timeout
  std::atomic<bool> release{false};    // shard 0's task has stopped spinning
};

// Shard 1: posts more messages to shard 0 than their ring holds (the sender waits for room), asks shard 0
// for an answer with a timeout, and meanwhile runs a timer loop until shard 0 is released.
Task<void> serve_beside_a_stall(StallWitness& w, int messages) {
  auto sender = moirai::spawn([](StallWitness& sw, int n) -> Task<void> {
    for (int i = 0; i < n; ++i) {
      co_await moirai::post_to(0, [p = &sw] { p->delivered.fetch_add(1); });
      sw.posted.fetch_add(1);
    }
  }(w, messages));
  try {
    co_await moirai::with_timeout(
        2ms, []() -> Task<int> { co_return co_await moirai::submit_to(0, [] { return 1; }); }());
  } catch (const TimedOut&) {
    w.timed_out.store(true);
  }
  while (!w.release.load()) {
    co_await moirai::sleep_for(100us);
    w.pings.fetch_add(1);
  }
  co_await sender.join();
}

// Spins without suspending until `w` shows that shard 1 went on and `log` holds a report of this stall made
// while it lasts, or 10 s pass; then records what it saw and releases shard 1's loop.
Task<void> spin_until_witnessed(StallWitness& w, StallLog& log, bool& went_on, int& posted) {
  const std::int64_t give_up = moirai::monotonic_ns() + 10'000'000'000;
  while (moirai::monotonic_ns() < give_up) {
    if (w.pings.load() >= 100 && w.timed_out.load() && !log.ongoing().empty()) {
      went_on = true;
      break;
    }
  }
  posted = w.posted.load();
  w.release.store(true);
  co_return;
}

// Shard 0 runs a task that spins without suspending until shard 1 has shown, from its side, that it went on:
// its timer loop ran 100 laps, its request to shard 0 timed out instead of blocking it, and its sender of
// more messages than the ring holds waits for room (posted stays under the count). The spin gives up after 10
// s, so a shard 1 that does not go on fails the test instead of hanging it. Then the stall is reported and
// counted, and every message shard 1 sent arrives.
TEST(SpawnStall, WhileOneShardIsStuckTheOtherServesAndItsRequestsToTheStuckOneWaitWithoutBlockingIt) {
  auto log = std::make_shared<StallLog>();
  moirai::RuntimeOptions o = recording_stalls(log);
  o.queue_capacity = 8;
  Runtime rt(o);
  constexpr int kMessages = 100;
  StallWitness w;
  bool went_on = false;
  int posted_during_stall = -1;
  rt.run([&]() -> Task<void> {
    auto beside = moirai::spawn([](StallWitness& sw) -> Task<void> {
      co_await moirai::submit_to(1, [&sw] { return serve_beside_a_stall(sw, kMessages); });
    }(w));
    co_await moirai::yield();  // the request to shard 1 is out
    auto stuck = moirai::spawn(spin_until_witnessed(w, *log, went_on, posted_during_stall),
                               TaskContext{}.with_name("stuck").with_id(4242));
    co_await stuck.join();
    co_await beside.join();
  });
  EXPECT_TRUE(went_on) << "shard 1 stopped while shard 0 was stuck, or did not report it: pings "
                       << w.pings.load() << ", timed out " << w.timed_out.load() << ", ongoing reports "
                       << log->ongoing().size();
  // Reported while still stuck, by the shard that watched it, once.
  const auto ongoing = log->ongoing();
  ASSERT_EQ(ongoing.size(), 1u);
  EXPECT_EQ(ongoing[0].shard, 0u);
  EXPECT_EQ(ongoing[0].seen_by, 1u);
  EXPECT_EQ(ongoing[0].task_id, 4242u);
  EXPECT_GT(ongoing[0].ran_for, ongoing[0].budget);
  EXPECT_LT(posted_during_stall, kMessages) << "the ring to the stuck shard never filled";
  EXPECT_EQ(w.delivered.load(), kMessages);  // backpressure, not loss
  const auto reports = log->named("stuck");
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].shard, 0u);
  EXPECT_GT(reports[0].ran_for, reports[0].budget);
  EXPECT_GE(rt.stats(0).stalls, 1u);
}

TEST(SpawnMany, TenThousandTasksEachJoiningTheNextDoNotOverflowTheStack) {
  Runtime rt(one_shard());
#if defined(MOIRAI_SANITIZED)
  // g++ turns symmetric transfer into a sibling call, which AddressSanitizer's stack instrumentation can
  // prevent in a frame that holds instrumented locals: each resumption then costs a real stack frame. The
  // depth that proves the point in an optimised build would overflow there, so the sanitizers check the
  // same chain at 1,000.
  const int n = 1'000;
#else
  const int n = 10'000;
#endif
  const int v = rt.run([]() -> Task<int> {
    struct Chain {
      static Task<int> link(int remaining) {
        if (remaining == 0) {
          co_await moirai::yield();
          co_return 0;
        }
        auto next = moirai::spawn(link(remaining - 1));
        co_return 1 + co_await next.join();
      }
    };
    co_return co_await Chain::link(n);
  });
  EXPECT_EQ(v, n);
}

TEST(SpawnMany, TwentyThousandTasksAllCompleteAndAreCounted) {
  Runtime rt(one_shard());
  rt.run([&rt]() -> Task<void> {
    std::vector<TaskHandle<int>> hs;
    hs.reserve(20'000);
    for (int i = 0; i < 20'000; ++i)
      hs.push_back(moirai::spawn(value_after_yield(i)));
    long sum = 0;
    for (auto& h : hs)
      sum += co_await h.join();
    EXPECT_EQ(sum, 20'000L * 19'999 / 2);
    EXPECT_EQ(rt.stats(0).tasks_completed, 20'000u);
    EXPECT_EQ(rt.stats(0).tasks_spawned, 20'001u);  // and main
  });
}

}  // namespace

namespace {

TEST(SpawnCallable, ALambdasCapturesLiveAsLongAsItsTask) {
  Runtime rt(moirai_test::one_shard());
  std::string got = rt.run([]() -> moirai::Task<std::string> {
    std::string text = "captured by value";
    // The lambda object is a temporary of this full expression; its task runs after it is gone.
    auto h = moirai::spawn([text]() -> moirai::Task<std::string> {
      co_await moirai::sleep_for(std::chrono::microseconds(50));
      co_return text;
    });
    co_return co_await h.join();
  });
  EXPECT_EQ(got, "captured by value");
}

TEST(SpawnContext, PriorityIsVisibleThroughTheHandle) {
  Runtime rt(moirai_test::one_shard());
  int prio = rt.run([]() -> moirai::Task<int> {
    auto h = moirai::spawn([]() -> moirai::Task<void> { co_return; }, moirai::TaskContext{}.with_priority(7));
    const int p = h.priority();
    co_await h.join();
    co_return p;
  });
  EXPECT_EQ(prio, 7);
}

}  // namespace
