// The runtime's life: stop() and the end of run() with work in flight (sleeping, io-blocked and cross-shard
// tasks), tasks that ignore cancellation, misuse of start/run/submit, CPU lists, calls off a shard, and
// set-up failures reported at start.
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

#include <fcntl.h>
#include <atomic>
#include <chrono>
#include <future>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "../support/child_process.hpp"
#include "../support/seccomp_refusal.hpp"
#include "core_test_support.hpp"
#include "moirai/core/cpu_set.hpp"
#include "moirai/core/io.hpp"
#include "moirai/core/runtime.hpp"
#include "moirai/core/submit.hpp"
#include "moirai/core/timer.hpp"

namespace {

using moirai::Errc;
using moirai::Runtime;
using moirai::Task;
using moirai::TaskCancelled;
using moirai_test::error_message;
using moirai_test::Tracked;
using moirai_test::two_shards;
using namespace std::chrono_literals;

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

// Polls from a thread that is not a shard; fails the test (instead of hanging) after `limit`.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit = 5000ms) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(100us);
  }
  return true;
}

using moirai_test::Pipe;

struct InFlight {
  std::atomic<int> started{0};
  std::atomic<int> cancelled{0};
  std::atomic<int> finished_normally{0};
  std::atomic<int> other_end{0};
};

Task<void> sleeper(InFlight* f, Tracked) {
  f->started.fetch_add(1);
  try {
    co_await moirai::sleep_for(1h);
  } catch (const TaskCancelled&) {
    f->cancelled.fetch_add(1);
    throw;
  }
  f->finished_normally.fetch_add(1);
}

Task<void> reader(InFlight* f, int fd, Tracked) {
  char buf[8];
  f->started.fetch_add(1);
  try {
    co_await moirai::async_read(fd, buf, sizeof buf);
  } catch (const TaskCancelled&) {
    f->cancelled.fetch_add(1);
    throw;
  }
  f->finished_normally.fetch_add(1);
}

// Waits on a request to the other shard, whose task sleeps for an hour.
Task<void> remote_waiter(InFlight* f, Tracked) {
  try {
    co_await moirai::submit_to(1 - moirai::this_shard_id(), [f]() { return sleeper(f, Tracked{}); });
  } catch (const TaskCancelled&) {
    f->cancelled.fetch_add(1);  // the remote task's cancellation comes back as this request's outcome
    throw;
  } catch (...) {
    f->other_end.fetch_add(1);
    throw;
  }
  f->finished_normally.fetch_add(1);
}

void spawn_work(InFlight* f, int pipe_fd) {
  for (int i = 0; i < 20; ++i)
    moirai::spawn_detached(sleeper(f, Tracked{}));
  for (int i = 0; i < 3; ++i)
    moirai::spawn_detached(reader(f, pipe_fd, Tracked{}));
  moirai::spawn_detached(remote_waiter(f, Tracked{}));
}

// Per shard: 20 sleepers, 3 readers, 1 remote waiter, and the sleeper it runs on the other shard.
constexpr int kStartedPerShard = 20 + 3 + 1;
constexpr int kTasksPerShard = 20 + 3 + 1 + 1;

