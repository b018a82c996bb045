#include "moirai/io/ring.hpp"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ostream>
#include <string>
#include <thread>

#include "../support/child_process.hpp"
#include "../support/completion_recorder.hpp"
#include "../support/seccomp_refusal.hpp"

namespace moirai::io {
// Names the mode in test output instead of gtest's byte dump; found by argument-dependent lookup.
void PrintTo(SetupMode mode, std::ostream* out) {
  *out << to_string(mode);
}
}  // namespace moirai::io

namespace {

using moirai::io::HostFacts;
using moirai::io::Ring;
using moirai::io::RingOptions;
using moirai::io::SetupMode;
using moirai_test::Recorder;
using ::testing::HasSubstr;
using ::testing::Not;

// A pipe whose ends close with the test. An empty pipe is a read that stays pending until someone writes,
// which is what most tests here need.
struct Pipe {
  int read_fd = -1;
  int write_fd = -1;
  Pipe() {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) == 0) {
      read_fd = fds[0];
      write_fd = fds[1];
    }
  }
  ~Pipe() {
    if (read_fd >= 0) close(read_fd);
    if (write_fd >= 0) close(write_fd);
  }
  Pipe(const Pipe&) = delete;
  Pipe& operator=(const Pipe&) = delete;
};

// Waits on `ring` until `done()` holds. The bound only turns a lost completion into a failure instead of a
// hung test; no test depends on how long this takes.
template <typename Done>
bool wait_until(Ring& ring, Done done) {
  for (int i = 0; i < 100 && !done(); ++i) {
    ring.wait(50'000'000);  // 50 ms
  }
  return done();
}

// Queues a read of `pipe` into `buf` that completes into `rec`, and submits it.
void submit_read(Ring& ring, const Pipe& pipe, char* buf, unsigned len, Recorder& rec) {
  io_uring_sqe* sqe = ring.get_sqe();
  ASSERT_NE(sqe, nullptr);
  io_uring_prep_read(sqe, pipe.read_fd, buf, len, 0);
  Ring::set_completion(sqe, &rec);
  // The pipe is empty: the read is armed, and nothing completes yet.
  EXPECT_EQ(ring.poll(), 0u);
  EXPECT_EQ(rec.calls, 0);
}

void write_from_another_thread(const Pipe& pipe, const char* text) {
  std::thread writer([&] {
    EXPECT_EQ(write(pipe.write_fd, text, std::strlen(text)), static_cast<ssize_t>(std::strlen(text)));
  });
  writer.join();
}

TEST(Ring, NopCompletesIntoItsWaiter) {
  moirai::io::Ring ring;
  Recorder rec;
  io_uring_sqe* sqe = ring.get_sqe();
  ASSERT_NE(sqe, nullptr);
  io_uring_prep_nop(sqe);
  moirai::io::Ring::set_completion(sqe, &rec);
  unsigned seen = 0;
  while (seen == 0)
    seen = ring.wait(-1);
  EXPECT_EQ(rec.calls, 1);
  EXPECT_EQ(rec.res, 0);
}

TEST(Ring, SupportsNop) {
  EXPECT_TRUE(Ring::probe_available());
  EXPECT_TRUE(Ring::supports(IORING_OP_NOP));
  EXPECT_FALSE(Ring::supports(-1));
  EXPECT_FALSE(Ring::supports(256));
}

TEST(Ring, NamesEachOperationMoiraiSubmitsOnceInTheKernelsOrder) {
  EXPECT_TRUE(Ring::supports(moirai::io::Op::nop));
  int previous = -1;
  for (moirai::io::Op op : moirai::io::kAllOps) {
    EXPECT_LT(previous, static_cast<int>(op)) << to_string(op);
    previous = static_cast<int>(op);
    EXPECT_THAT(to_string(op), ::testing::StartsWith("IORING_OP_"));
  }
  EXPECT_STREQ(to_string(moirai::io::Op::futex_wait), "IORING_OP_FUTEX_WAIT");
  EXPECT_STREQ(to_string(moirai::io::Op::recv), "IORING_OP_RECV");
}

