// Capabilities (libcap + getrlimit), the advice missing_for() gives, and lock_all_memory with and without
// CAP_IPC_LOCK.
#include <gtest/gtest.h>

#include <sys/capability.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "moirai/rt/capabilities.hpp"
#include "moirai/rt/memory_lock.hpp"
#include "moirai/rt/thread_policy.hpp"

namespace moirai::rt {
namespace {

using namespace std::chrono_literals;

bool contains(const std::string& text, const char* part) {
  return text.find(part) != std::string::npos;
}

TEST(Capabilities, CurrentMatchesGetrlimit) {
  const Capabilities c = Capabilities::current();
  rlimit lim{};
  ASSERT_EQ(getrlimit(RLIMIT_RTPRIO, &lim), 0);
  EXPECT_EQ(c.rtprio_limit, lim.rlim_cur == RLIM_INFINITY ? Capabilities::kUnlimited : lim.rlim_cur);
  ASSERT_EQ(getrlimit(RLIMIT_MEMLOCK, &lim), 0);
  EXPECT_EQ(c.memlock_limit, lim.rlim_cur == RLIM_INFINITY ? Capabilities::kUnlimited : lim.rlim_cur);
  if (geteuid() == 0) {
    // Root in the initial namespace carries all three (CI runs these tests as root).
    EXPECT_TRUE(c.sys_nice);
    EXPECT_TRUE(c.ipc_lock);
    EXPECT_TRUE(c.net_admin);
  }
}

TEST(Capabilities, MissingForNamesTheCapabilityAndTheFix) {
  Capabilities none;  // no capability, every limit 0
  const std::string fifo = none.missing_for(ThreadPolicy::fifo(10));
  EXPECT_TRUE(contains(fifo, "CAP_SYS_NICE")) << fifo;
  EXPECT_TRUE(contains(fifo, "RLIMIT_RTPRIO >= 10 (now 0)")) << fifo;
  EXPECT_TRUE(contains(fifo, "setcap cap_sys_nice+ep")) << fifo;
  EXPECT_TRUE(contains(fifo, "ulimit -r 10")) << fifo;
  EXPECT_TRUE(contains(fifo, "limits.conf")) << fifo;
  EXPECT_TRUE(contains(none.missing_for(ThreadPolicy::round_robin(5)), "SCHED_RR"));
  EXPECT_TRUE(contains(none.missing_for(ThreadPolicy::deadline_policy(1ms, 10ms, 10ms)), "CAP_SYS_NICE"));
  EXPECT_TRUE(contains(none.missing_for(ThreadPolicy::other(-5)), "RLIMIT_NICE >= 25"));
  EXPECT_EQ(none.missing_for(ThreadPolicy::other(5)), "");

  Capabilities limited;
  limited.rtprio_limit = 20;
  EXPECT_EQ(limited.missing_for(ThreadPolicy::fifo(20)), "");  // the limit alone is enough for fifo...
  EXPECT_NE(limited.missing_for(ThreadPolicy::fifo(21)), "");
  EXPECT_NE(limited.missing_for(ThreadPolicy::deadline_policy(1ms, 10ms, 10ms)),
            "");  // ...never for deadline

  Capabilities nice;
  nice.sys_nice = true;
  EXPECT_EQ(nice.missing_for(ThreadPolicy::deadline_policy(1ms, 10ms, 10ms)), "");
  EXPECT_EQ(nice.missing_for(ThreadPolicy::fifo(99)), "");
}

TEST(LockAllMemory, LocksAsRoot) {
#if defined(MOIRAI_SANITIZED)
  // The sanitizers map terabytes of shadow memory; MCL_CURRENT would try to fault all of it in.
  GTEST_SKIP() << "mlockall is not tried in sanitizer builds";
#else
  if (!Capabilities::current().ipc_lock) GTEST_SKIP() << "needs CAP_IPC_LOCK (run as root)";
  const MemoryLockResult r = lock_all_memory();
  EXPECT_TRUE(r.ok) << r.warning;
  EXPECT_TRUE(r.warning.empty());
  EXPECT_EQ(munlockall(), 0);
#endif
}

// In a child without CAP_IPC_LOCK and with a small RLIMIT_MEMLOCK: not tried, and the warning says why.
int memory_child() {
  cap_t caps = cap_get_proc();
  if (caps == nullptr) return 10;
  const cap_value_t drop[] = {CAP_IPC_LOCK};
  if (cap_set_flag(caps, CAP_EFFECTIVE, 1, drop, CAP_CLEAR) != 0) return 11;
  if (cap_set_flag(caps, CAP_PERMITTED, 1, drop, CAP_CLEAR) != 0) return 12;
  if (cap_set_proc(caps) != 0) return 13;
  cap_free(caps);
  const rlimit small{65536, 65536};
  if (setrlimit(RLIMIT_MEMLOCK, &small) != 0) return 14;
  const MemoryLockResult r = lock_all_memory();
  if (r.ok) return 20;
  if (!contains(r.warning, "CAP_IPC_LOCK")) return 21;
  if (!contains(r.warning, "65536")) return 22;
  if (!contains(r.warning, "ulimit -l unlimited")) return 23;
  return 0;
}

TEST(LockAllMemory, WithoutCapIpcLockWarnsInsteadOfLocking) {
  if (!Capabilities::current().ipc_lock) GTEST_SKIP() << "needs CAP_IPC_LOCK to start with (run as root)";
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) _exit(memory_child());
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "see memory_child() for what each code means";
}

}  // namespace
}  // namespace moirai::rt
