// Receives polled by a spinning shard itself (RecvOptions::poll_when_idle): bytes and datagrams arrive
// whole and in order whichever way each came (the shard's own recv or the ring's completion), an end or a
// reset is told once and reads as the ring's would, a buffer the application holds keeps the socket on the
// ring until it comes back, and a shard that sleeps never polls. The peers are plain threads with blocking
// sockets, so that data arrives while the shard is idle.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "../core/core_test_support.hpp"
#include "moirai/core/runtime.hpp"
#include "moirai/core/shard.hpp"
#include "moirai/transport/datagram_socket.hpp"
#include "moirai/transport/stream_receiver.hpp"
#include "moirai/transport/stream_socket.hpp"
#include "transport_test_support.hpp"

namespace {

using moirai::Task;
using moirai_test::one_shard;
using namespace moirai::transport;
using namespace std::chrono_literals;

RecvOptions polled(bool on = true) {
  RecvOptions r;
  r.poll_when_idle = on;
  return r;
}

// A thread started from the shard's thread inherits its CPU: move it off CPU 0 (the shard's), so that it runs
// beside the spinning shard rather than only when the shard is preempted.
void off_the_shards_cpu() {
  cpu_set_t set;
  CPU_ZERO(&set);
  const long n = ::sysconf(_SC_NPROCESSORS_ONLN);
  for (long c = 1; c < n; ++c)
    CPU_SET(static_cast<int>(c), &set);
  if (n > 1) ::sched_setaffinity(0, sizeof set, &set);
}

// A plain blocking TCP connection to `at` (127.0.0.1), from a thread off the shard's CPU.
int connect_plain(const SocketAddress& at) {
  off_the_shards_cpu();
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0 || ::connect(fd, at.data(), at.size()) != 0)
    ADD_FAILURE() << "connect: " << std::strerror(errno);
  return fd;
}

