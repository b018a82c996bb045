// Real time inside a shard: the run queue serves tasks by their constraints, round-robin tasks rotate once
// their slice is used, periodic tasks keep their phase, admission control refuses an unschedulable set,
// misses and overruns are counted and reported, and each shard thread gets the kernel policy it was given.
#include <gtest/gtest.h>
#include <sys/capability.h>
#include <sys/resource.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "../rt/rt_test_support.hpp"
#include "core_test_support.hpp"
#include "moirai/core/periodic.hpp"
#include "moirai/core/runtime.hpp"
#include "moirai/core/spawn.hpp"
#include "moirai/core/timer.hpp"
#include "moirai/rt/error.hpp"
#include "moirai/rt/thread_policy.hpp"

namespace {

using moirai::Task;
using moirai::TaskContext;
using moirai_test::error_message;
using moirai_test::one_shard;
using namespace std::chrono_literals;

void spin_for(std::chrono::nanoseconds d) {
  const std::int64_t until = moirai::monotonic_ns() + d.count();
  while (moirai::monotonic_ns() < until) {
  }
}

TEST(RtScheduling, ClassesAreServedDeadlineThenPeriodThenPriorityThenArrival) {
  moirai::Runtime rt(one_shard());
  std::string order;
  rt.run([&]() -> Task<void> {
    auto record = [&order](char c) -> Task<void> {
      order += c;
      co_return;
    };
    std::vector<moirai::TaskHandle<void>> hs;
    // Spawned in the reverse of the order they must run in; none runs before the main task suspends.
    hs.push_back(moirai::spawn(record('A')));                                        // best effort
    hs.push_back(moirai::spawn(record('B'), TaskContext{}.with_priority(5)));        // level 5
    hs.push_back(moirai::spawn(record('C'), TaskContext{}.with_priority(9)));        // level 9
    hs.push_back(moirai::spawn(record('D'), TaskContext{}.with_period(10ms, 1us)));  // RM, 10 ms
    hs.push_back(moirai::spawn(record('E'), TaskContext{}.with_period(5ms, 1us)));   // RM, 5 ms
    hs.push_back(moirai::spawn(record('F'), TaskContext{}.with_deadline(50ms)));     // EDF, +50 ms
    hs.push_back(moirai::spawn(record('G'), TaskContext{}.with_deadline(20ms)));     // EDF, +20 ms
    for (auto& h : hs)
      co_await h.join();
  });
  EXPECT_EQ(order, "GFEDCBA");
}

// Two tasks at one level, each yielding between steps. `slice` decides: a slice longer than the whole run
// never rotates (one task finishes first), a 1 ns slice rotates at every yield (strict alternation).
std::string round_robin_trace(std::chrono::nanoseconds slice) {
  moirai::Runtime rt(one_shard());
  std::string trace;
  rt.run([&]() -> Task<void> {
    auto worker = [&trace](char c) -> Task<void> {
      for (int i = 0; i < 4; ++i) {
        trace += c;
        spin_for(10us);
        co_await moirai::yield();
      }
    };
    auto a = moirai::spawn(worker('a'), TaskContext{}.with_round_robin(slice).with_priority(3));
    auto b = moirai::spawn(worker('b'), TaskContext{}.with_round_robin(slice).with_priority(3));
    co_await a.join();
    co_await b.join();
  });
  return trace;
}

TEST(RtScheduling, RoundRobinKeepsItsTurnUntilItsSliceIsUsed) {
  EXPECT_EQ(round_robin_trace(10s), "aaaabbbb");
  EXPECT_EQ(round_robin_trace(1ns), "abababab");
}

TEST(RtScheduling, PlainTasksYieldingAlternate) {
  moirai::Runtime rt(one_shard());
  std::string trace;
  rt.run([&]() -> Task<void> {
    auto worker = [&trace](char c) -> Task<void> {
      for (int i = 0; i < 3; ++i) {
        trace += c;
        co_await moirai::yield();
      }
    };
    auto a = moirai::spawn(worker('a'), TaskContext{}.with_priority(3));
    auto b = moirai::spawn(worker('b'), TaskContext{}.with_priority(3));
    co_await a.join();
    co_await b.join();
  });
  EXPECT_EQ(trace, "ababab");
}

TEST(RtScheduling, PeriodicReleasesKeepTheirPhase) {
  moirai::Runtime rt(one_shard());
  std::vector<moirai::JobInfo> jobs;
  std::vector<std::int64_t> starts;
  std::int64_t first = 0;
  moirai::PeriodicStats stats;
  rt.run([&]() -> Task<void> {
    first = moirai::monotonic_ns() + 1'000'000;
    auto p = moirai::every(
        2ms,
        [&](const moirai::JobInfo& job) {
          jobs.push_back(job);
          starts.push_back(moirai::monotonic_ns());
          spin_for(300us);  // each job's own running time must not push the next release later
          return job.index < 9;
        },
        TaskContext{}.with_name("tick"), first);
    co_await p.join();
    stats = p.stats();
  });
  ASSERT_EQ(jobs.size(), 10u);
  for (std::size_t k = 0; k < jobs.size(); ++k) {
    EXPECT_EQ(jobs[k].index, k);
    EXPECT_EQ(jobs[k].release_ns, first + static_cast<std::int64_t>(k) * 2'000'000);
    EXPECT_EQ(jobs[k].deadline_ns, jobs[k].release_ns + 2'000'000);
    EXPECT_GE(starts[k], jobs[k].release_ns);  // never released early
  }
  EXPECT_EQ(stats.releases, 10u);
  EXPECT_EQ(stats.jitter_ns.count(), 10u);
  EXPECT_EQ(stats.response_ns.count(), 10u);
}

TEST(RtScheduling, EveryRefusesABadPeriod) {
  moirai::Runtime rt(one_shard());
  std::string zero, mismatch;
  rt.run([&]() -> Task<void> {
    zero = error_message([] { moirai::every(0ns, [] {}); }, moirai::Errc::invalid_argument);
    mismatch = error_message(
        [] {
          moirai::every(
              2ms, [] {}, TaskContext{}.with_period(3ms, 1ms));
        },
        moirai::Errc::invalid_argument);
    co_return;
  });
  EXPECT_NE(zero.find("period"), std::string::npos) << zero;
  EXPECT_NE(mismatch.find("differs"), std::string::npos) << mismatch;
}

// Buttazzo's example: (C=2, T=5) and (C=4, T=7), U = 0.971: above the rate-monotonic bounds, and the second
// task's response time reaches 8 > 7 under RM; EDF schedules it (U <= 1).
TEST(RtScheduling, AdmissionRefusesASetItsPolicyCannotSchedule) {
  moirai::Runtime rt(one_shard());
  std::string refused;
  bool rm_opt_out_accepted = false;
  bool edf_accepted = false;
  std::string edf_over;
  std::string mixed;
  rt.run([&]() -> Task<void> {
    auto idle_job = [] {};
    {
      auto t1 = moirai::every(5ms, idle_job, TaskContext{}.with_name("t1").with_period(5ms, 2ms));
      refused = error_message(
          [&] { moirai::every(7ms, idle_job, TaskContext{}.with_name("t2").with_period(7ms, 4ms)); },
          moirai::Errc::admission_refused);
      auto t2 = moirai::every(
          7ms, idle_job, TaskContext{}.with_name("t2").with_period(7ms, 4ms).without_admission_control());
      rm_opt_out_accepted = true;
      mixed = error_message(
          [&] { moirai::spawn([]() -> Task<void> { co_return; }, TaskContext{}.with_deadline(10ms, 1ms)); },
          moirai::Errc::admission_refused);
      t1.cancel();
      t2.cancel();
      co_await moirai::yield();  // let them see the cancellation and end (leaving the admitted set)
      co_await moirai::yield();
    }
    const auto edf = moirai::rt::RtSchedulingPolicy::DeadlineDriven();
    auto e1 = moirai::every(5ms, idle_job, TaskContext{}.with_period(5ms, 2ms, 0ns, edf));
    auto e2 = moirai::every(7ms, idle_job, TaskContext{}.with_period(7ms, 4ms, 0ns, edf));
    edf_accepted = true;
    edf_over = error_message(
        [&] {
          moirai::every(10ms, idle_job, TaskContext{}.with_name("e3").with_period(10ms, 1ms, 0ns, edf));
        },
        moirai::Errc::admission_refused);
    e1.cancel();
    e2.cancel();
  });
  EXPECT_NE(refused.find("'t2'"), std::string::npos) << refused;
  EXPECT_NE(refused.find("unschedulable"), std::string::npos) << refused;
  EXPECT_NE(refused.find("without_admission_control"), std::string::npos) << refused;
  EXPECT_TRUE(rm_opt_out_accepted);
  EXPECT_NE(mixed.find("one policy"), std::string::npos) << mixed;
  EXPECT_TRUE(edf_accepted);
  EXPECT_NE(edf_over.find("'e3'"), std::string::npos) << edf_over;
}

TEST(RtScheduling, DeadlineMissesAndOverrunsAreCountedAndReported) {
  moirai::RuntimeOptions o = one_shard();
  std::vector<moirai::DeadlineMissReport> reports;
  std::vector<std::string> names;
  o.on_deadline_miss = [&](const moirai::DeadlineMissReport& r) {
    reports.push_back(r);
    names.emplace_back(r.task_name);
  };
  moirai::Runtime rt(o);
  std::uint32_t late_misses = 9, on_time_misses = 9, overruns = 9, overrun_misses = 9;
  moirai::PeriodicStats periodic;
  rt.run([&]() -> Task<void> {
    auto late = moirai::spawn([]() -> Task<void> { co_await moirai::sleep_for(5ms); },
                              TaskContext{}.with_name("late").with_deadline(1ms));
    auto on_time = moirai::spawn([]() -> Task<void> { co_return; }, TaskContext{}.with_deadline(10s));
    auto heavy = moirai::spawn(
        []() -> Task<void> {
          spin_for(2ms);
          co_return;
        },
        TaskContext{}.with_name("heavy").with_deadline(10s, 100us));
    co_await late.join();
    co_await on_time.join();
    co_await heavy.join();
    late_misses = late.deadline_misses();
    on_time_misses = on_time.deadline_misses();
    overruns = heavy.wcet_overruns();
    overrun_misses = heavy.deadline_misses();
    // A periodic job that sleeps past its 1 ms deadline, three times.
    auto p = moirai::every(
        1ms,
        [](const moirai::JobInfo& job) -> Task<bool> {
          co_await moirai::sleep_for(3ms);
          co_return job.index < 2;
        },
        TaskContext{}.with_name("slow").with_period(1ms, 100us).without_admission_control());
    co_await p.join();
    periodic = p.stats();
  });
  EXPECT_EQ(late_misses, 1u);
  EXPECT_EQ(on_time_misses, 0u);
  EXPECT_EQ(overruns, 1u);
  EXPECT_EQ(overrun_misses, 0u);
  EXPECT_EQ(periodic.releases, 3u);
  EXPECT_EQ(periodic.deadline_misses, 3u);
  EXPECT_EQ(rt.stats(0).deadline_misses, 4u);
  EXPECT_EQ(rt.stats(0).wcet_overruns, 1u);
  // In the order the jobs ended: heavy (it never suspends), late (5 ms sleep), then slow's three jobs.
  ASSERT_EQ(reports.size(), 5u);
  EXPECT_EQ(names[0], "heavy");
  EXPECT_EQ(reports[0].kind, moirai::DeadlineMissReport::Kind::wcet_overrun);
  EXPECT_GT(reports[0].executed, reports[0].wcet);
  EXPECT_EQ(reports[0].wcet, 100us);
  EXPECT_EQ(names[1], "late");
  EXPECT_EQ(reports[1].kind, moirai::DeadlineMissReport::Kind::deadline_miss);
  EXPECT_GT(reports[1].finished_ns, reports[1].deadline_ns);
  EXPECT_EQ(reports[1].deadline_ns, reports[1].release_ns + 1'000'000);
  for (std::size_t i = 2; i < 5; ++i) {
    EXPECT_EQ(names[i], "slow");
    EXPECT_EQ(reports[i].kind, moirai::DeadlineMissReport::Kind::deadline_miss);
  }
}

// ---- the shard threads' kernel policy

TEST(ShardThreadPolicy, FifoIsAppliedReadBackAndTheCallerGetsItsOwnBack) {
  const moirai::rt::ThreadPolicy before = moirai::rt::read_thread_policy();
  moirai::RuntimeOptions o = one_shard(moirai::IdleStrategy::sleep);  // a SCHED_FIFO shard must not spin
  o.cpus = {1};
  o.thread_policy = moirai::rt::ThreadPolicy::parse("fifo:10");
  moirai::Runtime rt(o);
  moirai::rt::ThreadPolicy inside;
  rt.run([&]() -> Task<void> {
    inside = moirai::rt::read_thread_policy();
    co_return;
  });
  EXPECT_TRUE(rt.thread_policy(0).ok) << rt.thread_policy(0).warning;
  EXPECT_EQ(rt.thread_policy(0).applied.kind, moirai::rt::ThreadPolicy::Kind::fifo);
  EXPECT_EQ(rt.thread_policy(0).applied.priority, 10);
  EXPECT_EQ(inside.kind, moirai::rt::ThreadPolicy::Kind::fifo);
  EXPECT_EQ(inside.priority, 10);
  EXPECT_EQ(moirai::rt::read_thread_policy(), before);  // run() made the caller shard 0; it is restored
}

TEST(ShardThreadPolicy, DeadlineOnAPinnedShardTakesARouteAndUndoesIt) {
  moirai::rt::test::SchedStateGuard guard;
  moirai::RuntimeOptions o = one_shard(moirai::IdleStrategy::sleep);
  o.cpus = {1};
  o.thread_policy = moirai::rt::ThreadPolicy::parse("deadline:200/1000/1000");
  o.thread_policy_options.allow_exclusive_cpuset = true;
  o.thread_policy_options.allow_admission_control_off = true;
  moirai::rt::ThreadPolicy inside;
  moirai::rt::DeadlineRoute route;
  {
    moirai::Runtime rt(o);
    rt.start();
    inside = rt.submit(0, [] { return moirai::rt::read_thread_policy(); }).get();
    rt.stop();
    route = rt.thread_policy(0).route;
    EXPECT_TRUE(rt.thread_policy(0).ok) << rt.thread_policy(0).warning;
  }
  EXPECT_EQ(inside.kind, moirai::rt::ThreadPolicy::Kind::deadline);
  EXPECT_EQ(inside.runtime, 200us);
  EXPECT_EQ(inside.period, 1ms);
  EXPECT_NE(route, moirai::rt::DeadlineRoute::not_needed);
  // stop() undid what the route changed.
  EXPECT_EQ(moirai::rt::test::read_first_line(moirai::rt::test::kRtRuntime), guard.rt_runtime());
}

[[noreturn]] void run_without_cap_sys_nice() {
  cap_t caps = cap_get_proc();
  const cap_value_t nice[] = {CAP_SYS_NICE};
  cap_set_flag(caps, CAP_EFFECTIVE, 1, nice, CAP_CLEAR);
  cap_set_flag(caps, CAP_PERMITTED, 1, nice, CAP_CLEAR);
  if (cap_set_proc(caps) != 0) std::_Exit(10);
  cap_free(caps);
  const rlimit none{0, 0};
  if (setrlimit(RLIMIT_RTPRIO, &none) != 0) std::_Exit(11);
  moirai::RuntimeOptions o = one_shard(moirai::IdleStrategy::sleep);
  o.thread_policy = moirai::rt::ThreadPolicy::parse("fifo:10");
  moirai::Runtime rt(o);
  int ran = 0;
  rt.run([&]() -> Task<void> { ran = co_await moirai::spawn([]() -> Task<int> { co_return 3; }).join(); });
  if (ran != 3) std::_Exit(12);
  if (rt.thread_policy(0).ok) std::_Exit(13);
  if (rt.thread_policy(0).applied.kind != moirai::rt::ThreadPolicy::Kind::other) std::_Exit(14);
  if (rt.thread_policy(0).warning.find("CAP_SYS_NICE") == std::string::npos) std::_Exit(15);
  std::_Exit(0);
}

TEST(ShardThreadPolicyDeathTest, RefusedPolicyKeepsTheShardRunningAndWarnsOnce) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(run_without_cap_sys_nice(), ::testing::ExitedWithCode(0),
              "runs other instead of fifo:10.*CAP_SYS_NICE");
}

TEST(ShardThreadPolicy, ImpossibleParametersAreRefusedBeforeAnythingStarts) {
  moirai::RuntimeOptions o = one_shard();
  o.thread_policy = moirai::rt::ThreadPolicy::fifo(100);
  const std::string what = error_message([&] { moirai::Runtime rt(o); }, moirai::Errc::invalid_argument);
  EXPECT_NE(what.find("thread_policy"), std::string::npos) << what;
  EXPECT_THROW(TaskContext{}.with_period(0ns, 1ms), moirai::rt::RtError);
  EXPECT_THROW(TaskContext{}.with_deadline(1ms, 2ms), moirai::rt::RtError);
}

}  // namespace
