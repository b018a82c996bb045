// ReadinessLoop: waiters parked on a handle complete once when an event sets their bit; cached readiness
// answers at once; EAGAIN clears it; hangup, cancel and remove; wake() from another thread; timeouts; no heap
// allocation on the hot path; no fd left behind. Every test runs twice: with epoll_pwait2 where the kernel
// has it, and with the timerfd that replaces it before Linux 5.11.
#include "moirai/io/readiness_loop.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>

#include "../support/allocation_hooks.hpp"
#include "../support/completion_recorder.hpp"

namespace {

using moirai::io::Completion;
using moirai::io::ReadinessError;
using moirai::io::ReadinessLoop;
using moirai::io::ReadinessLoopOptions;
using moirai::io::ReadyHandle;
using moirai_test::Recorder;
using std::chrono::nanoseconds;
using ::testing::HasSubstr;
namespace ready = moirai::io::ready;
using namespace std::chrono_literals;

constexpr nanoseconds kForever = nanoseconds::max();

// A connected pair of non-blocking Unix stream sockets whose ends close with the test.
struct SocketPair {
  int a = -1;
  int b = -1;
  SocketPair() {
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) == 0) {
      a = fds[0];
      b = fds[1];
    }
  }
  ~SocketPair() {
    close_a();
    close_b();
  }
  void close_a() { a = a >= 0 ? (close(a), -1) : -1; }
  void close_b() { b = b >= 0 ? (close(b), -1) : -1; }
  SocketPair(const SocketPair&) = delete;
  SocketPair& operator=(const SocketPair&) = delete;
};

// Reads `fd` until EAGAIN; returns the bytes read.
std::size_t drain(int fd) {
  std::array<char, 65536> buf;
  std::size_t total = 0;
  for (;;) {
    const ssize_t n = read(fd, buf.data(), buf.size());
    if (n <= 0) return total;
    total += static_cast<std::size_t>(n);
  }
}

// Writes to `fd` until EAGAIN: its send buffer (and the peer's receive buffer) is full.
void fill(int fd) {
  static const std::array<char, 65536> buf{};
  while (write(fd, buf.data(), buf.size()) > 0) {
  }
  ASSERT_EQ(errno, EAGAIN);
}

// Polls until `done()` holds. The bound only turns a lost completion into a failure instead of a hung test;
// no test depends on how long this takes.
template <typename Done>
bool poll_until(ReadinessLoop& loop, Done done) {
  for (int i = 0; i < 200 && !done(); ++i) {
    loop.poll(50ms);
  }
  return done();
}

int count_open_fds() {
  int count = 0;
  if (DIR* dir = opendir("/proc/self/fd")) {
    while (readdir(dir) != nullptr)
      ++count;
    closedir(dir);
  }
  return count;
}

// The parameter: whether timeouts are forced onto the timerfd.
class ReadinessLoopTest : public ::testing::TestWithParam<bool> {
 protected:
  ReadinessLoopOptions options() const {
    ReadinessLoopOptions o;
    o.force_timerfd = GetParam();
    return o;
  }
  ReadinessLoop loop_{options()};
  SocketPair pair_;
  ReadyHandle handle_;

  void SetUp() override {
    ASSERT_GE(pair_.a, 0);
    loop_.add(pair_.a, handle_);
    // The first poll takes what the kernel reports at registration: writable, not readable.
    loop_.poll(0ns);
  }
  void TearDown() override {
    if (handle_.registered()) loop_.remove(handle_);
  }

  // Parks `rec` as the handle's reader, checks that nothing completes it yet, then writes `text` from the
  // peer and polls until it is completed, once.
  void park_reader_until_the_peer_writes(Recorder& rec, const std::string& text) {
    ASSERT_EQ(loop_.wait_readable(handle_, &rec), 0);
    EXPECT_EQ(loop_.poll(0ns), 0u);
    EXPECT_EQ(rec.calls, 0);
    ASSERT_EQ(write(pair_.b, text.data(), text.size()), static_cast<ssize_t>(text.size()));
    ASSERT_TRUE(poll_until(loop_, [&] { return rec.calls > 0; }));
    EXPECT_EQ(rec.calls, 1);
  }
};

