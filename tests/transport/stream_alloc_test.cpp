// Framed TCP traffic, and sends from registered send buffers, allocate nothing in steady state: after a
// warm-up on the same connection, 100k round trips (half of the receives with a timeout, which travels as a
// linked io_uring timeout) between shard 0 and an echo on shard 1, with every operator new and malloc
// counted.
#include <gtest/gtest.h>

#include <optional>

#include "../support/allocation_counter.hpp"
#include "moirai/core/shard.hpp"
#include "moirai/core/spawn.hpp"
#include "moirai/core/submit.hpp"
#include "moirai/core/timer.hpp"
#include "moirai/transport/framed_stream.hpp"
#include "moirai/transport/send_buffers.hpp"

namespace {

using moirai::Task;
using moirai_test::count_allocations;
using moirai_test::Counted;
using namespace moirai::transport;
using namespace std::chrono_literals;

FramedOptions framing(bool poll_when_idle) {
  FramedOptions o;
  o.recv.poll_when_idle = poll_when_idle;
  return o;
}

Task<void> echo(StreamListener& l, bool poll_when_idle) {
  FramedStream s(co_await l.accept(), EndpointId{0, 1, 0}, framing(poll_when_idle));
  for (;;) {
    Frame f = co_await s.recv();
    co_await s.send(f.header.type, f.payload);
  }
}

// Both ends' receives read by their spinning shard itself (RecvOptions::poll_when_idle) or from the ring.
void expect_framed_round_trips_allocate_nothing(bool poll_when_idle) {
  StreamListener listener = StreamListener::bind(SocketAddress::parse("127.0.0.1:0"));
  std::optional<FramedStream> client;
  std::uint64_t idle_poll_hits = 0;
  auto body = [&](int n) -> Task<std::uint64_t> {
    if (!client) {  // the warm-up call connects; the counted one reuses the connection
      // Detached: the runtime cancels it when the test's body is done.
      co_await moirai::post_to(
          1, [l = &listener, poll_when_idle] { moirai::spawn_detached(echo(*l, poll_when_idle)); });
      client.emplace(co_await StreamSocket::connect(listener.local_address()), EndpointId{0, 0, 0},
                     framing(poll_when_idle));
    }
    std::byte payload[48]{};
    std::uint64_t bytes = 0;
    for (int i = 0; i < n; ++i) {
      payload[0] = static_cast<std::byte>(i);
      co_await client->send(1, payload);
      // Both kinds of receive, in an if/else: g++ 12 evaluates both arms of a conditional expression whose
      // arms co_await an awaiter with a destructor (see FramedStream::receive).
      if (i % 2 == 0) {
        bytes += (co_await client->recv()).payload.size();
      } else {
        bytes += (co_await client->recv(1s)).payload.size();
      }
    }
    idle_poll_hits = moirai::this_shard().stats().idle_poll_hits;
    co_return bytes;
  };
  Counted c = count_allocations(body);
  EXPECT_EQ(c.allocations, 0u);
  EXPECT_EQ(c.sum, 48u * (1000 + 100'000));
  if (poll_when_idle) {
    EXPECT_GT(idle_poll_hits, 0u) << "the spinning shard read replies itself";
  } else {
    EXPECT_EQ(idle_poll_hits, 0u);
  }
}

TEST(StreamAllocations, NoneAcrossOneHundredThousandFramedRoundTrips) {
  expect_framed_round_trips_allocate_nothing(false);
}

TEST(StreamAllocations, NoneWhenTheSpinningShardReadsTheSocketsItself) {
  expect_framed_round_trips_allocate_nothing(true);
}

// Reads and drops everything one connection sends, until it closes.
Task<void> drain(StreamListener& l) {
  StreamSocket s = co_await l.accept();
  std::byte buf[65536];
  while (co_await s.recv_some(buf) != 0) {
  }
}

// 100k zero-copy sends of 4 KiB from a pool of 4 registered buffers: acquiring (often waiting for a
// notification to bring a buffer back), writing and sending allocate nothing.
TEST(StreamAllocations, NoneAcrossOneHundredThousandSendsFromRegisteredBuffers) {
  StreamListener listener = StreamListener::bind(SocketAddress::parse("127.0.0.1:0"));
  std::optional<StreamSocket> client;
  std::optional<SendBufferPool> pool;
  auto body = [&](int n) -> Task<std::uint64_t> {
    if (!client) {
      co_await moirai::post_to(1, [l = &listener] { moirai::spawn_detached(drain(*l)); });
      client.emplace(co_await StreamSocket::connect(listener.local_address()));
      pool.emplace(SendBufferOptions{4096, 4, true});
    }
    std::uint64_t bytes = 0;
    for (int i = 0; i < n; ++i) {
      SendBuffer b = co_await pool->acquire();
      b.bytes()[0] = static_cast<std::byte>(i);
      co_await client->send(std::move(b), 4096);
      bytes += 4096;
    }
    if (n != 1000) {  // the counted run: the pool goes on this shard, once the kernel gave every buffer back
      co_await pool->drained();
      pool.reset();
      client.reset();
    }
    co_return bytes;
  };
  Counted c = count_allocations(body);
  EXPECT_EQ(c.allocations, 0u);
  EXPECT_EQ(c.sum, 4096u * (1000 + 100'000));
}

}  // namespace