TEST(Shutdown, StopWithWorkInFlightCancelsEveryTaskAndFreesEveryFrame) {
  Pipe p0, p1;
  InFlight f;
  {
    Runtime rt(two_shards());
    rt.start();
    rt.submit(0, [&] { spawn_work(&f, p0.r); }).get();
    rt.submit(1, [&] { spawn_work(&f, p1.r); }).get();
    ASSERT_TRUE(eventually([&] { return f.started.load() == 2 * kStartedPerShard; }));
    // A request from outside that is still running at stop: its future learns of the cancellation.
    std::atomic<bool> pending_started{false};
    auto pending = rt.submit(1, [&pending_started]() -> Task<int> {
      pending_started.store(true);
      co_await moirai::sleep_for(1h);
      co_return 1;
    });
    ASSERT_TRUE(eventually([&] { return pending_started.load(); }));
    rt.stop();
    EXPECT_FALSE(rt.running());
    EXPECT_THROW(pending.get(), TaskCancelled);
    EXPECT_EQ(f.cancelled.load(), 2 * kTasksPerShard);
    EXPECT_EQ(f.finished_normally.load(), 0);
    EXPECT_EQ(f.other_end.load(), 0);
    EXPECT_EQ(Tracked::live.load(), 0) << "every frame was destroyed";
    const auto s0 = rt.stats(0);
    const auto s1 = rt.stats(1);
    // The remote sleepers and the outside request run nested inside the runtime's own forwarding tasks,
    // which catch the cancellation to send it back: those end "completed", so they are not counted here.
    EXPECT_EQ(s0.tasks_cancelled + s1.tasks_cancelled, 2u * (kTasksPerShard - 1));
    rt.stop();  // idempotent
  }
  EXPECT_EQ(Tracked::live.load(), 0);
}

TEST(Shutdown, TheDestructorStopsARunningRuntime) {
  Pipe p;
  InFlight f;
  {
    Runtime rt(two_shards());
    rt.start();
    rt.submit(0, [&] { spawn_work(&f, p.r); }).get();
    ASSERT_TRUE(eventually([&] { return f.started.load() == kStartedPerShard; }));
  }
  EXPECT_EQ(f.cancelled.load(), kTasksPerShard);
  EXPECT_EQ(Tracked::live.load(), 0);
}

TEST(Shutdown, RunReturnsWhenMainEndsWhileDetachedTasksStillSleep) {
  Pipe p;
  InFlight f;
  Runtime rt(two_shards());
  const int v = rt.run([&]() -> Task<int> {
    spawn_work(&f, p.r);
    co_await moirai::submit_to(1, [&] { spawn_work(&f, p.r); });
    { auto dropped = moirai::spawn(sleeper(&f, Tracked{})); }
    while (f.started.load() < 2 * kStartedPerShard + 1)
      co_await moirai::sleep_for(50us);
    co_return 7;
  });
  EXPECT_EQ(v, 7);
  EXPECT_EQ(f.cancelled.load(), 2 * kTasksPerShard + 1);
  EXPECT_EQ(f.finished_normally.load(), 0);
  EXPECT_EQ(Tracked::live.load(), 0);
  EXPECT_FALSE(rt.running());
}

// The last shard to quiesce wakes the others; one that was just going to sleep must still see it. Many short
// runs give the race many chances: a lost wake-up shows as a hang, which ctest reports as a timeout.
TEST(Shutdown, ManyShortRunsAllEndWhicheverShardQuiescesLast) {
  for (const auto idle : {moirai::IdleStrategy::sleep, moirai::IdleStrategy::spin_then_sleep}) {
    for (int i = 0; i < 300; ++i) {
      Runtime rt(two_shards(idle));
      const int v = rt.run([i]() -> Task<int> {
        // Alternate which shard has the last work, so either can be the last to quiesce.
        if (i % 2 == 0) co_return co_await moirai::submit_to(1, [i] { return i; });
        co_return i;
      });
      ASSERT_EQ(v, i);
      ASSERT_FALSE(rt.running());
    }
  }
}

TEST(Shutdown, RunRethrowsMainsExceptionAfterCancellingTheRest) {
  InFlight f;
  Runtime rt(two_shards());
  EXPECT_THROW(rt.run([&]() -> Task<int> {
    moirai::spawn_detached(sleeper(&f, Tracked{}));
    co_await moirai::submit_to(1, [&] { moirai::spawn_detached(sleeper(&f, Tracked{})); });
    while (f.started.load() < 2)
      co_await moirai::sleep_for(50us);
    throw std::runtime_error("main failed");
  }),
               std::runtime_error);
  EXPECT_EQ(f.cancelled.load(), 2);
  EXPECT_EQ(Tracked::live.load(), 0);
}