INSTANTIATE_TEST_SUITE_P(Timeouts, ReadinessLoopTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& i) {
                           return std::string(i.param ? "timerfd" : "epoll_pwait2");
                         });

TEST_P(ReadinessLoopTest, TakesTheTimeoutPathItWasGiven) {
  if (GetParam()) {
    EXPECT_FALSE(loop_.uses_epoll_pwait2());
  }
  EXPECT_TRUE(handle_.registered());
  EXPECT_EQ(handle_.fd(), pair_.a);
  EXPECT_TRUE(handle_.writable());
  EXPECT_FALSE(handle_.readable());
}

TEST_P(ReadinessLoopTest, AReaderParksUntilThePeerWritesThenCompletesOnce) {
  Recorder rec;
  park_reader_until_the_peer_writes(rec, "hello");
  EXPECT_NE(rec.res & static_cast<int>(ready::readable), 0);
  EXPECT_TRUE(handle_.readable());

  ASSERT_EQ(write(pair_.b, "again", 5), 5);
  loop_.poll(0ns);
  EXPECT_EQ(rec.calls, 1) << "a waiter is completed once, then no longer parked";
}

TEST_P(ReadinessLoopTest, CachedReadinessAnswersAtOnceWithoutANewEvent) {
  ASSERT_EQ(write(pair_.b, "0123456789", 10), 10);
  Recorder first;
  ASSERT_EQ(loop_.wait_readable(handle_, &first), 0);
  ASSERT_TRUE(poll_until(loop_, [&] { return first.calls > 0; }));

  char buf[4];
  ASSERT_EQ(read(pair_.a, buf, sizeof buf), 4);  // six bytes stay: no EAGAIN, the bit stays
  Recorder second;
  const int now = loop_.wait_readable(handle_, &second);
  EXPECT_GT(now, 0);
  EXPECT_NE(now & static_cast<int>(ready::readable), 0);
  EXPECT_EQ(second.calls, 0) << "not parked: the caller goes on without a callback";
  loop_.poll(0ns);
  EXPECT_EQ(second.calls, 0);
}

TEST_P(ReadinessLoopTest, AReadThatReachesEagainClearsTheBitAndTheNextWaitParks) {
  ASSERT_EQ(write(pair_.b, "data", 4), 4);
  ASSERT_TRUE(poll_until(loop_, [&] { return handle_.readable(); }));
  EXPECT_EQ(drain(pair_.a), 4u);
  ASSERT_EQ(errno, EAGAIN);
  handle_.clear_readable();
  EXPECT_FALSE(handle_.readable());

  Recorder rec;
  park_reader_until_the_peer_writes(rec, "more");
}

TEST_P(ReadinessLoopTest, AWriterParksOnAFullBufferUntilThePeerReads) {
  fill(pair_.a);
  handle_.clear_writable();
  Recorder rec;
  ASSERT_EQ(loop_.wait_writable(handle_, &rec), 0);
  EXPECT_EQ(loop_.poll(0ns), 0u);
  EXPECT_EQ(rec.calls, 0);

  EXPECT_GT(drain(pair_.b), 0u);
  ASSERT_TRUE(poll_until(loop_, [&] { return rec.calls > 0; }));
  EXPECT_EQ(rec.calls, 1);
  EXPECT_NE(rec.res & static_cast<int>(ready::writable), 0);
  EXPECT_TRUE(handle_.writable());
}

