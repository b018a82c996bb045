// Running without root: a forked child drops to the unprivileged uid 65534 (no capability left) with
// RLIMIT_RTPRIO 0 and a 1 MiB RLIMIT_MEMLOCK, as a plain service account has, and starts a Runtime that asks
// for SCHED_FIFO and locked memory. Both degrade: the shards run under their old policy, unlocked, each said
// once on stderr with its fix; and everything else works: tasks, timers, a cross-core channel, TCP loopback
// echo between the two shards. The child reports through its exit status; the parent reads its stderr.
//
// The kernel charges each shard's ring to RLIMIT_MEMLOCK too when CAP_IPC_LOCK is missing: under a limit too
// small for the rings (a container's 64 KiB default with two 256-entry rings), start fails, naming the limit.
#include <grp.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "../core/core_test_support.hpp"
#include "../support/child_process.hpp"
#include "moirai/core/runtime.hpp"
#include "moirai/core/spawn.hpp"
#include "moirai/core/submit.hpp"
#include "moirai/core/timer.hpp"
#include "moirai/rt/capabilities.hpp"
#include "moirai/transport/channel.hpp"
#include "moirai/transport/stream_socket.hpp"
#include "transport_test_support.hpp"

namespace {

using moirai::Task;
using namespace moirai::transport;
using namespace std::chrono_literals;

enum Unprivileged : int {
  kOk = 0,
  kLimitsRefused = 10,  // setrlimit failed
  kDropRefused = 11,    // setgroups/setgid/setuid failed
  kStillPrivileged = 12,
  kTasksWrong = 13,
  kTimersWrong = 14,
  kChannelWrong = 15,
  kEchoWrong = 16,
  kPolicyApplied = 17,  // SCHED_FIFO was applied although nothing allows it
  kMemoryLocked = 18,   // memory reported locked although the limit forbids it
  kThrew = 19,
};

constexpr uid_t kNobody = 65534;

// Drops to uid 65534 with RLIMIT_RTPRIO 0 and RLIMIT_MEMLOCK `memlock` bytes; kOk or the code of what failed.
int drop_privileges(rlim_t memlock) {
  const rlimit no_rt{0, 0};
  const rlimit small_lock{memlock, memlock};
  if (setrlimit(RLIMIT_RTPRIO, &no_rt) != 0 || setrlimit(RLIMIT_MEMLOCK, &small_lock) != 0)
    return kLimitsRefused;
  if (geteuid() == 0) {
    // Leaving uid 0 for another clears every capability (no PR_SET_KEEPCAPS).
    if (setgroups(0, nullptr) != 0 || setgid(kNobody) != 0 || setuid(kNobody) != 0) return kDropRefused;
  }
  const moirai::rt::Capabilities caps = moirai::rt::Capabilities::current();
  if (geteuid() == 0 || caps.sys_nice || caps.ipc_lock) return kStillPrivileged;
  return kOk;
}

Task<int> echo_once(StreamListener& listener) {
  StreamSocket s = co_await listener.accept();
  std::byte buf[64];
  const std::size_t n = co_await s.recv_some(buf);
  co_await s.send_all(std::span<const std::byte>(buf, n));
  co_await s.close();
  co_return static_cast<int>(n);
}

// Enough for the rings and message slots, far too little for the frame memory that lock_memory asks to lock.
constexpr rlim_t kServiceMemlock = 1 << 20;

int run_unprivileged() {
  if (const int dropped = drop_privileges(kServiceMemlock); dropped != kOk) return dropped;
  try {
    moirai::RuntimeOptions o = moirai_test::two_shards(moirai::IdleStrategy::sleep);
    o.thread_policy = moirai::rt::ThreadPolicy::parse("fifo:10");
    o.lock_memory = true;
    moirai::Runtime rt(o);
    int verdict = kOk;
    auto fail = [&verdict](int code) {
      if (verdict == kOk) verdict = code;
    };
    StreamListener listener = StreamListener::bind(SocketAddress::parse("127.0.0.1:0"));
    const SocketAddress at = listener.local_address();
    rt.run([&]() -> Task<void> {
      if (co_await moirai::spawn([]() -> Task<int> { co_return 3; }()).join() != 3) fail(kTasksWrong);

      // Two timers fire in the order of their deadlines.
      auto sleeper = moirai::spawn([]() -> Task<void> { co_await moirai::sleep_for(2ms); }());
      co_await moirai::sleep_for(1ms);
      if (sleeper.done()) fail(kTimersWrong);
      co_await sleeper.join();

      Channel<int> ch(0, 16);
      auto sender = moirai::spawn([&]() -> Task<void> {
        co_await moirai::submit_to(1, [&]() -> Task<void> {
          for (int i = 0; i < 100; ++i)
            co_await ch.send(i);
        });
      });
      int sum = 0;
      for (int i = 0; i < 100; ++i)
        sum += (co_await ch.recv()).payload;
      co_await sender.join();
      if (sum != 99 * 100 / 2) fail(kChannelWrong);

      auto server = moirai::spawn([&]() -> Task<int> {
        co_return co_await moirai::submit_to(1, [&]() { return echo_once(listener); });
      });
      StreamSocket client = co_await StreamSocket::connect(at);
      co_await client.send_all(moirai_test::bytes_of("unprivileged"));
      std::byte buf[64];
      const std::size_t n = co_await client.recv_some(buf);
      co_await client.close();
      if (co_await server.join() != 12 ||
          moirai_test::text_of(std::span<const std::byte>(buf, n)) != "unprivileged")
        fail(kEchoWrong);
    });
    for (unsigned s = 0; s < rt.shard_count(); ++s) {
      if (rt.thread_policy(s).ok) fail(kPolicyApplied);
      if (rt.memory(s).locked) fail(kMemoryLocked);
    }
    return verdict;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "child: %s\n", e.what());
    return kThrew;
  }
}