TEST(Shutdown, WorkStartedWhileStoppingIsRefused) {
  std::atomic<int> spawn_refused{0}, submit_refused{0};
  Runtime rt(two_shards());
  rt.run([&]() -> Task<void> {
    moirai::spawn_detached([](std::atomic<int>* sp, std::atomic<int>* su) -> Task<void> {
      try {
        co_await moirai::sleep_for(1h);
      } catch (const TaskCancelled&) {
      }
      try {
        moirai::spawn_detached([]() -> Task<void> { co_return; }());
      } catch (const moirai::Error& e) {
        if (e.code() == Errc::stopped) sp->fetch_add(1);
      }
      try {
        co_await moirai::submit_to(1, [] { return 1; });
      } catch (const moirai::Error& e) {
        if (e.code() == Errc::stopped) su->fetch_add(1);
      }
    }(&spawn_refused, &submit_refused));
    co_await moirai::yield();
  });
  EXPECT_EQ(spawn_refused.load(), 1);
  EXPECT_EQ(submit_refused.load(), 1);
}

Task<void> stubborn(std::atomic<bool>* started, std::atomic<int>* laps, Tracked) {
  started->store(true);
  for (;;) {
    try {
      co_await moirai::yield();  // suspends, then throws TaskCancelled once cancelled
    } catch (const TaskCancelled&) {
      laps->fetch_add(1);  // ... and ignores it
    }
  }
}

TEST(Shutdown, ATaskThatIgnoresCancellationIsTornDownAfterTheShutdownTimeout) {
  moirai::RuntimeOptions o = two_shards();
  o.shutdown_timeout = 30ms;
  std::atomic<int> laps{0};
  std::atomic<bool> started{false};
  {
    Runtime rt(o);
    rt.start();
    rt.submit(1, [&] {
        moirai::spawn_detached(stubborn(&started, &laps, Tracked{}),
                               moirai::TaskContext{}.with_name("stubborn"));
      }).get();
    ASSERT_TRUE(eventually([&] { return started.load(); }));
    rt.stop();  // returns: the shard gives up on the task after 30 ms
    EXPECT_GT(laps.load(), 0);
    EXPECT_EQ(Tracked::live.load(), 0) << "its frame was destroyed";
  }
}

// The runtime forwards a coroutine handed to another shard (submit_to) or handed in from outside
// (Runtime::submit) through a detached task of its own that sends the outcome back. When that task is spawned
// in the same loop lap in which the shard first sees the stop, cancel_all_live() cancels it before it has
// started, and a task cancelled before it starts never runs: the outcome is never sent.

std::atomic<bool> g_spinner_running{false};
std::atomic<bool> g_spinner_release{false};

TEST(Shutdown, ACoroutineSubmittedFromOutsideAsStopBeginsStillGetsAnAnswer) {
  g_spinner_running.store(false);
  g_spinner_release.store(false);
  moirai::RuntimeOptions o = two_shards(moirai::IdleStrategy::sleep);
  o.stall_budget = 0ns;  // the spinner below is meant to hold its shard
  Runtime rt(o);
  rt.start();
  // Hold shard 1 inside a task, so that the next external work is picked up in the lap that also sees stop.
  rt.submit(1, [] {
      moirai::spawn_detached([]() -> Task<void> {
        g_spinner_running.store(true);
        while (!g_spinner_release.load()) {
        }
        co_return;
      }());
    }).get();
  ASSERT_TRUE(eventually([] { return g_spinner_running.load(); }));
  auto f = rt.submit(1, []() -> Task<int> { co_return 5; });
  std::thread stopper([&] { rt.stop(); });
  ASSERT_TRUE(eventually([&] { return !rt.running(); }));
  std::this_thread::sleep_for(2ms);  // stop() has set the stop flag right after leaving the running phase
  g_spinner_release.store(true);
  stopper.join();
  // BUG (runtime.hpp ExternalCall::run + shard.cpp finish_unstarted_cancelled): the forwarding task
  // (forward_result) is cancelled before it starts, so the promise is never set and `delete this` never runs:
  // the future never becomes ready (f.get() would block forever) and the ExternalCall leaks.
  ASSERT_EQ(f.wait_for(1s), std::future_status::ready)
      << "the future of a submit racing stop() never resolves";
  try {
    EXPECT_EQ(f.get(), 5);
  } catch (const moirai::Error& e) {
    EXPECT_TRUE(e.code() == Errc::stopped || e.code() == Errc::cancelled) << e.what();
  }
}