TEST_P(ReadinessLoopTest, ThePeersCloseCompletesAParkedReaderWithTheHangupBit) {
  Recorder rec;
  ASSERT_EQ(loop_.wait_readable(handle_, &rec), 0);
  pair_.close_b();
  ASSERT_TRUE(poll_until(loop_, [&] { return rec.calls > 0; }));
  EXPECT_EQ(rec.calls, 1);
  EXPECT_NE(rec.res & static_cast<int>(ready::read_hangup), 0);
  EXPECT_TRUE(handle_.hangup());

  // The hangup never ends: clearing readable leaves the fd readable (a read gives end of file).
  handle_.clear_readable();
  Recorder after;
  EXPECT_GT(loop_.wait_readable(handle_, &after), 0);
  EXPECT_EQ(after.calls, 0);
}

TEST_P(ReadinessLoopTest, RemoveCompletesEveryParkedWaiterWithEcanceled) {
  fill(pair_.a);
  handle_.clear_writable();
  Recorder reader;
  Recorder writer;
  ASSERT_EQ(loop_.wait_readable(handle_, &reader), 0);
  ASSERT_EQ(loop_.wait_writable(handle_, &writer), 0);

  EXPECT_EQ(loop_.remove(handle_), 0);
  EXPECT_EQ(reader.calls, 1);
  EXPECT_EQ(reader.res, -ECANCELED);
  EXPECT_EQ(writer.calls, 1);
  EXPECT_EQ(writer.res, -ECANCELED);
  EXPECT_FALSE(handle_.registered());
  EXPECT_EQ(loop_.wait_readable(handle_, &reader), -EBADF);
  EXPECT_EQ(loop_.remove(handle_), -EBADF);

  // No event reaches the removed handle.
  EXPECT_GT(drain(pair_.b), 0u);
  ASSERT_EQ(write(pair_.b, "x", 1), 1);
  loop_.poll(2ms);
  EXPECT_EQ(reader.calls, 1);
  EXPECT_EQ(writer.calls, 1);
  EXPECT_EQ(handle_.readiness(), 0u);

  // The fd can be added again, through the same handle.
  loop_.add(pair_.a, handle_);
  ASSERT_TRUE(poll_until(loop_, [&] { return handle_.readable(); }));
}

TEST_P(ReadinessLoopTest, CancelCompletesTheParkedWaiterWithEcanceledOnce) {
  Recorder rec;
  ASSERT_EQ(loop_.wait_readable(handle_, &rec), 0);
  Recorder other;
  EXPECT_EQ(loop_.wait_readable(handle_, &other), -EBUSY) << "one reader per handle";
  EXPECT_FALSE(loop_.cancel(handle_, &other));

  EXPECT_TRUE(loop_.cancel(handle_, &rec));
  EXPECT_EQ(rec.calls, 1);
  EXPECT_EQ(rec.res, -ECANCELED);
  EXPECT_FALSE(loop_.cancel(handle_, &rec));

  ASSERT_EQ(write(pair_.b, "x", 1), 1);
  ASSERT_TRUE(poll_until(loop_, [&] { return handle_.readable(); }));
  EXPECT_EQ(rec.calls, 1);
}

// A callback may remove another handle whose event is later in the same batch: that event is dropped.
TEST_P(ReadinessLoopTest, ACallbackMayRemoveAHandleWhoseEventIsStillInTheBatch) {
  SocketPair second;
  ReadyHandle other;
  loop_.add(second.a, other);
  loop_.poll(0ns);
  struct Remover : Recorder {
    ReadinessLoop* loop = nullptr;
    ReadyHandle* victim = nullptr;
  } first;
  first.loop = &loop_;
  first.victim = &other;
  first.on_complete = [](Completion* self, int, std::uint32_t) noexcept {
    auto* me = static_cast<Remover*>(self);
    ++me->calls;
    me->loop->remove(*me->victim);
  };
  Recorder victim_reader;
  ASSERT_EQ(loop_.wait_readable(handle_, &first), 0);
  ASSERT_EQ(loop_.wait_readable(other, &victim_reader), 0);

  ASSERT_EQ(write(pair_.b, "x", 1), 1);
  ASSERT_EQ(write(second.b, "y", 1), 1);
  ASSERT_TRUE(poll_until(loop_, [&] { return first.calls > 0; }));
  EXPECT_EQ(first.calls, 1);
  EXPECT_EQ(victim_reader.calls, 1) << "completed once: ready, or cancelled by the remove";
  EXPECT_FALSE(other.registered());
  EXPECT_EQ(other.readiness(), 0u) << "no event reached the handle after its removal";
}