bool write_all(int fd, const std::byte* p, std::size_t n) {
  while (n != 0) {
    const ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w <= 0) return false;
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

// A peer thread that connects to `at`, then sends one byte each time it reads one back, `rounds` times.
std::thread byte_ping_peer(const SocketAddress& at, int rounds) {
  return std::thread([at, rounds] {
    const int fd = connect_plain(at);
    std::byte b{1};
    for (int i = 0; i < rounds; ++i) {
      if (!write_all(fd, &b, 1)) break;
      if (::recv(fd, &b, 1, 0) != 1) break;
    }
    ::close(fd);
  });
}

std::byte pattern(std::size_t i) {
  return static_cast<std::byte>(i % 251);
}

// A peer thread writes 2 MiB of a known pattern in pieces of 1 to 3000 bytes; each piece is taken by the
// shard's own recv or by the ring, in whichever order they race. Every 64 pieces the peer waits until the
// shard has read everything sent so far, then pauses a millisecond: the shard spins idle with the socket
// polled when the next piece comes, so it reads some pieces itself however fast or slow the build is (a
// sanitizer's shard may never drain a peer that only pauses now and then).
TEST(IdlePolling, AStreamArrivesWholeAndInOrderWhicheverWayEachPieceCame) {
  moirai::Runtime rt(one_shard(moirai::IdleStrategy::spin));
  StreamListener l = StreamListener::bind(SocketAddress::parse("127.0.0.1:0"));
  constexpr std::size_t kTotal = 2 << 20;
  std::atomic<std::size_t> read{0};
  std::thread peer([at = l.local_address(), &read] {
    const int fd = connect_plain(at);
    std::vector<std::byte> all(kTotal);
    for (std::size_t i = 0; i < kTotal; ++i)
      all[i] = pattern(i);
    std::size_t sent = 0;
    for (unsigned piece = 0; sent < kTotal; ++piece) {
      const std::size_t n = std::min<std::size_t>(kTotal - sent, 1 + (piece * 7919u) % 3000);
      if (!write_all(fd, all.data() + sent, n)) break;
      sent += n;
      if (piece % 64 == 63) {
        // At most 2 s: a reader that failed must not hold the peer (and the test) for ever.
        for (int waited = 0; read.load(std::memory_order_acquire) < sent && waited < 20'000; ++waited)
          ::usleep(100);
        ::usleep(1000);
      }
    }
    ::close(fd);
  });
  std::size_t got = 0;
  std::size_t wrong = 0;
  bool ended = false;
  rt.run([&]() -> Task<void> {
    StreamSocket s = co_await l.accept();
    StreamReceiver r(s, polled());
    for (;;) {
      Chunk c = co_await r.recv(5s);
      if (c.end()) break;
      for (std::byte b : c.payload)
        wrong += b != pattern(got++) ? 1 : 0;
      r.recycle(c);
      read.store(got, std::memory_order_release);
    }
    ended = true;
  });
  peer.join();
  EXPECT_TRUE(ended);
  EXPECT_EQ(got, kTotal);
  EXPECT_EQ(wrong, 0u);
  EXPECT_GT(rt.stats(0).idle_poll_hits, 0u) << "the spinning shard read some pieces itself";
}

TEST(IdlePolling, ABufferTheApplicationHoldsLeavesTheSocketToTheRingUntilItComesBack) {
  moirai::Runtime rt(one_shard(moirai::IdleStrategy::spin));
  StreamListener l = StreamListener::bind(SocketAddress::parse("127.0.0.1:0"));
  std::thread peer = byte_ping_peer(l.local_address(), 400);
  int held_then_ring = 0;
  int direct_after_return = 0;
  rt.run([&]() -> Task<void> {
    StreamSocket s = co_await l.accept();
    StreamReceiver r(s, polled());
    const std::byte ack{2};
    for (;;) {
      Chunk c = co_await r.recv(5s);
      if (c.end()) break;
      if (c.buffer != detail::kDirectBid) {
        r.recycle(c);
        co_await s.send_all(std::span<const std::byte>(&ack, 1));
        continue;
      }
      // Held: the next byte cannot come through the shard's own buffer.
      co_await s.send_all(std::span<const std::byte>(&ack, 1));
      Chunk next = co_await r.recv(5s);
      if (next.end()) break;
      EXPECT_NE(next.buffer, detail::kDirectBid);
      ++held_then_ring;
      r.recycle(c);
      r.recycle(next);
      co_await s.send_all(std::span<const std::byte>(&ack, 1));
      // Given back: the shard polls the socket again.
      for (;;) {
        Chunk again = co_await r.recv(5s);
        if (again.end()) co_return;
        const bool direct = again.buffer == detail::kDirectBid;
        r.recycle(again);
        co_await s.send_all(std::span<const std::byte>(&ack, 1));
        if (direct) {
          ++direct_after_return;
          break;
        }
      }
    }
  });
  peer.join();
  EXPECT_GT(held_then_ring, 0);
  EXPECT_GT(direct_after_return, 0);
}

// The peer sends "last words" and closes (or resets): the data, then the end (or the reset) once, and the end
// at every receive after it, as from the ring. The shard's own recv or the ring's completion sees the end
// first, whichever wins the race; either way the other's report of it is not passed on.
void expect_end_as_from_the_ring(bool reset) {
  moirai::Runtime rt(one_shard(moirai::IdleStrategy::spin));
  StreamListener l = StreamListener::bind(SocketAddress::parse("127.0.0.1:0"));
  std::thread peer([at = l.local_address(), reset] {
    const int fd = connect_plain(at);
    const std::string words = "last words";
    write_all(fd, reinterpret_cast<const std::byte*>(words.data()), words.size());
    ::usleep(20'000);  // the words first, alone
    if (reset) {
      struct linger lg {
        1, 0
      };  // close with a RST
      ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    ::close(fd);
  });
  std::string text;
  int resets = 0;
  int ends = 0;
  rt.run([&]() -> Task<void> {
    StreamSocket s = co_await l.accept();
    StreamReceiver r(s, polled());
    // Until three outcomes past the data: the reset (if any), then ends.
    for (int i = 0; i < 100 && resets + ends < 3; ++i) {
      try {
        Chunk c = co_await r.recv(5s);
        if (c.end()) {
          ++ends;
          continue;
        }
        text += moirai_test::text_of(c.payload);
        r.recycle(c);
      } catch (const TransportError& e) {
        EXPECT_EQ(e.errc(), TransportErrc::connection_reset) << e.what();
        ++resets;
      }
    }
  });
  peer.join();
  EXPECT_EQ(text, "last words");
  EXPECT_EQ(resets, reset ? 1 : 0);
  EXPECT_EQ(ends, reset ? 2 : 3);
}

TEST(IdlePolling, AnEndIsToldOnceAndStays) {
  expect_end_as_from_the_ring(false);
}

TEST(IdlePolling, AResetIsToldOnceThenTheEnd) {
  expect_end_as_from_the_ring(true);
}

// A peer thread sends 500 datagrams, each after the shard's answer to the one before: every one comes, in
// order, with its sender's address; the shard read some itself.
TEST(IdlePolling, DatagramsComeInOrderWithTheirSender) {
  moirai::Runtime rt(one_shard(moirai::IdleStrategy::spin));
  std::vector<std::string> got;
  bool sender_right = true;
  rt.run([&]() -> Task<void> {
    DatagramOptions o;
    o.recv = polled();
    DatagramSocket s = DatagramSocket::bind(SocketAddress::parse("127.0.0.1:0"), o);
    const SocketAddress at = s.local_address();
    std::thread peer([at] {
      off_the_shards_cpu();
      const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
      ::connect(fd, at.data(), at.size());
      char reply[64];
      for (int i = 0; i < 500; ++i) {
        const std::string m = "datagram " + std::to_string(i);
        ::send(fd, m.data(), m.size(), 0);
        if (::recv(fd, reply, sizeof reply, 0) <= 0) break;
      }
      ::close(fd);
    });
    sockaddr_in peer_addr{};
    for (int i = 0; i < 500; ++i) {
      Datagram d = co_await s.recv(5s);
      got.push_back(moirai_test::text_of(d.payload));
      const SocketAddress from = d.sender_address();
      if (i == 0) std::memcpy(&peer_addr, from.data(), sizeof peer_addr);
      sender_right = sender_right && std::memcmp(&peer_addr, from.data(), sizeof peer_addr) == 0 &&
                     from.to_string().rfind("127.0.0.1:", 0) == 0;
      co_await s.send_to(from, d.payload);
    }
    peer.join();
  });
  ASSERT_EQ(got.size(), 500u);
  for (std::size_t i = 0; i < got.size(); ++i)
    EXPECT_EQ(got[i], "datagram " + std::to_string(i));
  EXPECT_TRUE(sender_right);
  EXPECT_GT(rt.stats(0).idle_poll_hits, 0u);
}

// Where the option does nothing, every receive comes from the ring and the shard never polls.
void expect_every_receive_from_the_ring(const moirai::RuntimeOptions& options) {
  moirai::Runtime rt(options);
  StreamListener l = StreamListener::bind(SocketAddress::parse("127.0.0.1:0"));
  std::thread peer = byte_ping_peer(l.local_address(), 100);
  int bytes = 0;
  rt.run([&]() -> Task<void> {
    StreamSocket s = co_await l.accept();
    StreamReceiver r(s, polled());
    for (;;) {
      Chunk c = co_await r.recv(5s);
      if (c.end()) break;
      EXPECT_NE(c.buffer, detail::kDirectBid);
      bytes += static_cast<int>(c.payload.size());
      r.recycle(c);
      const std::byte ack{1};
      co_await s.send_all(std::span<const std::byte>(&ack, 1));
    }
  });
  peer.join();
  EXPECT_EQ(bytes, 100);
  EXPECT_EQ(rt.stats(0).idle_poll_hits, 0u);
}

// The option asks for polling only while the shard spins: a sleeping shard takes everything from the ring.
TEST(IdlePolling, ASleepingShardLeavesEveryReceiveToTheRing) {
  expect_every_receive_from_the_ring(one_shard(moirai::IdleStrategy::sleep));
}

// A ring whose completions the kernel may run at any return to user space (no DEFER_TASKRUN, as before Linux
// 6.1) could post earlier bytes after the shard's own recv took later ones: there the option does nothing.
TEST(IdlePolling, ARingWithoutDeferredTaskWorkLeavesEveryReceiveToTheRing) {
  moirai::RuntimeOptions o = one_shard(moirai::IdleStrategy::spin);
  o.ring_mode = moirai::io::SetupMode::kCoopTaskrun;
  expect_every_receive_from_the_ring(o);
}

}  // namespace