std::atomic<bool> g_blocker_release{false};
std::atomic<int> g_caller_outcome{0};

TEST(Shutdown, ACrossShardRequestArrivingAsStopBeginsStillGetsAnAnswer) {
  g_blocker_release.store(false);
  g_caller_outcome.store(0);
  moirai::RuntimeOptions o = two_shards(moirai::IdleStrategy::sleep);
  o.shutdown_timeout = 300ms;  // how long a caller left without an answer holds up the end of run()
  Runtime rt(o);
  rt.run([]() -> Task<void> {
    // Shard 1 gets, in one batch, a function that blocks until the stop has begun, then this request.
    co_await moirai::post_to(1, [] {
      while (!g_blocker_release.load()) {
      }
    });
    moirai::spawn_detached([]() -> Task<void> {
      try {
        co_await moirai::submit_to(1, []() -> Task<int> { co_return 1; });
        g_caller_outcome.store(1);
      } catch (const TaskCancelled&) {
        g_caller_outcome.store(2);
      } catch (const moirai::Error&) {
        g_caller_outcome.store(3);
      }
    }());
    // Cancelled once main has ended and the stop has begun: then it releases shard 1.
    moirai::spawn_detached([]() -> Task<void> {
      try {
        co_await moirai::sleep_for(1h);
      } catch (const TaskCancelled&) {
        g_blocker_release.store(true);
        throw;
      }
    }());
    co_await moirai::yield();
  });
  // BUG (submit.hpp SubmitAwaiter::on_target + shard.cpp finish_unstarted_cancelled): shard 1 spawns
  // run_remote for the request, then, in the same lap, sees the stop and cancels it before it starts; it
  // never runs, never replies, and the caller on shard 0 waits until the shutdown timeout destroys it. The
  // same holds for invoke_on_all and map_reduce, whose children are detached tasks too.
  EXPECT_NE(g_caller_outcome.load(), 0) << "the caller never got an answer; it was torn down at the timeout";
}

TEST(Shutdown, StopCalledOnAShardDoesNotHang) {
  // stop() on a shard only requests the shutdown; the owner's stop() joins.
  Runtime rt(two_shards());
  rt.start();
  auto f = rt.submit(1, [&rt] {
    try {
      rt.stop();
      return 0;
    } catch (const moirai::Error&) {
      return 1;
    }
  });
  EXPECT_EQ(f.wait_for(2s), std::future_status::ready);
  rt.stop();
  EXPECT_FALSE(rt.running());
}

TEST(RuntimeLife, DestructorWithoutStart) {
  {
    Runtime rt(two_shards());
    EXPECT_EQ(rt.shard_count(), 2u);
    EXPECT_FALSE(rt.running());
    EXPECT_EQ(rt.stats(1).tasks_spawned, 0u);
  }
  {
    Runtime rt(two_shards());
    rt.stop();  // a stop before start is harmless too
  }
}

TEST(RuntimeLife, StartTwiceThrowsAndTheRuntimeKeepsWorking) {
  Runtime rt(two_shards());
  rt.start();
  EXPECT_TRUE(rt.running());
  try {
    rt.start();
    ADD_FAILURE() << "a second start() did not throw";
  } catch (const moirai::Error& e) {
    EXPECT_TRUE(contains(e.what(), "already running")) << e.what();
  }
  EXPECT_THROW(rt.run([]() -> Task<int> { co_return 1; }), moirai::Error);
  EXPECT_EQ(rt.submit(1, [] { return moirai::this_shard_id(); }).get(), 1u);
  rt.stop();
  const std::string msg = error_message([&] { rt.start(); }, Errc::stopped);
  EXPECT_TRUE(contains(msg, "new Runtime")) << msg;
}