TEST_P(ReadinessLoopTest, WakeFromAnotherThreadEndsAPollThatWaitsForever) {
  std::thread waker([&] { loop_.wake(); });
  while (loop_.wakes_seen() == 0) {
    EXPECT_EQ(loop_.poll(kForever), 0u);
  }
  waker.join();
  EXPECT_EQ(loop_.wakes_seen(), 1u);

  // Again with a negative timeout, which also means forever.
  std::thread again([&] { loop_.wake(); });
  while (loop_.wakes_seen() == 1) {
    EXPECT_EQ(loop_.poll(-1ns), 0u);
  }
  again.join();
}

TEST_P(ReadinessLoopTest, ATimeoutReturnsWithNothingCompletedWhenNothingIsReady) {
  Recorder rec;
  ASSERT_EQ(loop_.wait_readable(handle_, &rec), 0);
  EXPECT_EQ(loop_.poll(2ms), 0u);
  EXPECT_EQ(loop_.poll(2ms + 300ns), 0u);  // not whole milliseconds: the timerfd's own path
  EXPECT_EQ(loop_.poll(1ns), 0u);
  EXPECT_EQ(rec.calls, 0);

  // A timeout armed by a poll that an event ended first does not end a later wait that is woken.
  ASSERT_EQ(write(pair_.b, "x", 1), 1);
  ASSERT_TRUE(poll_until(loop_, [&] { return rec.calls > 0; }));
  loop_.wake();
  EXPECT_EQ(loop_.poll(10s + 1ns), 0u);
  std::thread waker([&] { loop_.wake(); });
  const std::uint64_t seen = loop_.wakes_seen();
  while (loop_.wakes_seen() == seen)
    loop_.poll(kForever);
  waker.join();
}

TEST_P(ReadinessLoopTest, WaitPollAndWakeAllocateNothing) {
  Recorder rec;
  char byte = 0;
  int completed = 0;
  moirai_test::g_allocations.store(0);
  moirai_test::g_counting.store(true);
  for (int i = 0; i < 1000; ++i) {
    if (loop_.wait_readable(handle_, &rec) != 0) break;
    if (write(pair_.b, "x", 1) != 1) break;
    while (rec.calls == completed)
      loop_.poll(i % 2 == 0 ? 1ms + 1ns : 0ns);
    completed = rec.calls;
    if (read(pair_.a, &byte, 1) != 1 || read(pair_.a, &byte, 1) != -1) break;
    handle_.clear_readable();
    loop_.wake();
    loop_.poll(0ns);
  }
  moirai_test::g_counting.store(false);
  EXPECT_EQ(completed, 1000);
  EXPECT_EQ(moirai_test::g_allocations.load(), 0u);
}

TEST_P(ReadinessLoopTest, ARefusedFdNamesItselfAndTheFix) {
  try {
    loop_.add(pair_.b, handle_);
    FAIL() << "a registered handle was added again";
  } catch (const ReadinessError& e) {
    EXPECT_EQ(e.code(), std::errc::file_exists);
    EXPECT_THAT(e.what(), HasSubstr("fd " + std::to_string(pair_.b)));
    EXPECT_THAT(e.what(), HasSubstr("remove it first"));
  }
  ReadyHandle other;
  try {
    loop_.add(pair_.a, other);
    FAIL() << "an fd in the set was added again";
  } catch (const ReadinessError& e) {
    EXPECT_EQ(e.code(), std::errc::file_exists);
    EXPECT_THAT(e.what(), HasSubstr("in this loop already"));
  }
  const int file = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(file, 0);
  try {
    loop_.add(file, other);
    FAIL() << "a regular file was added";
  } catch (const ReadinessError& e) {
    EXPECT_EQ(e.code(), std::errc::operation_not_permitted);
    EXPECT_THAT(e.what(), HasSubstr("regular file"));
  }
  close(file);
  EXPECT_THROW(loop_.add(-1, other), ReadinessError);
  EXPECT_FALSE(other.registered());
}