// prep_futex_wait: the wait completes at once with -EAGAIN when the word no longer holds the expected value,
// and with 0 when a FUTEX_WAKE on the word wakes it.
TEST(Ring, FutexWaitCompletesWhenWokenOrAtOnceForAChangedWord) {
  if (!Ring::supports(moirai::io::Op::futex_wait)) GTEST_SKIP() << "no IORING_OP_FUTEX_WAIT (Linux 6.7)";
  Ring ring;
  std::atomic<std::uint32_t> word{1};
  Recorder stale;
  io_uring_sqe* sqe = ring.get_sqe();
  ASSERT_NE(sqe, nullptr);
  moirai::io::prep_futex_wait(sqe, word, 0, moirai::io::FutexScope::process_private);
  Ring::set_completion(sqe, &stale);
  ASSERT_TRUE(wait_until(ring, [&] { return stale.calls == 1; }));
  EXPECT_EQ(stale.res, -EAGAIN);

  Recorder woken;
  sqe = ring.get_sqe();
  ASSERT_NE(sqe, nullptr);
  moirai::io::prep_futex_wait(sqe, word, 1, moirai::io::FutexScope::shared);
  Ring::set_completion(sqe, &woken);
  ring.poll();
  EXPECT_EQ(woken.calls, 0);  // the word still holds 1: the wait stays armed
  // Woken as an IPC writer wakes its reader (a plain FUTEX_WAKE); repeated in case a wake-up came before the
  // kernel queued the wait.
  for (int i = 0; i < 1000 && woken.calls == 0; ++i) {
    syscall(SYS_futex, &word, FUTEX_WAKE, 1, nullptr, nullptr, 0);
    ring.wait(1'000'000);
  }
  EXPECT_EQ(woken.calls, 1);
  EXPECT_EQ(woken.res, 0);
}

// The heart of the shard loop's reaping rule: with DEFER_TASKRUN a completion made by another thread (here, a
// pipe write waking our read) is only task work queued for the ring's thread. The kernel raises the TASKRUN
// flag, which needs_enter() reads without a syscall, and the CQE appears only when this thread enters.
TEST(Ring, DeferTaskrunDeliversOnlyWhenEntered) {
  Ring ring;
  ASSERT_EQ(ring.mode(), SetupMode::kDeferTaskrun)
      << "this kernel should accept " << to_string(SetupMode::kDeferTaskrun);
  EXPECT_TRUE(ring.ring_fd_registered());
  Pipe pipe;
  ASSERT_GE(pipe.read_fd, 0);
  char buf[64] = {};
  Recorder rec;
  submit_read(ring, pipe, buf, sizeof(buf), rec);
  EXPECT_FALSE(ring.needs_enter());

  write_from_another_thread(pipe, "hello");

  // The writer queued the completion as task work before its write() returned, so the flag is already up;
  // but nothing is in the CQ and nothing has been dispatched.
  EXPECT_TRUE(ring.needs_enter());
  EXPECT_EQ(io_uring_cq_ready(ring.native()), 0u);
  EXPECT_EQ(rec.calls, 0);

  EXPECT_EQ(ring.poll(), 1u);
  EXPECT_EQ(rec.calls, 1);
  EXPECT_EQ(rec.res, 5);
  EXPECT_EQ(std::string(buf, 5), "hello");
  EXPECT_FALSE(ring.needs_enter());
  EXPECT_EQ(ring.poll(), 0u);
  EXPECT_EQ(rec.calls, 1);
}

class RingForcedMode : public ::testing::TestWithParam<SetupMode> {};

TEST_P(RingForcedMode, GetsThatModeAndCompletesReads) {
  RingOptions options;
  options.best_mode = GetParam();
  Ring ring(options);
  EXPECT_EQ(ring.mode(), GetParam());
  Pipe pipe;
  ASSERT_GE(pipe.read_fd, 0);
  char buf[64] = {};
  Recorder rec;
  submit_read(ring, pipe, buf, sizeof(buf), rec);

  write_from_another_thread(pipe, "fallback");

  ASSERT_TRUE(wait_until(ring, [&] { return rec.calls != 0; }));
  EXPECT_EQ(rec.calls, 1);
  EXPECT_EQ(rec.res, 8);
  EXPECT_EQ(std::string(buf, 8), "fallback");

  // A ring forced low says nothing about the kernel: the next default ring still gets the best mode.
  Ring best;
  EXPECT_EQ(best.mode(), SetupMode::kDeferTaskrun);
}

INSTANTIATE_TEST_SUITE_P(Fallbacks, RingForcedMode,
                         ::testing::Values(SetupMode::kCoopTaskrun, SetupMode::kPlain),
                         [](const ::testing::TestParamInfo<SetupMode>& param_info) {
                           return param_info.param == SetupMode::kCoopTaskrun ? "CoopTaskrun" : "Plain";
                         });

