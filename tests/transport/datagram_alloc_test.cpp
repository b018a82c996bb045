// UDP traffic allocates nothing in steady state: 100k datagram round trips on loopback (multishot receive
// into a provided-buffer ring, and the one-shot fallback), raw and framed (recv_from included), after a
// warm-up, with every operator new and malloc counted.
#include <gtest/gtest.h>

#include <optional>

#include "../support/allocation_counter.hpp"
#include "moirai/transport/datagram_socket.hpp"
#include "moirai/transport/framed_datagram.hpp"

namespace {

using moirai::Task;
using moirai_test::count_allocations;
using moirai_test::Counted;
using namespace moirai::transport;

Counted ping_pong(bool fallback) {
  // Made in the warm-up round (set-up allocates), reused by the counted one, dropped after it.
  std::optional<DatagramSocket> a;
  std::optional<DatagramSocket> b;
  auto body = [&](int n) -> Task<std::uint64_t> {
    if (!a) {
      DatagramOptions o;
      o.recv.force_fallback = fallback;
      a.emplace(DatagramSocket::bind(SocketAddress::parse("127.0.0.1:0"), o));
      b.emplace(DatagramSocket::bind(SocketAddress::parse("127.0.0.1:0"), o));
      a->connect(b->local_address());
      b->connect(a->local_address());
    }
    std::byte payload[64] = {};
    std::uint64_t sum = 0;
    for (int i = 0; i < n; ++i) {
      payload[0] = static_cast<std::byte>(i);
      co_await a->send(payload);
      Datagram d = co_await b->recv(std::chrono::seconds(5));
      co_await b->send(d.payload);
      sum += (co_await a->recv(std::chrono::seconds(5))).payload.size();
    }
    if (n > 1000) {
      a.reset();
      b.reset();
    }
    co_return sum;
  };
  return count_allocations(body);
}

TEST(DatagramAllocations, NoneAcrossOneHundredThousandRoundTrips) {
  Counted c = ping_pong(false);
  EXPECT_EQ(c.allocations, 0u);
  EXPECT_EQ(c.sum, 64u * 101'000u);
}

TEST(DatagramAllocations, NoneOnTheOneShotFallbackEither) {
  Counted c = ping_pong(true);
  EXPECT_EQ(c.allocations, 0u);
  EXPECT_EQ(c.sum, 64u * 101'000u);
}

// Framed: a sends to b, b answers with recv_from(a's id) (a third sender's frame is stashed and taken
// back every round, so the stash path is counted too).
Counted framed_ping_pong() {
  std::optional<FramedDatagramSocket> a, b, c;
  auto body = [&](int n) -> Task<std::uint64_t> {
    if (!a) {
      const SocketAddress any = SocketAddress::parse("127.0.0.1:0");
      a.emplace(FramedDatagramSocket::bind(any, EndpointId{1, 0, 0}));
      b.emplace(FramedDatagramSocket::bind(any, EndpointId{2, 0, 0}));
      c.emplace(FramedDatagramSocket::bind(any, EndpointId{3, 0, 0}));
      a->connect(b->local_address());
      c->connect(b->local_address());
    }
    std::byte payload[48] = {};
    std::uint64_t sum = 0;
    for (int i = 0; i < n; ++i) {
      payload[0] = static_cast<std::byte>(i);
      if (i % 16 == 0) co_await c->send(2, payload);
      co_await a->send(1, payload);
      DatagramFrame f = co_await b->recv_from(EndpointId{1, 0, 0}, std::chrono::seconds(5));
      const SocketAddress from = f.sender_address();
      co_await b->send_to(from, f.header.type, f.payload);
      sum += (co_await a->recv(std::chrono::seconds(5))).payload.size();
      if (i % 16 == 0) (void)co_await b->recv(std::chrono::seconds(5));  // c's, from the stash
    }
    if (n > 1000) {
      a.reset();
      b.reset();
      c.reset();
    }
    co_return sum;
  };
  return count_allocations(body);
}

TEST(DatagramAllocations, NoneAcrossOneHundredThousandFramedRoundTrips) {
  Counted c = framed_ping_pong();
  EXPECT_EQ(c.allocations, 0u);
  EXPECT_EQ(c.sum, 48u * 101'000u);
}

}  // namespace