TEST(RuntimeLife, RunTwiceThrows) {
  Runtime rt(two_shards());
  EXPECT_EQ(rt.run([]() -> Task<int> { co_return 1; }), 1);
  error_message([&] { rt.run([]() -> Task<int> { co_return 2; }); }, Errc::stopped);
}

TEST(RuntimeLife, SubmitBeforeStartAfterStopAndToAMissingShard) {
  Runtime rt(two_shards());
  error_message([&] { rt.submit(0, [] { return 1; }); }, Errc::not_running);
  rt.start();
  const std::string msg = error_message([&] { rt.submit(99, [] { return 1; }); }, Errc::no_such_shard);
  EXPECT_TRUE(contains(msg, "99")) << msg;
  rt.stop();
  error_message([&] { rt.submit(0, [] { return 1; }); }, Errc::stopped);
  error_message([&] { rt.submit(1, []() -> Task<int> { co_return 1; }); }, Errc::stopped);
  error_message([&] { (void)rt.stats(2); }, Errc::no_such_shard);
}

TEST(RuntimeCpus, AnEmptyListMeansTheAffinityMask) {
  const std::vector<int> mask = moirai::current_thread_affinity();
  {
    moirai::RuntimeOptions o = two_shards();
    o.cpus = {};
    Runtime rt(o);
    EXPECT_EQ(rt.cpus(), mask);
    EXPECT_EQ(rt.shard_count(), mask.size());
    EXPECT_EQ(rt.options().cpus, mask);
  }
  // Under a narrower mask (as with taskset -c 1), only that CPU.
  moirai::set_current_thread_affinity({1});
  {
    moirai::RuntimeOptions o = two_shards();
    o.cpus = {};
    Runtime rt(o);
    EXPECT_EQ(rt.cpus(), std::vector<int>{1});
    const int cpu = rt.run([]() -> Task<int> { co_return sched_getcpu(); });
    EXPECT_EQ(cpu, 1) << "shard 0 is pinned to the only CPU of the mask";
    EXPECT_EQ(moirai::current_thread_affinity(), std::vector<int>{1}) << "run() restores the caller's mask";
  }
  moirai::set_current_thread_affinity(mask);
}

TEST(RuntimeCpus, ShardsArePinnedToTheirCpus) {
  Runtime rt(two_shards());
  const auto [c0, c1] = rt.run([]() -> Task<std::pair<int, int>> {
    const int here = sched_getcpu();
    const int there = co_await moirai::submit_to(1, [] { return sched_getcpu(); });
    co_return std::pair{here, there};
  });
  EXPECT_EQ(c0, 0);
  EXPECT_EQ(c1, 1);
}

std::string bad_cpus(std::vector<int> cpus) {
  moirai::RuntimeOptions o = two_shards();
  o.cpus = std::move(cpus);
  return error_message([&] { Runtime rt(o); }, Errc::invalid_cpu_set);
}

TEST(RuntimeCpus, BadCpuListsAreRefusedNamingTheCpu) {
  const std::string missing = bad_cpus({7});
  EXPECT_TRUE(contains(missing, "CPU 7")) << missing;
  EXPECT_TRUE(contains(missing, "not exist")) << missing;
  const std::string twice = bad_cpus({0, 0});
  EXPECT_TRUE(contains(twice, "CPU 0")) << twice;
  EXPECT_TRUE(contains(twice, "more than once")) << twice;
  const std::string negative = bad_cpus({-1});
  EXPECT_TRUE(contains(negative, "CPU -1")) << negative;
  const std::string mixed = bad_cpus({1, 9, 0});
  EXPECT_TRUE(contains(mixed, "CPU 9")) << mixed;
}