// Queues `count` NOPs, each completing into its own Recorder, on a ring too small to hold them all at once.
template <std::size_t kCount>
void expect_each_nop_completes_once(Ring& ring, std::array<Recorder, kCount>& recs) {
  for (Recorder& rec : recs) {
    io_uring_sqe* sqe = ring.get_sqe();
    ASSERT_NE(sqe, nullptr);
    io_uring_prep_nop(sqe);
    Ring::set_completion(sqe, &rec);
  }
  // Each poll() submits what is left and reaps what is there; the bound only stops a lost CQE from hanging.
  unsigned dispatched = 0;
  for (int i = 0; i < 1000 && dispatched < kCount; ++i) {
    dispatched += ring.poll();
  }
  EXPECT_EQ(dispatched, kCount);
  for (std::size_t i = 0; i < kCount; ++i) {
    EXPECT_EQ(recs[i].calls, 1) << "NOP " << i;
    EXPECT_EQ(recs[i].res, 0) << "NOP " << i;
  }
  EXPECT_EQ(ring.poll(), 0u);
}

TEST(Ring, MoreSqesThanTheSqHoldsAllCompleteOnce) {
  RingOptions options;
  options.sq_entries = 8;
  Ring ring(options);
  ASSERT_EQ(ring.sq_entries(), 8u);
  // get_sqe() submits the full SQ to make room, twice over.
  std::array<Recorder, 24> recs;
  expect_each_nop_completes_once(ring, recs);
}

TEST(Ring, MoreCompletionsThanTheCqHoldsAllCompleteOnce) {
  RingOptions options;
  options.sq_entries = 8;
  options.cq_entries = 8;
  Ring ring(options);
  ASSERT_EQ(ring.cq_entries(), 8u);
  // The CQ fills after the first batch; the kernel keeps the rest on its overflow list and says so with the
  // CQ_OVERFLOW flag, and reaping must bring every one of them back.
  std::array<Recorder, 40> recs;
  expect_each_nop_completes_once(ring, recs);
}

TEST(Ring, CancelCompletesAPendingReadOnceWithEcanceled) {
  Ring ring;
  Pipe pipe;
  ASSERT_GE(pipe.read_fd, 0);
  char buf[16] = {};
  Recorder rec;
  submit_read(ring, pipe, buf, sizeof(buf), rec);

  ring.cancel(&rec);
  ASSERT_TRUE(wait_until(ring, [&] { return rec.calls != 0; }));
  EXPECT_EQ(rec.calls, 1);
  EXPECT_EQ(rec.res, -ECANCELED);

  // The read is gone: data written now stays in the pipe and completes nothing.
  ASSERT_EQ(write(pipe.write_fd, "x", 1), 1);
  EXPECT_EQ(ring.wait(1'000'000), 0u);
  EXPECT_EQ(rec.calls, 1);
  EXPECT_EQ(read(pipe.read_fd, buf, sizeof(buf)), 1);
}

TEST(Ring, WaitWithNothingPendingReturnsZeroAfterTheTimeout) {
  Ring ring;
  constexpr auto kTimeout = std::chrono::milliseconds(20);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(ring.wait(std::chrono::nanoseconds(kTimeout).count()), 0u);
  // Not a measurement: a lower bound says that wait() slept rather than returned at once. The kernel's timer
  // and steady_clock are both CLOCK_MONOTONIC, and a timer never fires early.
  EXPECT_GE(std::chrono::steady_clock::now() - start, kTimeout);
}

TEST(Ring, MsgRingPostsACompletionIntoAnotherRing) {
  ASSERT_TRUE(Ring::supports(moirai::io::Op::msg_ring));
  Ring sender;
  Ring target;
  Recorder rec;
  ASSERT_TRUE(sender.prep_msg_ring(target.fd(), &rec));
  // On success the sender gets no CQE of its own.
  EXPECT_EQ(sender.poll(), 0u);
  ASSERT_TRUE(wait_until(target, [&] { return rec.calls != 0; }));
  EXPECT_EQ(rec.calls, 1);
  EXPECT_EQ(rec.res, 0);
  EXPECT_EQ(sender.poll(), 0u);
  EXPECT_EQ(target.poll(), 0u);
}

