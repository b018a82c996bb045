// Io awaitables on the shard's ring: pipes written and read, nops, results as values (-errno, never an
// exception), reads that wait for a writer, more requests than the ring holds, more completions at once than
// its CQ holds, and io on every shard.
#include "moirai/core/io.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "core_test_support.hpp"
#include "moirai/core/runtime.hpp"
#include "moirai/core/submit.hpp"
#include "moirai/core/timer.hpp"

namespace {

using moirai::Runtime;
using moirai::Task;
using moirai::TaskHandle;
using moirai_test::one_shard;
using moirai_test::two_shards;
using moirai_test::yield_n;

using moirai_test::Pipe;

TEST(Io, WriteThenReadThroughAPipe) {
  Runtime rt(one_shard());
  const std::string got = rt.run([]() -> Task<std::string> {
    Pipe p;
    const std::string msg = "hello, ring";
    const int wrote = co_await moirai::async_write(p.w, msg.data(), msg.size());
    EXPECT_EQ(wrote, static_cast<int>(msg.size()));
    char buf[64] = {};
    const int read = co_await moirai::async_read(p.r, buf, sizeof buf);
    EXPECT_EQ(read, static_cast<int>(msg.size()));
    co_return std::string(buf, read > 0 ? static_cast<std::size_t>(read) : 0);
  });
  EXPECT_EQ(got, "hello, ring");
}

TEST(Io, AReadWaitsForTheWriterAndEndOfFileReadsZero) {
  Runtime rt(one_shard());
  rt.run([]() -> Task<void> {
    Pipe p;
    char buf[16] = {};
    auto reader = moirai::spawn(
        [](int fd, char* b) -> Task<int> { co_return co_await moirai::async_read(fd, b, 16); }(p.r, buf));
    co_await yield_n(3);
    EXPECT_FALSE(reader.done()) << "nothing to read yet: the request waits in the kernel";
    EXPECT_EQ(co_await moirai::async_write(p.w, "abc", 3), 3);
    EXPECT_EQ(co_await reader.join(), 3);
    EXPECT_EQ(std::string(buf, 3), "abc");
    p.close_write();
    EXPECT_EQ(co_await moirai::async_read(p.r, buf, sizeof buf), 0) << "end of file";
  });
}

TEST(Io, NopCompletesWithZero) {
  Runtime rt(two_shards());
  rt.run([&rt]() -> Task<void> {
    const auto before = rt.stats(0).completions;
    for (int i = 0; i < 10; ++i)
      EXPECT_EQ(co_await moirai::async_nop(), 0);
    EXPECT_GE(rt.stats(0).completions, before + 10);
    EXPECT_EQ(co_await moirai::submit_to(1, []() -> Task<int> { co_return co_await moirai::async_nop(); }),
              0);
  });
}

TEST(Io, ErrorsAreValuesNotExceptions) {
  Runtime rt(one_shard());
  rt.run([]() -> Task<void> {
    char buf[8];
    int r = 0;
    EXPECT_NO_THROW(r = co_await moirai::async_read(-1, buf, sizeof buf));
    EXPECT_EQ(r, -EBADF);
    EXPECT_EQ(co_await moirai::async_write(1'000'000, buf, sizeof buf), -EBADF);
    Pipe p;
    EXPECT_EQ(co_await moirai::async_write(p.r, "x", 1), -EBADF) << "the read end is not writable";
    // A write to a pipe nobody reads: -EPIPE (SIGPIPE ignored so the process survives the kernel's signal).
    std::signal(SIGPIPE, SIG_IGN);
    close(p.r);
    p.r = -1;
    EXPECT_EQ(co_await moirai::async_write(p.w, "x", 1), -EPIPE);
    // A task that got an error goes on normally.
    EXPECT_EQ(co_await moirai::async_nop(), 0);
  });
}

TEST(Io, MoreRequestsThanTheRingHoldsAllComplete) {
  moirai::RuntimeOptions o = one_shard();
  o.ring_entries = 4;  // SQ 4, CQ 16: far fewer than the requests in flight
  Runtime rt(o);
  rt.run([]() -> Task<void> {
    constexpr int kTasks = 1000;
    std::vector<TaskHandle<int>> hs;
    hs.reserve(kTasks);
    for (int i = 0; i < kTasks; ++i) {
      hs.push_back(moirai::spawn([]() -> Task<int> {
        int bad = 0;
        for (int k = 0; k < 5; ++k) {
          if (co_await moirai::async_nop() != 0) ++bad;
        }
        co_return bad;
      }()));
    }
    int bad = 0;
    for (auto& h : hs)
      bad += co_await h.join();
    EXPECT_EQ(bad, 0);
  });
}

TEST(Io, ManyPendingReadsCompleteAsTheirWritesArrive) {
  moirai::RuntimeOptions o = one_shard();
  o.ring_entries = 8;
  Runtime rt(o);
  rt.run([]() -> Task<void> {
    constexpr int kPipes = 40;  // more pending reads than SQ entries, each parked in the kernel
    std::vector<Pipe> pipes(kPipes);
    std::vector<char> bufs(kPipes, 0);
    std::vector<TaskHandle<int>> readers;
    for (int i = 0; i < kPipes; ++i) {
      readers.push_back(moirai::spawn([](int fd, char* b) -> Task<int> {
        co_return co_await moirai::async_read(fd, b, 1);
      }(pipes[i].r, &bufs[i])));
    }
    co_await yield_n(3);
    for (int i = kPipes - 1; i >= 0; --i) {
      const char c = static_cast<char>('A' + i % 26);
      EXPECT_EQ(co_await moirai::async_write(pipes[i].w, &c, 1), 1);
    }
    for (int i = 0; i < kPipes; ++i) {
      EXPECT_EQ(co_await readers[i].join(), 1);
      EXPECT_EQ(bufs[i], static_cast<char>('A' + i % 26));
    }
  });
}

// Completions the kernel posts faster than the shard reaps them, under both idle strategies: an 8-entry ring
// has a 32-entry CQ, and each case makes hundreds of requests complete at once. The kernel keeps what does
// not fit on its overflow list (IORING_FEAT_NODROP) and raises IORING_SQ_CQ_OVERFLOW; the loop must flush it,
// or those tasks never resume. Every request completes with its own result and the kernel dropped none.
class CqOverflow : public ::testing::TestWithParam<moirai::IdleStrategy> {
 protected:
  static moirai::RuntimeOptions options() {
    moirai::RuntimeOptions o = one_shard(GetParam());
    o.ring_entries = 8;
    o.stall_budget = std::chrono::nanoseconds(0);  // spawning hundreds of tasks is not the point here
    return o;
  }
  static unsigned dropped() { return *moirai::this_shard().ring().native()->cq.koverflow; }
};

TEST_P(CqOverflow, HundredsOfKernelTimeoutsExpiringTogetherAllResume) {
  Runtime rt(options());
  rt.run([]() -> Task<void> {
    constexpr int kTasks = 600;
    EXPECT_LT(moirai::this_shard().ring().cq_entries(), static_cast<unsigned>(kTasks));
    std::vector<TaskHandle<int>> hs;
    hs.reserve(kTasks);
    for (int i = 0; i < kTasks; ++i) {
      hs.push_back(moirai::spawn([]() -> Task<int> {
        __kernel_timespec ts{0, 3'000'000};  // all armed within the same few microseconds, all due together
        co_return co_await moirai::io_op(
            [&ts](io_uring_sqe* sqe) noexcept { io_uring_prep_timeout(sqe, &ts, 0, 0); });
      }()));
    }
    int expired = 0;
    for (auto& h : hs)
      expired += (co_await h.join()) == -ETIME ? 1 : 0;
    EXPECT_EQ(expired, kTasks);
    EXPECT_EQ(dropped(), 0u);
  });
}

TEST_P(CqOverflow, HundredsOfReadsMadeReadyByOneBurstOfWritesAllResume) {
  Runtime rt(options());
  rt.run([]() -> Task<void> {
    constexpr int kPipes = 300;
    std::vector<Pipe> pipes(kPipes);
    std::vector<char> bufs(kPipes, 0);
    std::vector<TaskHandle<int>> readers;
    readers.reserve(kPipes);
    for (int i = 0; i < kPipes; ++i) {
      readers.push_back(moirai::spawn([](int fd, char* b) -> Task<int> {
        co_return co_await moirai::async_read(fd, b, 1);
      }(pipes[i].r, &bufs[i])));
    }
    co_await yield_n(3);  // every read is submitted and parked in the kernel
    // Plain writes, not through the ring: the shard does not run between them, so every read becomes ready
    // before it reaps a single completion.
    for (int i = 0; i < kPipes; ++i) {
      const char c = static_cast<char>('a' + i % 26);
      EXPECT_EQ(::write(pipes[i].w, &c, 1), 1);
    }
    int ok = 0;
    for (int i = 0; i < kPipes; ++i) {
      if (co_await readers[i].join() == 1 && bufs[i] == static_cast<char>('a' + i % 26)) ++ok;
    }
    EXPECT_EQ(ok, kPipes);
    EXPECT_EQ(dropped(), 0u);
  });
}

// Reads with a linked timeout take two SQEs each, submitted together; through a 4-entry SQ, hundreds of them
// and the timeouts that fire together all complete.
TEST_P(CqOverflow, HundredsOfReadsWithLinkedTimeoutsThroughAFourEntryRingAllTimeOut) {
  moirai::RuntimeOptions o = options();
  o.ring_entries = 4;
  Runtime rt(o);
  rt.run([]() -> Task<void> {
    constexpr int kTasks = 300;
    Pipe p;  // never written: every read ends by its timeout
    std::vector<TaskHandle<int>> hs;
    hs.reserve(kTasks);
    for (int i = 0; i < kTasks; ++i) {
      hs.push_back(moirai::spawn([](int fd) -> Task<int> {
        char b = 0;
        co_return co_await moirai::io_op(
            [fd, &b](io_uring_sqe* sqe) noexcept { io_uring_prep_read(sqe, fd, &b, 1, 0); },
            std::chrono::milliseconds(3));
      }(p.r)));
    }
    int timed_out = 0;
    for (auto& h : hs)
      timed_out += (co_await h.join()) == -ECANCELED ? 1 : 0;
    EXPECT_EQ(timed_out, kTasks);
    EXPECT_EQ(dropped(), 0u);
  });
}

INSTANTIATE_TEST_SUITE_P(Idle, CqOverflow,
                         ::testing::Values(moirai::IdleStrategy::spin_then_sleep,
                                           moirai::IdleStrategy::sleep),
                         [](const ::testing::TestParamInfo<moirai::IdleStrategy>& p) {
                           return p.param == moirai::IdleStrategy::sleep ? "Sleep" : "SpinThenSleep";
                         });

TEST(Io, ABigTransferThroughAPipeBetweenTwoShards) {
  Runtime rt(two_shards());
  Pipe p;
  constexpr std::size_t kBytes = 1 << 20;  // much more than a pipe buffer: both sides wait on each other
  const bool ok = rt.run([&p]() -> Task<bool> {
    auto writer = moirai::spawn([](int fd) -> Task<bool> {
      std::vector<unsigned char> data(kBytes);
      for (std::size_t i = 0; i < kBytes; ++i)
        data[i] = static_cast<unsigned char>(i * 7 + 3);
      std::size_t off = 0;
      while (off < kBytes) {
        const int n = co_await moirai::async_write(fd, data.data() + off, kBytes - off);
        if (n <= 0) co_return false;
        off += static_cast<std::size_t>(n);
      }
      co_return true;
    }(p.w));
    const bool read_ok = co_await moirai::submit_to(1, [fd = p.r]() -> Task<bool> {
      std::vector<unsigned char> buf(64 * 1024);
      std::size_t total = 0;
      bool same = true;
      while (total < kBytes) {
        const int n = co_await moirai::async_read(fd, buf.data(), buf.size());
        if (n <= 0) co_return false;
        for (int i = 0; i < n; ++i) {
          if (buf[i] != static_cast<unsigned char>((total + i) * 7 + 3)) same = false;
        }
        total += static_cast<std::size_t>(n);
      }
      co_return same&& total == kBytes;
    });
    const bool write_ok = co_await writer.join();
    co_return read_ok&& write_ok;
  });
  EXPECT_TRUE(ok);
}

TEST(Io, IoOnAnyPrepFunctionGivesTheCqeResult) {
  Runtime rt(one_shard());
  rt.run([]() -> Task<void> {
    Pipe p;
    // A poll for readability, through the generic io_op.
    auto poller = moirai::spawn([](int fd) -> Task<int> {
      co_return co_await moirai::io_op(
          [fd](io_uring_sqe* sqe) noexcept { io_uring_prep_poll_add(sqe, fd, POLLIN); });
    }(p.r));
    co_await yield_n(3);
    EXPECT_FALSE(poller.done());
    EXPECT_EQ(::write(p.w, "z", 1), 1);
    const int mask = co_await poller.join();
    EXPECT_TRUE((mask & POLLIN) != 0) << mask;
  });
}

// A write to a pipe that can also be made as a non-blocking syscall (InlineIo), counting which way it went.
struct CountedWrite {
  int fd;
  const char* data;
  std::size_t size;
  int* inline_calls;
  int* ring_requests;
  void operator()(io_uring_sqe* sqe) const noexcept {
    ++*ring_requests;
    io_uring_prep_write(sqe, fd, data, static_cast<unsigned>(size), 0);
  }
  int try_inline() noexcept {
    ++*inline_calls;
    const ssize_t n = ::write(fd, data, size);
    return n >= 0 ? static_cast<int>(n) : -errno;  // -EAGAIN on a full pipe: the ring waits for room
  }
};
static_assert(moirai::InlineIo<CountedWrite>);

TEST(InlineIo, EachResumptionHasItsShareOfSyscallsAndTheNextRequestGoesThroughTheRing) {
  moirai::RuntimeOptions o = one_shard();
  o.inline_io_per_resumption = 4;
  Runtime rt(o);
  rt.run([&rt]() -> Task<void> {
    Pipe p;
    EXPECT_EQ(fcntl(p.w, F_SETFL, O_NONBLOCK), 0);
    int inline_calls = 0, ring_requests = 0;
    const auto before = rt.stats(0).inline_io;
    // Ten writes in what would be one resumption: four as syscalls, the fifth through the ring (the task
    // suspends, and its next resumption has four more), then four more, then the ring again, then one.
    for (int i = 0; i < 10; ++i)
      EXPECT_EQ(co_await moirai::io_op(CountedWrite{p.w, "x", 1, &inline_calls, &ring_requests}), 1);
    EXPECT_EQ(inline_calls, 8);
    EXPECT_EQ(ring_requests, 2);
    EXPECT_EQ(rt.stats(0).inline_io - before, 8u);
    char buf[16] = {};
    EXPECT_EQ(::read(p.r, buf, sizeof buf), 10) << "every write, whichever way it went, wrote its byte";
  });
}

TEST(InlineIo, ASyscallThatFindsNoRoomLeavesTheRequestToTheRingWhichWaitsForRoom) {
  Runtime rt(one_shard());
  rt.run([&rt]() -> Task<void> {
    Pipe p;
    EXPECT_EQ(fcntl(p.w, F_SETFL, O_NONBLOCK), 0);
    std::string fill(static_cast<std::size_t>(fcntl(p.w, F_GETPIPE_SZ)), 'f');
    EXPECT_EQ(::write(p.w, fill.data(), fill.size()), static_cast<ssize_t>(fill.size()));
    int inline_calls = 0, ring_requests = 0;
    const auto before = rt.stats(0).inline_io;
    auto writer = moirai::spawn([](int fd, int* in, int* ring) -> Task<int> {
      co_return co_await moirai::io_op(CountedWrite{fd, "y", 1, in, ring});
    }(p.w, &inline_calls, &ring_requests));
    co_await yield_n(3);
    EXPECT_EQ(inline_calls, 1) << "tried once as a syscall";
    EXPECT_EQ(ring_requests, 1) << "then went to the ring";
    EXPECT_FALSE(writer.done()) << "the pipe is full: the ring's write waits for room";
    EXPECT_EQ(rt.stats(0).inline_io, before) << "only finished syscalls are counted";
    std::string drained(fill.size(), '\0');
    EXPECT_EQ(::read(p.r, drained.data(), drained.size()), static_cast<ssize_t>(drained.size()));
    EXPECT_EQ(co_await writer.join(), 1);
    char c = 0;
    EXPECT_EQ(::read(p.r, &c, 1), 1);
    EXPECT_EQ(c, 'y');
  });
}

TEST(InlineIo, ZeroPerResumptionSendsEverythingThroughTheRing) {
  moirai::RuntimeOptions o = one_shard();
  o.inline_io_per_resumption = 0;
  Runtime rt(o);
  rt.run([&rt]() -> Task<void> {
    Pipe p;
    int inline_calls = 0, ring_requests = 0;
    for (int i = 0; i < 5; ++i)
      EXPECT_EQ(co_await moirai::io_op(CountedWrite{p.w, "z", 1, &inline_calls, &ring_requests}), 1);
    EXPECT_EQ(inline_calls, 0);
    EXPECT_EQ(ring_requests, 5);
    EXPECT_EQ(rt.stats(0).inline_io, 0u);
  });
}

TEST(Io, IoOffAShardThrowsNotOnShard) {
  moirai_test::error_message([] { (void)moirai::async_nop().await_ready(); }, moirai::Errc::not_on_shard);
}

}  // namespace