TEST(RuntimeOffShard, ShardCallsFromOtherThreadsThrowNotOnShard) {
  const std::string msg = error_message([] { (void)moirai::this_shard(); }, Errc::not_on_shard);
  EXPECT_TRUE(contains(msg, "Runtime::submit")) << "the message names the way out: " << msg;
  error_message([] { (void)moirai::this_shard_id(); }, Errc::not_on_shard);
  error_message([] { (void)moirai::shard_count(); }, Errc::not_on_shard);
  EXPECT_EQ(moirai::this_shard_or_null(), nullptr);
  // Also while a runtime runs, from a thread that is not one of its shards.
  Runtime rt(two_shards());
  rt.start();
  std::thread([] { error_message([] { (void)moirai::this_shard(); }, Errc::not_on_shard); }).join();
  error_message([] { (void)moirai::this_shard(); }, Errc::not_on_shard);
  rt.stop();
}

TEST(RuntimeOptionsCheck, RingEntriesAreValidatedInTheConstructor) {
  for (unsigned entries : {0u, 100000u}) {
    moirai::RuntimeOptions o = two_shards();
    o.ring_entries = entries;
    const std::string msg = error_message([&] { Runtime rt(o); }, Errc::invalid_argument);
    EXPECT_TRUE(contains(msg, "ring_entries")) << msg;
    EXPECT_TRUE(contains(msg, std::to_string(entries))) << msg;
    EXPECT_TRUE(contains(msg, "32768")) << "names the allowed range: " << msg;
  }
  moirai::RuntimeOptions q = two_shards();
  q.queue_capacity = 1;
  EXPECT_TRUE(contains(error_message([&] { Runtime rt(q); }, Errc::invalid_argument), "queue_capacity"));
  moirai::RuntimeOptions t = two_shards();
  t.task_quota = 0;
  EXPECT_TRUE(contains(error_message([&] { Runtime rt(t); }, Errc::invalid_argument), "task_quota"));
}

// Makes every new file descriptor fail with EMFILE until destroyed.
class NoMoreFds {
 public:
  NoMoreFds() {
    getrlimit(RLIMIT_NOFILE, &saved_);
    const int lowest_free = dup(0);
    close(lowest_free);
    rlimit lim = saved_;
    lim.rlim_cur = static_cast<rlim_t>(lowest_free);
    setrlimit(RLIMIT_NOFILE, &lim);
  }
  ~NoMoreFds() { setrlimit(RLIMIT_NOFILE, &saved_); }

 private:
  rlimit saved_{};
};

TEST(RuntimeSetup, ARingThatCannotBeCreatedIsAnErrorAtStart) {
#if defined(MOIRAI_SANITIZED)
  // UBSan's vptr check probes memory through a pipe it creates on demand; with no file descriptor left it
  // reports every virtual call as "invalid vptr". The condition this test provokes defeats the tool.
  GTEST_SKIP() << "exhausting file descriptors breaks the sanitizer runtime itself";
#endif
  Runtime rt(two_shards());  // the constructor reads /sys: make it before the fds run out
  std::string msg;
  {
    NoMoreFds no_fds;
    msg = error_message([&] { rt.start(); }, Errc::setup_failed);
  }
  EXPECT_TRUE(contains(msg, "CPU")) << "names where: " << msg;
  EXPECT_TRUE(contains(msg, "EMFILE")) << "names the cause: " << msg;
  EXPECT_TRUE(contains(msg, "ulimit -n")) << "names the remedy: " << msg;
  EXPECT_FALSE(rt.running());
  error_message([&] { rt.start(); }, Errc::stopped);
}