// Busy polling: the kernel (Linux 6.13, CONFIG_NET_RX_BUSY_POLL) takes it, or the ring gives the errno it
// refused with, which describe_busy_poll_error() puts in words, and works on unchanged.
TEST(Ring, BusyPollIsTakenOrRefusedWithAReason) {
  Ring ring;
  const std::error_code refused = ring.enable_busy_poll(std::chrono::microseconds(500));
  if (refused) {
    EXPECT_FALSE(ring.busy_poll_enabled());
    EXPECT_EQ(&refused.category(), &moirai::io::io_category());
    const std::string why = moirai::io::describe_busy_poll_error(refused);
    EXPECT_THAT(why, HasSubstr("busy"));
    GTEST_SKIP() << "this kernel does not busy-poll: " << why;
  }
  EXPECT_TRUE(ring.busy_poll_enabled());
  EXPECT_FALSE(ring.enable_busy_poll(std::chrono::microseconds(500))) << "a second call changes nothing";
  // A wait with nothing to complete still ends at its timeout.
  EXPECT_EQ(ring.wait(2'000'000), 0u);
  // A completion that becomes ready while the kernel spins is returned by the same wait: a pipe written from
  // another thread.
  Pipe pipe;
  Recorder rec;
  char buf[8];
  io_uring_sqe* sqe = ring.get_sqe();
  ASSERT_NE(sqe, nullptr);
  io_uring_prep_read(sqe, pipe.read_fd, buf, sizeof buf, 0);
  Ring::set_completion(sqe, &rec);
  ring.submit();
  std::thread writer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    EXPECT_EQ(write(pipe.write_fd, "ab", 2), 2);
  });
  unsigned got = 0;
  for (int i = 0; i < 1000 && got == 0; ++i)  // each wait spins at most its 500 us, then sleeps until 1 s
    got = ring.wait(1'000'000'000);
  writer.join();
  EXPECT_EQ(got, 1u);
  EXPECT_EQ(rec.calls, 1);
  EXPECT_EQ(rec.res, 2);
}