TEST_P(ReadinessLoopTest, BusyPollIsTakenOrRefusedWithAReasonNeverIgnored) {
  EXPECT_THROW((void)loop_.enable_busy_poll(0us), ReadinessError);
  EXPECT_THROW((void)loop_.enable_busy_poll(2s), ReadinessError);
  EXPECT_THROW((void)loop_.enable_busy_poll(50us, 0), ReadinessError);
  const std::error_code refused = loop_.enable_busy_poll(50us);
  EXPECT_EQ(loop_.busy_poll_enabled(), !refused);
  if (refused) {
    EXPECT_EQ(refused.category(), moirai::io::io_category());
    EXPECT_TRUE(refused == std::errc::inappropriate_io_control_operation ||
                refused == std::errc::operation_not_supported)
        << refused.message();
    EXPECT_THAT(moirai::io::describe_epoll_busy_poll_error(refused), HasSubstr("busy-poll"));
  }
  // The loop works either way.
  Recorder rec;
  ASSERT_EQ(loop_.wait_readable(handle_, &rec), 0);
  ASSERT_EQ(write(pair_.b, "x", 1), 1);
  ASSERT_TRUE(poll_until(loop_, [&] { return rec.calls > 0; }));
}

TEST(ReadinessLoop, DescribesEachBusyPollRefusal) {
  using moirai::io::describe_epoll_busy_poll_error;
  using moirai::io::io_category;
  EXPECT_THAT(describe_epoll_busy_poll_error({ENOTTY, io_category()}), HasSubstr("Linux 6.9"));
  EXPECT_THAT(describe_epoll_busy_poll_error({EOPNOTSUPP, io_category()}),
              HasSubstr("CONFIG_NET_RX_BUSY_POLL"));
  EXPECT_THAT(describe_epoll_busy_poll_error({EPERM, io_category()}), HasSubstr("CAP_NET_ADMIN"));
  EXPECT_THAT(describe_epoll_busy_poll_error({EINVAL, io_category()}), HasSubstr("budget"));
}

TEST(ReadinessLoop, AThousandFdsAddedAndRemovedLeaveNoFdBehind) {
  constexpr int kPairs = 1000;
  rlimit files{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &files), 0);
  if (files.rlim_cur < 2 * kPairs + 100) GTEST_SKIP() << "RLIMIT_NOFILE " << files.rlim_cur << " is too low";
  const int before = count_open_fds();
  {
    ReadinessLoop loop;
    auto pairs = std::make_unique<SocketPair[]>(kPairs);
    auto handles = std::make_unique<ReadyHandle[]>(2 * kPairs);
    for (int i = 0; i < kPairs; ++i) {
      ASSERT_GE(pairs[i].a, 0) << "pair " << i;
      loop.add(pairs[i].a, handles[2 * i]);
      loop.add(pairs[i].b, handles[2 * i + 1]);
    }
    // Every end reports writable, a kMaxEvents batch at a time.
    for (int i = 0; i < 2 * kPairs / ReadinessLoop::kMaxEvents + 1; ++i)
      loop.poll(0ns);
    for (int i = 0; i < 2 * kPairs; ++i) {
      EXPECT_TRUE(handles[i].writable()) << "end " << i;
      EXPECT_EQ(loop.remove(handles[i]), 0);
    }
  }
  EXPECT_EQ(count_open_fds(), before);
}

}  // namespace
