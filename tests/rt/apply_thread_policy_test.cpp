// apply_thread_policy on real threads: each policy applied to a short-lived sleeping thread and read back
// with sched_getattr; SCHED_DEADLINE through each route this machine offers (with the machine's state
// restored); invalid parameters refused before anything is touched; and the degraded path without
// CAP_SYS_NICE, in a child process so that dropping the capability cannot leak into other tests.
#include <gtest/gtest.h>

#include <sys/capability.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <climits>
#include <fstream>
#include <string>

#include "moirai/rt/capabilities.hpp"
#include "moirai/rt/error.hpp"
#include "moirai/rt/exclusive_cpuset.hpp"
#include "moirai/rt/thread_policy.hpp"
#include "rt_test_support.hpp"

namespace moirai::rt {
namespace {

using namespace std::chrono_literals;
using test::SchedStateGuard;
using test::SleepyThread;

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// A small deadline reservation: 100 us every 10 ms (1% of a CPU). The thread sleeps throughout anyway.
const ThreadPolicy kDeadline = ThreadPolicy::deadline_policy(100us, 10ms, 10ms);

void skip_without_sys_nice() {
  if (!Capabilities::current().sys_nice) GTEST_SKIP() << "needs CAP_SYS_NICE (run as root)";
}

TEST(ApplyThreadPolicy, OtherWithNice) {
  skip_without_sys_nice();
  SleepyThread t;
  ApplyResult r = apply_thread_policy(ThreadPolicy::other(5), t.tid());
  EXPECT_TRUE(r.ok) << r.warning;
  EXPECT_TRUE(r.warning.empty());
  EXPECT_EQ(r.applied, ThreadPolicy::other(5));
  EXPECT_EQ(r.route, DeadlineRoute::not_needed);
  EXPECT_EQ(read_thread_policy(t.tid()), ThreadPolicy::other(5));
  r = apply_thread_policy(ThreadPolicy::other(-2), t.tid());
  EXPECT_TRUE(r.ok) << r.warning;
  EXPECT_EQ(read_thread_policy(t.tid()).nice, -2);
}

TEST(ApplyThreadPolicy, Fifo) {
  skip_without_sys_nice();
  SleepyThread t;
  const ApplyResult r = apply_thread_policy(ThreadPolicy::fifo(10), t.tid());
  EXPECT_TRUE(r.ok) << r.warning;
  EXPECT_EQ(r.requested, ThreadPolicy::fifo(10));
  EXPECT_EQ(r.applied, ThreadPolicy::fifo(10));
  EXPECT_EQ(read_thread_policy(t.tid()), ThreadPolicy::fifo(10));
  // And back: a thread leaves SCHED_FIFO the same way.
  EXPECT_TRUE(apply_thread_policy(ThreadPolicy::other(), t.tid()).ok);
  EXPECT_EQ(read_thread_policy(t.tid()), ThreadPolicy::other());
}

TEST(ApplyThreadPolicy, RoundRobin) {
  skip_without_sys_nice();
  SleepyThread t;
  const ApplyResult r = apply_thread_policy(ThreadPolicy::round_robin(7), t.tid());
  EXPECT_TRUE(r.ok) << r.warning;
  EXPECT_EQ(read_thread_policy(t.tid()), ThreadPolicy::round_robin(7));
}

TEST(ApplyThreadPolicy, CallingThreadByDefault) {
  skip_without_sys_nice();
  const ThreadPolicy before = read_thread_policy();
  const ApplyResult r = apply_thread_policy(ThreadPolicy::other(3));
  EXPECT_TRUE(r.ok) << r.warning;
  EXPECT_EQ(read_thread_policy().nice, 3);
  EXPECT_TRUE(apply_thread_policy(before).ok);
}

TEST(ApplyThreadPolicy, InvalidParametersThrowBeforeTouching) {
  SleepyThread t;
  const ThreadPolicy before = read_thread_policy(t.tid());
  const ThreadPolicy bad[] = {ThreadPolicy::fifo(100), ThreadPolicy::round_robin(0), ThreadPolicy::other(42),
                              ThreadPolicy::deadline_policy(1000ns, 10ms, 10ms),
                              ThreadPolicy::deadline_policy(5ms, 2ms, 10ms)};
  for (const ThreadPolicy& p : bad) {
    try {
      apply_thread_policy(p, t.tid(), {true, true});
      ADD_FAILURE() << "accepted " << p.to_string();
    } catch (const RtError& e) {
      EXPECT_EQ(e.code(), std::errc::invalid_argument) << e.what();
    }
    EXPECT_EQ(read_thread_policy(t.tid()), before);
  }
}

TEST(ApplyThreadPolicy, NoSuchThreadThrows) {
  try {
    apply_thread_policy(ThreadPolicy::other(), INT_MAX);
    ADD_FAILURE();
  } catch (const RtError& e) {
    EXPECT_EQ(e.code(), std::errc::no_such_process) << e.what();
  }
  EXPECT_THROW(read_thread_policy(INT_MAX), RtError);
}

TEST(ApplyThreadPolicy, DeadlineDirectOnAnUnpinnedThread) {
  skip_without_sys_nice();
  SchedStateGuard guard;
  SleepyThread t;  // affinity: every CPU of the process, so it spans its root domain
  const ApplyResult r = apply_thread_policy(kDeadline, t.tid(), {false, false});
  ASSERT_TRUE(r.ok) << r.warning;
  EXPECT_EQ(r.route, DeadlineRoute::direct);
  EXPECT_EQ(r.applied, kDeadline);
  EXPECT_EQ(read_thread_policy(t.tid()), kDeadline);
  EXPECT_TRUE(apply_thread_policy(ThreadPolicy::other(), t.tid()).ok);
}

TEST(ApplyThreadPolicy, DeadlineOnAPinnedThreadWithoutARouteIsRefusedCleanly) {
  skip_without_sys_nice();
  SchedStateGuard guard;
  if (guard.rt_runtime() == "-1") GTEST_SKIP() << "admission control is already off on this machine";
  SleepyThread t(test::test_cpu());
  const ApplyResult r = apply_thread_policy(kDeadline, t.tid(), {false, false});
  if (r.ok) GTEST_SKIP() << "this CPU already is its own root domain";
  EXPECT_EQ(r.route, DeadlineRoute::not_needed);
  EXPECT_EQ(r.applied, ThreadPolicy::other());
  EXPECT_EQ(read_thread_policy(t.tid()), ThreadPolicy::other());
  EXPECT_TRUE(contains(r.warning, "EPERM")) << r.warning;
  EXPECT_TRUE(contains(r.warning, "root domain")) << r.warning;
  EXPECT_TRUE(contains(r.warning, "scripts/rt-cpuset")) << r.warning;
  EXPECT_TRUE(contains(r.warning, "keeps other")) << r.warning;
  EXPECT_EQ(r.warning.find('\n'), std::string::npos);
}

TEST(ApplyThreadPolicy, DeadlineOnAPinnedThreadWithAdmissionControlOff) {
  skip_without_sys_nice();
  SchedStateGuard guard;
  if (guard.rt_runtime() == "-1") GTEST_SKIP() << "admission control is already off on this machine";
  {
    SleepyThread t(test::test_cpu());
    const ApplyResult r = apply_thread_policy(kDeadline, t.tid(), {false, true});
    ASSERT_TRUE(r.ok) << r.warning;
    EXPECT_EQ(r.route, DeadlineRoute::admission_control_off);
    EXPECT_TRUE(contains(r.route_detail, "was " + guard.rt_runtime())) << r.route_detail;
    EXPECT_EQ(read_thread_policy(t.tid()), kDeadline);
    EXPECT_EQ(test::read_first_line(test::kRtRuntime), "-1");
    EXPECT_TRUE(apply_thread_policy(ThreadPolicy::other(), t.tid()).ok);
  }
  EXPECT_NO_THROW(release_deadline_routes());
  EXPECT_EQ(test::read_first_line(test::kRtRuntime), guard.rt_runtime());
}

TEST(ApplyThreadPolicy, DeadlineOnAPinnedThreadInAnExclusiveCpuset) {
  skip_without_sys_nice();
  SchedStateGuard guard;
  if (guard.mount().version != CgroupVersion::v1) {
    GTEST_SKIP() << "the exclusive-cpuset route is exercised on cgroup v1 cpuset hierarchies only";
  }
  if (guard.rt_runtime() == "-1") GTEST_SKIP() << "admission control is off: the route would not be needed";
  const int cpu = test::test_cpu();
  const std::string dir = guard.mount().path + "/" + ExclusiveCpuset::kNamePrefix + std::to_string(cpu);
  {
    SleepyThread t(cpu);
    const ApplyResult r = apply_thread_policy(kDeadline, t.tid(), {true, false});
    ASSERT_TRUE(r.ok) << r.warning;
    EXPECT_EQ(r.route, DeadlineRoute::exclusive_cpuset);
    EXPECT_EQ(r.route_detail, dir);
    EXPECT_EQ(read_thread_policy(t.tid()), kDeadline);
    EXPECT_EQ(test::read_first_line(dir + "/cpuset.cpus"), std::to_string(cpu));
    EXPECT_EQ(test::read_first_line(dir + "/cpuset.cpu_exclusive"), "1");
    EXPECT_EQ(test::read_first_line(dir + "/tasks"), std::to_string(t.tid()));
    EXPECT_EQ(test::read_first_line(guard.mount().path + "/cpuset.sched_load_balance"), "0");
    EXPECT_TRUE(apply_thread_policy(ThreadPolicy::other(), t.tid()).ok);
    EXPECT_NO_THROW(release_deadline_routes());
    // Back where it came from, still pinned.
    cpu_set_t set;
    ASSERT_EQ(sched_getaffinity(t.tid(), sizeof set, &set), 0);
    EXPECT_EQ(CPU_COUNT(&set), 1);
    EXPECT_TRUE(CPU_ISSET(cpu, &set));
  }
  struct stat st;
  EXPECT_NE(::stat(dir.c_str(), &st), 0) << dir << " still exists";
  const std::string rest = guard.mount().path + "/" + ExclusiveCpuset::kRestName;
  EXPECT_NE(::stat(rest.c_str(), &st), 0) << rest << " still exists";
  EXPECT_EQ(test::read_first_line(guard.mount().path + "/cpuset.sched_load_balance"), guard.load_balance());
}

TEST(ApplyThreadPolicy, DeadlineUsesAPreparedCpusetAndLeavesItInPlace) {
  // As after `scripts/rt-cpuset setup CPU`: the cpuset exists before the service asks for SCHED_DEADLINE.
  skip_without_sys_nice();
  SchedStateGuard guard;
  if (guard.mount().version != CgroupVersion::v1) GTEST_SKIP() << "cgroup v1 cpuset hierarchy only";
  if (guard.rt_runtime() == "-1") GTEST_SKIP() << "admission control is off: the route would not be needed";
  const int cpu = test::test_cpu();
  ExclusiveCpuset prepared = ExclusiveCpuset::create(cpu);
  {
    SleepyThread t(cpu);
    const ApplyResult r = apply_thread_policy(kDeadline, t.tid(), {true, false});
    if (r.route == DeadlineRoute::direct) {
      // Splitting the root domain is what counts, not which cpuset the thread is in: with the cpuset in place
      // a thread pinned to the CPU is admitted directly.
      EXPECT_TRUE(r.ok);
    } else {
      ASSERT_TRUE(r.ok) << r.warning;
      EXPECT_EQ(r.route, DeadlineRoute::exclusive_cpuset);
      EXPECT_EQ(r.route_detail, prepared.path());
    }
    EXPECT_EQ(read_thread_policy(t.tid()), kDeadline);
    EXPECT_TRUE(apply_thread_policy(ThreadPolicy::other(), t.tid()).ok);
    EXPECT_NO_THROW(release_deadline_routes());
  }
  struct stat st;
  EXPECT_EQ(::stat(prepared.path().c_str(), &st), 0) << "a prepared cpuset must stay";
  EXPECT_NO_THROW(prepared.release());
  EXPECT_NE(
      ::stat((guard.mount().path + "/" + ExclusiveCpuset::kNamePrefix + std::to_string(cpu)).c_str(), &st),
      0);
  EXPECT_EQ(test::read_first_line(guard.mount().path + "/cpuset.sched_load_balance"), guard.load_balance());
}

TEST(ApplyThreadPolicy, DeadlineRouteThatStillFailsIsUndone) {
  // A reservation larger than a CPU's bandwidth: every route is tried and refused (EBUSY), and each is
  // undone.
  skip_without_sys_nice();
  SchedStateGuard guard;
  if (guard.rt_runtime() == "-1") GTEST_SKIP() << "admission control is already off on this machine";
  SleepyThread t(test::test_cpu());
  const ThreadPolicy greedy = ThreadPolicy::deadline_policy(9900us, 10ms, 10ms);  // 99% > 95%
  const ApplyResult r = apply_thread_policy(greedy, t.tid(), {true, false});
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(read_thread_policy(t.tid()), ThreadPolicy::other());
  EXPECT_FALSE(r.warning.empty());
  EXPECT_EQ(test::read_first_line(test::kRtRuntime), guard.rt_runtime());
  if (guard.mount().version == CgroupVersion::v1) {
    struct stat st;
    const std::string dir =
        guard.mount().path + "/" + ExclusiveCpuset::kNamePrefix + std::to_string(test::test_cpu());
    EXPECT_NE(::stat(dir.c_str(), &st), 0) << dir << " left behind";
    EXPECT_EQ(test::read_first_line(guard.mount().path + "/cpuset.sched_load_balance"), guard.load_balance());
  }
  cpu_set_t set;
  ASSERT_EQ(sched_getaffinity(t.tid(), sizeof set, &set), 0);
  EXPECT_EQ(CPU_COUNT(&set), 1);
}

// The degraded path. In a child: drop CAP_SYS_NICE from the effective and permitted sets and set
// RLIMIT_RTPRIO to 0, then ask for fifo:10. The exit code carries the verdict (0: as expected).
int degraded_child() {
  cap_t caps = cap_get_proc();
  if (caps == nullptr) return 10;
  const cap_value_t drop[] = {CAP_SYS_NICE};
  if (cap_set_flag(caps, CAP_EFFECTIVE, 1, drop, CAP_CLEAR) != 0) return 11;
  if (cap_set_flag(caps, CAP_PERMITTED, 1, drop, CAP_CLEAR) != 0) return 12;
  if (cap_set_proc(caps) != 0) return 13;
  cap_free(caps);
  const rlimit zero{0, 0};
  if (setrlimit(RLIMIT_RTPRIO, &zero) != 0) return 14;
  if (Capabilities::current().sys_nice) return 15;

  const ApplyResult r = apply_thread_policy(ThreadPolicy::fifo(10));
  if (r.ok) return 20;
  if (!contains(r.warning, "CAP_SYS_NICE")) return 21;
  if (!contains(r.warning, "RLIMIT_RTPRIO")) return 22;
  if (!contains(r.warning, "setcap cap_sys_nice+ep")) return 23;
  if (r.applied != ThreadPolicy::other()) return 24;
  if (read_thread_policy() != ThreadPolicy::other()) return 25;

  const ApplyResult d = apply_thread_policy(kDeadline, 0, {true, true});
  if (d.ok) return 30;
  if (!contains(d.warning, "CAP_SYS_NICE")) return 31;
  if (read_thread_policy() != ThreadPolicy::other()) return 32;
  return 0;
}

TEST(ApplyThreadPolicy, WithoutCapSysNiceTheThreadKeepsItsPolicyAndSaysWhy) {
  skip_without_sys_nice();  // the child must start with the capability to show what losing it does
  if (read_thread_policy() != ThreadPolicy::other()) GTEST_SKIP() << "the test runner is not on SCHED_OTHER";
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) _exit(degraded_child());
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "see degraded_child() for what each code means";
}

}  // namespace
}  // namespace moirai::rt