TEST(Ring, BusyPollWindowOutOfRangeIsRefusedWithTheRange) {
  Ring ring;
  for (const std::chrono::microseconds window :
       {std::chrono::microseconds(0), std::chrono::microseconds(2'000'000)}) {
    try {
      (void)ring.enable_busy_poll(window);
      ADD_FAILURE() << "a window of " << window.count() << " us was taken";
    } catch (const moirai::io::RingError& e) {
      EXPECT_EQ(e.code(), std::errc::invalid_argument);
      EXPECT_THAT(e.what(), HasSubstr("1 us to 1 s"));
    }
  }
  EXPECT_FALSE(ring.busy_poll_enabled());
  Recorder rec;
  io_uring_sqe* sqe = ring.get_sqe();
  ASSERT_NE(sqe, nullptr);
  io_uring_prep_nop(sqe);
  Ring::set_completion(sqe, &rec);
  EXPECT_EQ(ring.wait(1'000'000'000), 1u) << "the ring works on";
  EXPECT_EQ(rec.calls, 1);
}

// The shard wake-up path: another thread, with its own ring (a single-issuer ring belongs to the thread that
// created it), posts into a ring whose owner is parked in wait().
TEST(Ring, MsgRingFromAnotherThreadWakesAWaitingRing) {
  Ring target;
  Recorder rec;
  const int target_fd = target.fd();
  bool queued = false;
  std::thread sender_thread([&] {
    Ring sender;
    queued = sender.prep_msg_ring(target_fd, &rec);
    sender.poll();
  });
  // `rec` is only touched here, on the target's thread, when the target dispatches its CQE.
  const bool delivered = wait_until(target, [&] { return rec.calls != 0; });
  sender_thread.join();
  ASSERT_TRUE(queued);
  ASSERT_TRUE(delivered);
  EXPECT_EQ(rec.calls, 1);
  EXPECT_EQ(rec.res, 0);
}

TEST(RingSetupError, EnosysNamesTheKernelAndInAContainerSeccomp) {
  HostFacts facts;
  const std::string bare = moirai::io::describe_setup_error(ENOSYS, facts);
  EXPECT_THAT(bare, HasSubstr("ENOSYS"));
  EXPECT_THAT(bare, HasSubstr("CONFIG_IO_URING"));
  EXPECT_THAT(bare, HasSubstr("Fix:"));
  facts.in_container = true;
  const std::string contained = moirai::io::describe_setup_error(ENOSYS, facts);
  EXPECT_THAT(contained, HasSubstr("seccomp"));
  EXPECT_THAT(contained, HasSubstr("io_uring_setup"));
}

TEST(RingSetupError, EpermNamesTheSysctlOrTheSecurityPolicy) {
  HostFacts facts;
  facts.io_uring_disabled = 0;
  const std::string policy = moirai::io::describe_setup_error(EPERM, facts);
  EXPECT_THAT(policy, HasSubstr("EPERM"));
  EXPECT_THAT(policy, HasSubstr("seccomp"));
  EXPECT_THAT(policy, HasSubstr("Fix: allow io_uring_setup"));

  facts.io_uring_disabled = 1;
  const std::string group_only = moirai::io::describe_setup_error(EPERM, facts);
  EXPECT_THAT(group_only, HasSubstr("kernel.io_uring_disabled is 1"));
  EXPECT_THAT(group_only, HasSubstr("kernel.io_uring_group"));
  EXPECT_THAT(group_only, HasSubstr("sysctl -w kernel.io_uring_disabled=0"));

  facts.io_uring_disabled = 2;
  const std::string disabled = moirai::io::describe_setup_error(EPERM, facts);
  EXPECT_THAT(disabled, HasSubstr("kernel.io_uring_disabled is 2"));
  EXPECT_THAT(disabled, HasSubstr("Fix: sysctl -w kernel.io_uring_disabled=0"));
  EXPECT_THAT(disabled, Not(HasSubstr("seccomp")));
}

TEST(RingSetupError, EnomemNamesTheMemlockLimit) {
  HostFacts facts;
  facts.memlock_kib = 8192;
  const std::string limited = moirai::io::describe_setup_error(ENOMEM, facts);
  EXPECT_THAT(limited, HasSubstr("RLIMIT_MEMLOCK"));
  EXPECT_THAT(limited, HasSubstr("8192 KiB"));
  EXPECT_THAT(limited, HasSubstr("ulimit -l"));
  EXPECT_THAT(limited, HasSubstr("LimitMEMLOCK"));

  facts.memlock_kib = ~0ull;
  const std::string unlimited = moirai::io::describe_setup_error(ENOMEM, facts);
  EXPECT_THAT(unlimited, HasSubstr("unlimited"));
  EXPECT_THAT(unlimited, Not(HasSubstr("ulimit -l")));
}

TEST(RingSetupError, EinvalNamesTheKernelVersion) {
  const std::string message = moirai::io::describe_setup_error(EINVAL, HostFacts{});
  EXPECT_THAT(message, HasSubstr("EINVAL"));
  EXPECT_THAT(message, HasSubstr("Fix: run on Linux 6.1 or newer"));
}

// What the forked child reports through its exit status.
enum ChildResult : int {
  kChildOk = 0,
  kChildNoFilter = 10,    // the seccomp filter could not be installed
  kChildNoThrow = 11,     // Ring was constructed although io_uring_setup is refused
  kChildWrongErrno = 12,  // RingError carried another error code
  kChildWrongText = 13,   // what() lacks the expected words
  kChildOtherError = 14,  // something other than RingError was thrown
};

// Runs in the forked child: no gtest assertions here, only an exit status for the parent.
ChildResult construct_ring_under_seccomp(int err, const char* expected_text) {
  if (!moirai_test::refuse_io_uring_setup(err)) return kChildNoFilter;
  try {
    Ring ring;
    return kChildNoThrow;
  } catch (const moirai::io::RingError& e) {
    std::fprintf(stderr, "child: RingError: %s\n", e.what());
    if (e.code().value() != err) return kChildWrongErrno;
    if (std::strstr(e.what(), expected_text) == nullptr) return kChildWrongText;
    return kChildOk;
  } catch (...) {
    return kChildOtherError;
  }
}

void expect_refusal_explained(int err, const char* expected_text) {
  if (!moirai_test::kCanRefuseIoUring)
    GTEST_SKIP() << "the seccomp filter here is written for x86_64 and aarch64";
  const moirai_test::ChildOutcome child =
      moirai_test::run_in_child([&] { return construct_ring_under_seccomp(err, expected_text); });
  ASSERT_TRUE(child.exited) << child.describe();
  EXPECT_EQ(child.status, kChildOk) << "see the ChildResult codes; the child printed what() above";
}

TEST(RingSetupRefused, SeccompEpermIsExplained) {
  // Unless kernel.io_uring_disabled forbids io_uring on this host anyway, EPERM is blamed on seccomp.
  if (HostFacts::current().io_uring_disabled != 0) GTEST_SKIP() << "kernel.io_uring_disabled is set here";
  expect_refusal_explained(EPERM, "seccomp");
}

TEST(RingSetupRefused, SeccompEnosysIsExplained) {
  // describe_setup_error() names seccomp for ENOSYS only when HostFacts says this is a container; elsewhere
  // the message must still name the error and the kernel configuration.
  expect_refusal_explained(ENOSYS, HostFacts::current().in_container ? "seccomp" : "CONFIG_IO_URING");
}

}  // namespace