// A limit below what two rings need: start() fails with setup_failed naming RLIMIT_MEMLOCK and the fix.
int start_under_a_tiny_memlock_limit() {
  if (const int dropped = drop_privileges(16 << 10); dropped != kOk) return dropped;
  try {
    moirai::Runtime rt(moirai_test::two_shards(moirai::IdleStrategy::sleep));
    rt.start();
    return kTasksWrong;  // started although the kernel cannot have pinned the rings
  } catch (const moirai::Error& e) {
    std::fprintf(stderr, "child: %s\n", e.what());
    const std::string what = e.what();
    if (e.code() != moirai::Errc::setup_failed || what.find("RLIMIT_MEMLOCK") == std::string::npos ||
        what.find("ulimit -l") == std::string::npos)
      return kThrew;
    return kOk;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "child: %s\n", e.what());
    return kThrew;
  }
}

std::size_t count(const std::string& text, const std::string& part) {
  std::size_t n = 0;
  for (std::size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + part.size()))
    ++n;
  return n;
}

// Runs `body` in a child as uid 65534 and expects it to exit kOk; returns what it wrote to stderr.
template <class Body>
std::string expect_unprivileged_child_ok(Body body) {
  const moirai_test::ChildOutcome child = moirai_test::run_in_child(body, true);
  EXPECT_TRUE(child.exited) << child.describe();
  EXPECT_EQ(child.status, kOk) << "see the Unprivileged codes; the child wrote:\n" << child.output;
  return child.output;
}

bool io_uring_allowed_to_everyone() {
  int disabled = 0;
  std::ifstream("/proc/sys/kernel/io_uring_disabled") >> disabled;
  return disabled == 0;
}

TEST(Unprivileged, RtAndMlockDegradeWithOneWarningEachAndEverythingElseWorks) {
  if (!io_uring_allowed_to_everyone())
    GTEST_SKIP() << "kernel.io_uring_disabled is set: no io_uring for uid 65534";
  const std::string output = expect_unprivileged_child_ok(run_unprivileged);
  // One line for the thread policy of both shards, one for the memory of both, each naming what to grant.
  EXPECT_EQ(count(output, "instead of fifo:10"), 1u) << output;
  EXPECT_EQ(count(output, "memory not locked"), 1u) << output;
  EXPECT_NE(output.find("CAP_SYS_NICE"), std::string::npos) << output;
  EXPECT_NE(output.find("RLIMIT_MEMLOCK"), std::string::npos) << output;
}

TEST(Unprivileged, RingsOverRlimitMemlockAreAnErrorAtStartNamingTheLimit) {
  if (!io_uring_allowed_to_everyone())
    GTEST_SKIP() << "kernel.io_uring_disabled is set: no io_uring for uid 65534";
  expect_unprivileged_child_ok(start_under_a_tiny_memlock_limit);
}

}  // namespace
