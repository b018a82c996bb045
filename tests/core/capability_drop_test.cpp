// RuntimeOptions::drop_capabilities: a runtime started as root ends with every thread of the process holding
// only the kept set (read from /proc/self/task/*/status), off leaves them as they were, a keep list is what
// remains, and an unprivileged start loses nothing and fails nothing. Each case runs in a forked child, since
// dropped capabilities never come back and the test process keeps root for the tests after it.
#include <dirent.h>
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

#include "core_test_support.hpp"
#include "moirai/core/runtime.hpp"
#include "moirai/rt/capability_drop.hpp"

namespace {

using moirai::CapabilityDrop;
using moirai::rt::capability_bit;
using moirai::rt::CapabilityMask;

struct TaskCaps {
  CapabilityMask effective = 0;
  CapabilityMask permitted = 0;
};

// CapEff and CapPrm of every thread of this process.
std::vector<TaskCaps> every_thread() {
  std::vector<TaskCaps> out;
  DIR* dir = opendir("/proc/self/task");
  if (dir == nullptr) return out;
  while (const dirent* e = readdir(dir)) {
    if (e->d_name[0] == '.') continue;
    std::ifstream in(std::string("/proc/self/task/") + e->d_name + "/status");
    TaskCaps t;
    for (std::string line; std::getline(in, line);) {
      if (line.rfind("CapEff:", 0) == 0) t.effective = std::stoull(line.substr(7), nullptr, 16);
      if (line.rfind("CapPrm:", 0) == 0) t.permitted = std::stoull(line.substr(7), nullptr, 16);
    }
    out.push_back(t);
  }
  closedir(dir);
  return out;
}

// Starts a two-shard runtime with `o` in a forked child and checks, while it runs, that every thread (the
// starting one and both shards: three) holds exactly `expected`. Returns the child's verdict: 0 when all
// held, else the number of the failed check.
int threads_hold_after_start(moirai::RuntimeOptions o, CapabilityMask expected, CapabilityMask dropped,
                             bool drop_all_first = false) {
  const pid_t pid = fork();
  if (pid == 0) {
    int rc = 0;
    try {
      if (drop_all_first) moirai::rt::drop_capabilities(0);
      moirai::Runtime rt(std::move(o));
      rt.start();
      const std::vector<TaskCaps> threads = every_thread();
      if (threads.size() != 3) rc = 1;
      for (const TaskCaps& t : threads) {
        if (t.effective != expected || t.permitted != expected) rc = 2;
      }
      if (rc == 0 && rt.dropped_capabilities() != dropped) rc = 3;
      rt.stop();
    } catch (...) {
      rc = 4;
    }
    _exit(rc);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 5;
}

// The test runtime (two shards, sleeping when idle) with the drop at its default.
moirai::RuntimeOptions dropping() {
  moirai::RuntimeOptions o = moirai_test::two_shards();
  o.drop_capabilities = moirai::RuntimeOptions{}.drop_capabilities;
  return o;
}

// ThreadSanitizer's own background thread exists before any runtime and keeps its capabilities, as every
// thread a process made before its runtime started does: the every-thread checks cannot hold under it.
#if defined(__SANITIZE_THREAD__)
constexpr bool kUnderTsan = true;
#else
constexpr bool kUnderTsan = false;
#endif
constexpr const char* kTsanThread =
    "ThreadSanitizer's own thread predates the runtime and keeps its capabilities";

bool is_root() {
  return !kUnderTsan && geteuid() == 0 &&
         (moirai::rt::ThreadCapabilities::current().effective & capability_bit(CAP_SETPCAP)) != 0;
}

TEST(CapabilityDrop, AutomaticLeavesNoThreadACapabilityItDoesNotNeed) {
  if (!is_root()) GTEST_SKIP() << "needs root, not under ThreadSanitizer (its thread keeps its capabilities)";
  const CapabilityMask held = moirai::rt::ThreadCapabilities::current().permitted;
  ASSERT_EQ(moirai::RuntimeOptions{}.drop_capabilities, CapabilityDrop::automatic);  // the default
  EXPECT_EQ(threads_hold_after_start(dropping(), 0, held), 0);
}

TEST(CapabilityDrop, KeepListIsExactlyWhatRemains) {
  if (!is_root()) GTEST_SKIP() << "needs root, not under ThreadSanitizer (its thread keeps its capabilities)";
  moirai::RuntimeOptions o = dropping();
  o.keep_capabilities = {"CAP_NET_BIND_SERVICE", "sys_nice"};
  const CapabilityMask keep = capability_bit(CAP_NET_BIND_SERVICE) | capability_bit(CAP_SYS_NICE);
  const CapabilityMask held = moirai::rt::ThreadCapabilities::current().permitted;
  EXPECT_EQ(threads_hold_after_start(o, keep, held & ~keep), 0);
}

TEST(CapabilityDrop, LockedMemoryKeepsIpcLockForTheChunksThatGrowLater) {
  if (!is_root()) GTEST_SKIP() << "needs root, not under ThreadSanitizer (its thread keeps its capabilities)";
  moirai::RuntimeOptions o = dropping();
  o.lock_memory = true;
  o.memory_per_shard = 256u << 10;
  const CapabilityMask keep = capability_bit(CAP_IPC_LOCK);
  const CapabilityMask held = moirai::rt::ThreadCapabilities::current().permitted;
  EXPECT_EQ(threads_hold_after_start(o, keep, held & ~keep), 0);
}

TEST(CapabilityDrop, OffLeavesEveryThreadAsItWas) {
  if (kUnderTsan) GTEST_SKIP() << kTsanThread;
  moirai::RuntimeOptions o = dropping();
  o.drop_capabilities = CapabilityDrop::off;
  const CapabilityMask held = moirai::rt::ThreadCapabilities::current().permitted;
  EXPECT_EQ(threads_hold_after_start(o, held, 0), 0);
}

TEST(CapabilityDrop, UnprivilegedIsANoOpEvenWhenOn) {
  if (kUnderTsan) GTEST_SKIP() << kTsanThread;
  moirai::RuntimeOptions o = dropping();
  o.drop_capabilities = CapabilityDrop::on;
  o.keep_capabilities = {"CAP_SYS_NICE"};
  EXPECT_EQ(threads_hold_after_start(o, 0, 0, /*drop_all_first=*/true), 0);
}

TEST(CapabilityDrop, RunDropsOnShardZerosThreadToo) {
  if (!is_root()) GTEST_SKIP() << "needs root, not under ThreadSanitizer (its thread keeps its capabilities)";
  const pid_t pid = fork();
  if (pid == 0) {
    int rc = 0;
    try {
      moirai::Runtime rt(dropping());
      rc = rt.run([]() -> moirai::Task<int> {
        int bad = 0;
        for (const TaskCaps& t : every_thread())
          bad += t.effective != 0 || t.permitted != 0;
        co_return bad;
      });
    } catch (...) {
      rc = 100;
    }
    _exit(rc);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "threads still holding capabilities (100: run threw)";
}

TEST(CapabilityDrop, AnUnknownNameToKeepIsRefusedBeforeAnythingStarts) {
  moirai::RuntimeOptions o = dropping();
  o.keep_capabilities = {"CAP_NET_BIND_SERVICE", "CAP_TELEPORT"};
  const std::string what =
      moirai_test::error_message([&] { moirai::Runtime rt(o); }, moirai::Errc::invalid_argument);
  EXPECT_NE(what.find("keep_capabilities"), std::string::npos) << what;
  EXPECT_NE(what.find("CAP_TELEPORT"), std::string::npos) << what;
}

}  // namespace