TEST(RuntimeSetup, ARingThatCannotBeCreatedIsAnErrorFromRunAndTheCallersMaskIsRestored) {
#if defined(MOIRAI_SANITIZED)
  // UBSan's vptr check probes memory through a pipe it creates on demand; with no file descriptor left it
  // reports every virtual call as "invalid vptr". The condition this test provokes defeats the tool.
  GTEST_SKIP() << "exhausting file descriptors breaks the sanitizer runtime itself";
#endif
  const std::vector<int> mask = moirai::current_thread_affinity();
  Runtime rt(two_shards());
  bool ran = false;
  std::string msg;
  {
    NoMoreFds no_fds;
    msg = error_message(
        [&] {
          rt.run([&ran]() -> Task<void> {
            ran = true;
            co_return;
          });
        },
        Errc::setup_failed);
  }
  EXPECT_FALSE(ran);
  EXPECT_TRUE(contains(msg, "ulimit -n")) << msg;
  EXPECT_EQ(moirai::current_thread_affinity(), mask);
}

// Where io_uring is refused (a container's seccomp profile; the kernel's io_uring_disabled answers EPERM the
// same way), start() and run() fail with setup_failed naming the shard, the system call and its errno, the
// likely cause and the fix, and nothing runs. In a forked child, which the filter cannot outlive; the child
// reports through its exit status and prints the message for the log.
enum SeccompChild : int {
  kSeccompOk = 0,
  kSeccompNoFilter = 10,
  kSeccompStarted = 11,     // start() succeeded although io_uring_setup is refused
  kSeccompWrongError = 12,  // another exception, or another code than setup_failed
  kSeccompWrongText = 13,   // the message lacks a word it must have
  kSeccompRan = 14,         // run() ran the main task
};

int start_with_io_uring_refused(int err, const char* cause) {
  if (!moirai_test::refuse_io_uring_setup(err)) return kSeccompNoFilter;
  auto explained = [&](const std::string& what) {
    std::fprintf(stderr, "child: %s\n", what.c_str());
    const char* name = strerrorname_np(err);
    return contains(what, "shard ") && contains(what, "io_uring_setup failed with") &&
           contains(what, name != nullptr ? name : "errno") && contains(what, cause) &&
           contains(what, "Fix:");
  };
  try {
    Runtime rt(two_shards());
    rt.start();
    return kSeccompStarted;
  } catch (const moirai::Error& e) {
    if (e.code() != Errc::setup_failed) return kSeccompWrongError;
    if (!explained(e.what())) return kSeccompWrongText;
  } catch (...) {
    return kSeccompWrongError;
  }
  bool ran = false;
  try {
    Runtime rt(two_shards());
    rt.run([&ran]() -> Task<void> {
      ran = true;
      co_return;
    });
    return kSeccompStarted;
  } catch (const moirai::Error& e) {
    if (ran) return kSeccompRan;
    if (e.code() != Errc::setup_failed) return kSeccompWrongError;
    if (!explained(e.what())) return kSeccompWrongText;
  } catch (...) {
    return kSeccompWrongError;
  }
  return kSeccompOk;
}

void expect_start_refused_and_explained(int err, const char* cause) {
  if (!moirai_test::kCanRefuseIoUring)
    GTEST_SKIP() << "the seccomp filter here is written for x86_64 and aarch64";
  const moirai_test::ChildOutcome child =
      moirai_test::run_in_child([&] { return start_with_io_uring_refused(err, cause); });
  ASSERT_TRUE(child.exited) << "a crash instead of an error: " << child.describe();
  EXPECT_EQ(child.status, kSeccompOk) << "see SeccompChild; the child printed the message above";
}

TEST(RuntimeSetup, IoUringRefusedWithEpermIsAnErrorAtStartNamingSeccompAndTheFix) {
  if (moirai::io::HostFacts::current().io_uring_disabled != 0)
    GTEST_SKIP() << "kernel.io_uring_disabled is set here: EPERM is blamed on it instead";
  expect_start_refused_and_explained(EPERM, "seccomp");
}

TEST(RuntimeSetup, IoUringMissingWithEnosysIsAnErrorAtStartNamingTheKernelAndTheFix) {
  expect_start_refused_and_explained(ENOSYS, "CONFIG_IO_URING");
}

}  // namespace
