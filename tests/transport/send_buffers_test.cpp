// Registered send buffers: messages written into a pool's buffers arrive whole and in order over TCP and
// Unix sockets, zero-copy from the registered memory where the kernel has it and plainly where it does not
// (forced, a second pool on the ring, a Unix socket); every buffer comes back to its pool once the kernel is
// done with it; a sender waits for a buffer when all are out, and a cancelled wait gives nothing away.
#include "moirai/transport/send_buffers.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "../core/core_test_support.hpp"
#include "moirai/core/runtime.hpp"
#include "moirai/core/spawn.hpp"
#include "moirai/core/submit.hpp"
#include "moirai/core/timer.hpp"
#include "moirai/io/ring.hpp"
#include "moirai/transport/datagram_socket.hpp"
#include "moirai/transport/framed_stream.hpp"
#include "moirai/transport/stream_socket.hpp"

namespace {

using moirai::Task;
using moirai_test::two_shards;
using namespace moirai::transport;
using namespace std::chrono_literals;

constexpr std::size_t kMessage = 40'000;  // not a multiple of the page: a buffer's tail stays unsent

// Byte `i` of message `m`.
std::byte pattern(int m, std::size_t i) {
  return static_cast<std::byte>((static_cast<std::size_t>(m) * 131 + i * 7) & 0xff);
}

// Reads `messages` messages of kMessage bytes on shard 1 and counts the bytes that were not the pattern.
Task<std::size_t> drain(StreamListener& listener, int messages) {
  StreamSocket s = co_await listener.accept();
  std::vector<std::byte> buf(65536);
  std::size_t wrong = 0;
  std::size_t at = 0;  // bytes received in all
  const std::size_t total = kMessage * static_cast<std::size_t>(messages);
  while (at < total) {
    const std::size_t n = co_await s.recv_some(buf);
    if (n == 0) break;
    for (std::size_t k = 0; k < n; ++k, ++at)
      if (buf[k] != pattern(static_cast<int>(at / kMessage), at % kMessage)) ++wrong;
  }
  co_await s.close();
  co_return wrong + (total - at);  // a byte missing counts as wrong
}

// Waits for the kernel's last notifications to bring every buffer of `pool` back, so the pool goes at the end
// of its test; a buffer that never came back fails the test (TimedOut) instead of hanging it.
Task<void> all_back(SendBufferPool& pool) {
  co_await moirai::with_timeout(5s, pool.drained());
  EXPECT_EQ(pool.available(), pool.count());
}

struct Sent {
  std::size_t wrong = 0;
  SendBufferStats stats;
  bool registered = false;
  bool zero_copy = false;
  unsigned available_after = 0;
};

// `messages` messages from a pool of `options`, each written into a buffer acquired (waiting when all are
// out) and sent whole, to a drain on shard 1. `second_pool`: another pool is made on the shard first and
// holds the ring's buffer table.
Sent send_through_pool(const SocketAddress& where, SendBufferOptions options, int messages,
                       bool second_pool = false) {
  moirai::Runtime rt(two_shards());
  StreamListener listener = StreamListener::bind(where);
  const SocketAddress at = listener.local_address();
  Sent out;
  rt.run([&]() -> Task<void> {
    auto server = moirai::spawn([&]() -> Task<void> {
      out.wrong = co_await moirai::submit_to(1, [&] { return drain(listener, messages); });
    });
    std::optional<SendBufferPool> first;
    if (second_pool) first.emplace(SendBufferOptions{4096, 1, true});
    SendBufferPool pool(options);
    StreamSocket c = co_await StreamSocket::connect(at);
    for (int m = 0; m < messages; ++m) {
      SendBuffer b = co_await pool.acquire();
      std::span<std::byte> bytes = b.bytes();
      for (std::size_t i = 0; i < kMessage; ++i)
        bytes[i] = pattern(m, i);
      co_await c.send(std::move(b), kMessage);
    }
    co_await server.join();  // the drain read everything: the kernel is done with every buffer
    co_await c.close();
    co_await all_back(pool);
    out.stats = pool.stats();
    out.registered = pool.registered();
    out.zero_copy = pool.zero_copy();
    out.available_after = pool.available();
  });
  return out;
}

TEST(SendBuffers, TcpMessagesFromRegisteredBuffersArriveWholeAndEveryBufferComesBack) {
  const Sent s =
      send_through_pool(SocketAddress::parse("127.0.0.1:0"), SendBufferOptions{kMessage, 4, true}, 200);
  EXPECT_EQ(s.wrong, 0u);
  EXPECT_EQ(s.available_after, 4u);
  if (moirai::io::Ring::supports(moirai::io::Op::send_zc)) {
    EXPECT_TRUE(s.zero_copy);
    EXPECT_TRUE(s.registered) << "root on this kernel may register buffers";
    EXPECT_GE(s.stats.zero_copy_sends, 200u);
    EXPECT_LE(s.stats.copied_sends, s.stats.zero_copy_sends);
    EXPECT_EQ(s.stats.plain_sends, 0u);
  } else {
    EXPECT_GE(s.stats.plain_sends, 200u);
  }
}

TEST(SendBuffers, WithZeroCopyOffTheSameBuffersGoOutAsPlainSends) {
  const Sent s =
      send_through_pool(SocketAddress::parse("127.0.0.1:0"), SendBufferOptions{kMessage, 2, false}, 100);
  EXPECT_EQ(s.wrong, 0u);
  EXPECT_FALSE(s.zero_copy);
  EXPECT_FALSE(s.registered);
  EXPECT_EQ(s.stats.zero_copy_sends, 0u);
  EXPECT_GE(s.stats.plain_sends, 100u);
  EXPECT_EQ(s.available_after, 2u);
}

TEST(SendBuffers, ASecondPoolOnTheRingIsUnregisteredAndStillSends) {
  const Sent s =
      send_through_pool(SocketAddress::parse("127.0.0.1:0"), SendBufferOptions{kMessage, 3, true}, 50,
                        /*second_pool=*/true);
  EXPECT_EQ(s.wrong, 0u);
  EXPECT_FALSE(s.registered) << "the first pool holds the ring's buffer table";
  EXPECT_EQ(s.available_after, 3u);
  if (moirai::io::Ring::supports(moirai::io::Op::send_zc)) {
    EXPECT_GE(s.stats.zero_copy_sends, 50u);
  }
}

TEST(SendBuffers, AUnixSocketRefusesZeroCopyOnceAndIsSentPlainly) {
  const std::string path = "/tmp/moirai-send-buffers-" + std::to_string(::getpid()) + ".sock";
  const Sent s =
      send_through_pool(SocketAddress::parse("unix:" + path), SendBufferOptions{kMessage, 2, true}, 50);
  EXPECT_EQ(s.wrong, 0u);
  EXPECT_GE(s.stats.plain_sends, 50u);
  EXPECT_LE(s.stats.zero_copy_sends, 1u) << "only the first send tries zero copy";
  EXPECT_EQ(s.available_after, 2u);
}

TEST(SendBuffers, AnAcquireWaitsForABufferAndACancelledOneTakesNone) {
  moirai::Runtime rt(two_shards());
  unsigned free_when_full = 99;
  bool second_got = false;
  bool cancelled_threw = false;
  unsigned free_at_end = 0;
  rt.run([&]() -> Task<void> {
    SendBufferPool pool(SendBufferOptions{4096, 2, true});
    std::optional<SendBuffer> a = pool.try_acquire();
    std::optional<SendBuffer> b = pool.try_acquire();
    free_when_full = pool.available();
    EXPECT_FALSE(pool.try_acquire().has_value());
    // A waiter that is cancelled before any buffer comes back.
    auto doomed = moirai::spawn([&]() -> Task<void> {
      SendBuffer never = co_await pool.acquire();
      ADD_FAILURE() << "a cancelled acquire got a buffer";
    });
    // A waiter that gets the first buffer given back.
    auto waiting = moirai::spawn([&]() -> Task<void> {
      SendBuffer got = co_await pool.acquire();
      second_got = got.bytes().size() == 4096;
    });
    co_await moirai::sleep_for(1ms);
    doomed.cancel();
    try {
      co_await doomed.join();
    } catch (const moirai::TaskCancelled&) {
      cancelled_threw = true;
    }
    a.reset();  // to `waiting`, which drops it at its end
    co_await waiting.join();
    b.reset();
    free_at_end = pool.available();
  });
  EXPECT_EQ(free_when_full, 0u);
  EXPECT_TRUE(cancelled_threw);
  EXPECT_TRUE(second_got);
  EXPECT_EQ(free_at_end, 2u);
}

// drained() returns once every buffer is back, and one that is cancelled first gives back what it took.
TEST(SendBuffers, DrainedWaitsForEveryBufferAndACancelledOneKeepsNone) {
  moirai::Runtime rt(two_shards());
  bool timed_out = false;
  unsigned free_after_timeout = 99;
  unsigned free_after_drain = 99;
  rt.run([&]() -> Task<void> {
    SendBufferPool pool(SendBufferOptions{4096, 4, true});
    std::optional<SendBuffer> held = pool.try_acquire();
    try {
      co_await moirai::with_timeout(5ms, pool.drained());
    } catch (const moirai::TimedOut&) {
      timed_out = true;
    }
    free_after_timeout = pool.available();
    // Given back by another task while drained() waits.
    auto releaser = moirai::spawn([&]() -> Task<void> {
      co_await moirai::sleep_for(2ms);
      held.reset();
    });
    co_await pool.drained();
    free_after_drain = pool.available();
    co_await releaser.join();
  });
  EXPECT_TRUE(timed_out);
  EXPECT_EQ(free_after_timeout, 3u) << "the cancelled drain gave back the three it had taken";
  EXPECT_EQ(free_after_drain, 4u);
}

TEST(SendBuffers, BadOptionsAndSendsAreRefusedNamingTheLimit) {
  moirai::Runtime rt(two_shards());
  std::string zero_count, too_many, past_size, empty;
  rt.run([&]() -> Task<void> {
    try {
      SendBufferPool p(SendBufferOptions{4096, 0, true});
    } catch (const moirai::Error& e) {
      EXPECT_EQ(e.code(), std::errc::invalid_argument) << e.what();
      zero_count = e.what();
    }
    try {
      SendBufferPool p(SendBufferOptions{4096, 5000, true});
    } catch (const moirai::Error& e) {
      EXPECT_EQ(e.code(), std::errc::invalid_argument) << e.what();
      too_many = e.what();
    }
    SendBufferPool pool(SendBufferOptions{4096, 1, true});
    StreamSocket none;
    SendBuffer one = std::move(*pool.try_acquire());
    try {
      co_await none.send(std::move(one), 4097);
    } catch (const moirai::Error& e) {
      EXPECT_EQ(e.code(), std::errc::invalid_argument) << e.what();
      past_size = e.what();
    }
    SendBuffer nothing;
    try {
      co_await none.send(std::move(nothing), 1);
    } catch (const moirai::Error& e) {
      EXPECT_EQ(e.code(), std::errc::invalid_argument) << e.what();
      empty = e.what();
    }
    EXPECT_EQ(pool.available(), 1u) << "a refused send gives its buffer back";
  });
  EXPECT_NE(zero_count.find("1 to 1024"), std::string::npos) << zero_count;
  EXPECT_NE(too_many.find("5000"), std::string::npos) << too_many;
  EXPECT_NE(past_size.find("4097 bytes from a buffer of 4096"), std::string::npos) << past_size;
  EXPECT_NE(empty.find("empty"), std::string::npos) << empty;
}

// A frame from a send buffer leaves behind the frames queued before it, with this side's sender id, and one
// that does not fit its buffer is refused with nothing sent.
TEST(SendBuffers, AFramedStreamSendsAFrameFromABufferInOrderWithItsQueue) {
  moirai::Runtime rt(two_shards());
  StreamListener listener = StreamListener::bind(SocketAddress::parse("127.0.0.1:0"));
  const SocketAddress at = listener.local_address();
  std::vector<std::string> got;
  std::string refused;
  rt.run([&]() -> Task<void> {
    auto server = moirai::spawn([&]() -> Task<void> {
      co_await moirai::submit_to(1, [&]() -> Task<void> {
        FramedStream s(co_await listener.accept(), EndpointId{0, 1, 0});
        for (int i = 0; i < 3; ++i) {
          Frame f = co_await s.recv();
          got.push_back(std::to_string(f.header.type) + "/" + std::to_string(f.header.sender.channel) + ":" +
                        std::string(reinterpret_cast<const char*>(f.payload.data()), f.payload.size()));
        }
      });
    });
    SendBufferPool pool(SendBufferOptions{4096, 2, true});
    FramedStream c(co_await StreamSocket::connect(at), EndpointId{0, 0, 7});
    const std::string first = "queued", second = "from a registered buffer", third = "sent after";
    co_await c.queue(1, std::as_bytes(std::span<const char>(first.data(), first.size())));
    SendBuffer b = co_await pool.acquire();
    std::memcpy(b.bytes().data() + kFrameHeaderSize, second.data(), second.size());
    co_await c.send(std::move(b), 2, second.size());
    SendBuffer too_small = co_await pool.acquire();
    try {
      co_await c.send(std::move(too_small), 9, pool.buffer_size());
    } catch (const moirai::Error& e) {
      EXPECT_EQ(e.code(), std::errc::invalid_argument) << e.what();
      refused = e.what();
    }
    co_await c.send(3, std::as_bytes(std::span<const char>(third.data(), third.size())));
    co_await server.join();
    co_await c.close();
    co_await all_back(pool);
    EXPECT_EQ(pool.available(), 2u);
  });
  EXPECT_EQ(got, (std::vector<std::string>{"1/7:queued", "2/7:from a registered buffer", "3/7:sent after"}));
  EXPECT_NE(refused.find("does not fit a send buffer of 4096 bytes"), std::string::npos) << refused;
}

TEST(SendBuffers, DatagramsFromRegisteredBuffersArriveWhole) {
  moirai::Runtime rt(two_shards());
  std::size_t wrong = 0;
  int received = 0;
  SendBufferStats stats;
  rt.run([&]() -> Task<void> {
    DatagramSocket rx = DatagramSocket::bind(SocketAddress::parse("127.0.0.1:0"));
    DatagramSocket tx = DatagramSocket::bind(SocketAddress::parse("127.0.0.1:0"));
    tx.connect(rx.local_address());
    SendBufferPool pool(SendBufferOptions{4096, 2, true});
    constexpr std::size_t kDatagram = 1200;
    for (int m = 0; m < 100; ++m) {
      SendBuffer b = co_await pool.acquire();
      for (std::size_t i = 0; i < kDatagram; ++i)
        b.bytes()[i] = pattern(m, i);
      const std::size_t sent = co_await tx.send(std::move(b), kDatagram);
      Datagram d = co_await rx.recv(5s);
      if (sent != kDatagram || d.payload.size() != kDatagram) ++wrong;
      for (std::size_t i = 0; i < d.payload.size(); ++i)
        if (d.payload[i] != pattern(m, i)) ++wrong;
      ++received;
    }
    co_await all_back(pool);
    EXPECT_EQ(pool.available(), 2u);
    stats = pool.stats();
  });
  EXPECT_EQ(received, 100);
  EXPECT_EQ(wrong, 0u);
  if (moirai::io::Ring::supports(moirai::io::Op::send_zc)) {
    EXPECT_EQ(stats.zero_copy_sends, 100u);
  }
}

}  // namespace
