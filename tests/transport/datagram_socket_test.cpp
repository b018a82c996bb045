// UDP through the shards' rings: echo between two shards with the sender's address, a burst kept in order,
// receive timeouts, more datagrams than buffers (the multishot receive runs dry and recovers), the one-shot
// fallback forced, multicast join/receive/leave on loopback, refused groups, and a second receiver refused.
#include "moirai/transport/datagram_socket.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "../core/core_test_support.hpp"
#include "moirai/core/runtime.hpp"
#include "moirai/core/spawn.hpp"
#include "moirai/core/submit.hpp"
#include "moirai/core/timer.hpp"

namespace {

using moirai::Task;
using moirai_test::one_shard;
using moirai_test::two_shards;
using namespace moirai::transport;
using namespace std::chrono_literals;

std::span<const std::byte> bytes_of(const std::string& s) {
  return std::as_bytes(std::span<const char>(s.data(), s.size()));
}
std::string text_of(std::span<const std::byte> b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}
// "prefix" followed by the number (appended, not `+`-chained: GCC 12's -Wrestrict misfires on the chain).
std::string numbered(const char* prefix, int i) {
  std::string s(prefix);
  s.append(std::to_string(i));
  return s;
}

// Echoes `n` datagrams back to their senders.
Task<void> echo(DatagramSocket& s, int n) {
  for (int i = 0; i < n; ++i) {
    Datagram d = co_await s.recv(5s);
    const SocketAddress from = d.sender_address();
    co_await s.send_to(from, d.payload);
  }
}

void echo_between_shards(const RecvOptions& receive, bool expect_multishot,
                         moirai::IdleStrategy idle = moirai::IdleStrategy::spin_then_sleep) {
  moirai::Runtime rt(two_shards(idle));
  std::unique_ptr<DatagramSocket> server;  // lives on shard 1
  SocketAddress at;
  std::vector<std::string> got;
  bool client_multishot = false;
  bool server_multishot = false;
  bool sender_matches = true;
  rt.run([&]() -> Task<void> {
    co_await moirai::submit_to(1, [&]() -> Task<void> {
      server = std::make_unique<DatagramSocket>(
          DatagramSocket::bind(SocketAddress::parse("127.0.0.1:0"), DatagramOptions{receive, false}));
      at = server->local_address();
      server_multishot = server->multishot();
      co_return;
    });
    auto serving = moirai::spawn([&]() -> Task<void> {
      co_await moirai::submit_to(1, [&]() -> Task<void> { return echo(*server, 200); });
    });
    {
      DatagramSocket client =
          DatagramSocket::bind(SocketAddress::parse("127.0.0.1:0"), DatagramOptions{receive, false});
      client_multishot = client.multishot();
      const std::string mine = client.local_address().to_string();
      for (int i = 0; i < 200; ++i) {
        co_await client.send_to(at, bytes_of(numbered("ping ", i)));
        Datagram d = co_await client.recv(5s);
        got.push_back(text_of(d.payload));
        if (d.sender_address().to_string() != at.to_string()) sender_matches = false;
      }
      (void)mine;
    }
    co_await serving.join();
    co_await moirai::submit_to(1, [&]() -> Task<void> {
      server.reset();
      co_return;
    });
  });
  ASSERT_EQ(got.size(), 200u);
  for (int i = 0; i < 200; ++i)
    EXPECT_EQ(got[static_cast<std::size_t>(i)], numbered("ping ", i));
  EXPECT_TRUE(sender_matches);
  EXPECT_EQ(client_multishot, expect_multishot);
  EXPECT_EQ(server_multishot, expect_multishot);
}

TEST(Udp, EchoesBetweenTwoShardsWithTheSendersAddress) {
  echo_between_shards(RecvOptions{}, true);
}

// Shards that wait busy-polling in the kernel: each datagram's completion ends the wait it arrives in.
TEST(Udp, EchoesBetweenShardsThatBusyPoll) {
  echo_between_shards(RecvOptions{}, true, moirai::IdleStrategy::busy_poll);
}

TEST(Udp, EchoesOnTheOneShotFallbackWhenForced) {
  RecvOptions o;
  o.force_fallback = true;
  echo_between_shards(o, false);
}

TEST(Udp, ABurstThatFitsTheSocketBufferArrivesInOrder) {
  moirai::Runtime rt(one_shard());
  std::vector<std::string> got;
  rt.run([&]() -> Task<void> {
    DatagramSocket rx = DatagramSocket::bind(SocketAddress::parse("127.0.0.1:0"));
    DatagramSocket tx = DatagramSocket::bind(SocketAddress::parse("127.0.0.1:0"));
    tx.connect(rx.local_address());
    for (int i = 0; i < 48; ++i)
      co_await tx.send(bytes_of(numbered("burst ", i)));
    for (int i = 0; i < 48; ++i)
      got.push_back(text_of((co_await rx.recv(5s)).payload));
  });
  ASSERT_EQ(got.size(), 48u);
  for (int i = 0; i < 48; ++i)
    EXPECT_EQ(got[static_cast<std::size_t>(i)], numbered("burst ", i));
}

TEST(Udp, MoreDatagramsThanBuffersRunTheReceiveDryAndItRecovers) {
  for (bool fallback : {false, true}) {
    moirai::Runtime rt(one_shard());
    std::vector<std::string> got;
    std::uint64_t rearms = 0;
    std::uint32_t drops = 0;
    rt.run([&]() -> Task<void> {
      DatagramOptions o;
      o.recv.buffers = 4;
      o.recv.buffer_size = 256;
      o.recv.force_fallback = fallback;
      DatagramSocket rx = DatagramSocket::bind(SocketAddress::parse("127.0.0.1:0"), o);
      DatagramSocket tx = DatagramSocket::bind(SocketAddress::parse("127.0.0.1:0"));
      tx.connect(rx.local_address());
      // All sent before the first recv: the receive takes 4 buffers, then runs out.
      for (int i = 0; i < 40; ++i)
        co_await tx.send(bytes_of(numbered("d", i)));
      for (int i = 0; i < 40; ++i)
        got.push_back(text_of((co_await rx.recv(5s)).payload));
      rearms = rx.rearms_after_enobufs();
      drops = rx.kernel_drops();
    });
    ASSERT_EQ(got.size(), 40u) << (fallback ? "fallback" : "multishot");
    for (int i = 0; i < 40; ++i)
      EXPECT_EQ(got[static_cast<std::size_t>(i)], numbered("d", i));
    if (!fallback) {
      EXPECT_GT(rearms, 0u);  // the kernel said -ENOBUFS and the receive was re-armed
    }
    EXPECT_EQ(drops, 0u);  // 40 small datagrams fit the socket buffer
  }
}

TEST(Udp, ATruncatedDatagramIsFlagged) {
  moirai::Runtime rt(one_shard());
  bool truncated = false;
  std::size_t size = 0;
  rt.run([&]() -> Task<void> {
    DatagramOptions o;
    o.recv.buffer_size = 128;  // 56 bytes of payload after the header
    DatagramSocket rx = DatagramSocket::bind(SocketAddress::parse("127.0.0.1:0"), o);
    DatagramSocket tx = DatagramSocket::bind(SocketAddress::parse("127.0.0.1:0"));
    co_await tx.send_to(rx.local_address(), bytes_of(std::string(100, 'x')));
    Datagram d = co_await rx.recv(5s);
    truncated = d.truncated;
    size = d.payload.size();
  });
  EXPECT_TRUE(truncated);
  EXPECT_EQ(size, 128u - 72u);
}

TEST(Udp, ReceiveTimesOutAndTheSocketGoesOn) {
  moirai::Runtime rt(one_shard());
  TransportErrc seen{};
  std::string what;
  std::string later;
  rt.run([&]() -> Task<void> {
    DatagramSocket rx = DatagramSocket::bind(SocketAddress::parse("127.0.0.1:0"));
    try {
      co_await rx.recv(20ms);
    } catch (const TransportError& e) {
      seen = e.errc();
      what = e.what();
    }
    DatagramSocket tx = DatagramSocket::bind(SocketAddress::parse("127.0.0.1:0"));
    co_await tx.send_to(rx.local_address(), bytes_of("after"));
    later = text_of((co_await rx.recv(5s)).payload);
  });
  EXPECT_EQ(seen, TransportErrc::timeout);
  EXPECT_NE(what.find("udp recv: nothing within 20000 us"), std::string::npos) << what;
  EXPECT_EQ(later, "after");
}

// A second task that receives while one waits with a timeout is refused at once; the first keeps its place
// (its timer still armed, its waiting not taken over) and gets the next datagram.
TEST(Udp, ASecondReceiverIsRefusedAndTheWaitingOneGetsTheDatagram) {
  moirai::Runtime rt(one_shard());
  std::string first;
  TransportErrc refused{};
  rt.run([&]() -> Task<void> {
    DatagramSocket rx = DatagramSocket::bind(SocketAddress::parse("127.0.0.1:0"));
    auto waiting = moirai::spawn([&]() -> Task<void> { first = text_of((co_await rx.recv(5s)).payload); });
    co_await moirai::yield();
    try {
      co_await rx.recv(10ms);
    } catch (const TransportError& e) {
      refused = e.errc();
    }
    co_await moirai::sleep_for(20ms);  // past the refused receive's timeout: nothing of it is left armed
    DatagramSocket tx = DatagramSocket::bind(SocketAddress::parse("127.0.0.1:0"));
    co_await tx.send_to(rx.local_address(), bytes_of("for the first"));
    co_await waiting.join();
  });
  EXPECT_EQ(refused, TransportErrc::not_supported);
  EXPECT_EQ(first, "for the first");
}

TEST(Udp, IPv6LoopbackEcho) {
  moirai::Runtime rt(one_shard());
  std::string got;
  std::string skip;
  rt.run([&]() -> Task<void> {
    std::optional<DatagramSocket> rx;
    try {
      rx.emplace(DatagramSocket::bind(SocketAddress::parse("[::1]:0")));
    } catch (const TransportError& e) {
      skip = e.what();
      co_return;
    }
    DatagramSocket tx = DatagramSocket::bind(SocketAddress::parse("[::1]:0"));
    co_await tx.send_to(rx->local_address(), bytes_of("six"));
    Datagram d = co_await rx->recv(5s);
    got = text_of(d.payload) + " from " + d.sender_address().to_string();
    EXPECT_EQ(d.sender_address().to_string(), tx.local_address().to_string());
  });
  if (!skip.empty()) GTEST_SKIP() << "no IPv6 loopback here: " << skip;
  EXPECT_EQ(got.substr(0, 3), "six");
}

TEST(UdpMulticast, JoinReceiveAndLeaveOnLoopback) {
  moirai::Runtime rt(one_shard());
  std::string skip;
  std::string got;
  TransportErrc after_leave{};
  rt.run([&]() -> Task<void> {
    const std::string group = "239.255.77.1";
    DatagramOptions o;
    o.reuse_address = true;
    DatagramSocket rx = DatagramSocket::bind(SocketAddress::parse("0.0.0.0:0"), o);
    const unsigned short port = rx.local_address().port();
    DatagramSocket tx = DatagramSocket::bind(SocketAddress::parse("127.0.0.1:0"));
    const SocketAddress to = SocketAddress::parse(group + ":" + std::to_string(port));
    try {
      rx.join(group, "lo");
      tx.set_multicast_interface("127.0.0.1");
      tx.set_multicast_loopback(true);
      tx.set_multicast_ttl(1);
      co_await tx.send_to(to, bytes_of("to the group"));
    } catch (const TransportError& e) {
      skip = e.what();
    }
    if (!skip.empty()) co_return;
    try {
      got = text_of((co_await rx.recv(2s)).payload);
    } catch (const TransportError& e) {
      skip = std::string("joined, but nothing arrived over loopback multicast: ") + e.what();
      co_return;
    }
    rx.leave(group, "lo");
    co_await tx.send_to(to, bytes_of("after leave"));
    try {
      co_await rx.recv(100ms);
    } catch (const TransportError& e) {
      after_leave = e.errc();
    }
  });
  if (!skip.empty()) GTEST_SKIP() << "this host gives no multicast on loopback: " << skip;
  EXPECT_EQ(got, "to the group");
  EXPECT_EQ(after_leave, TransportErrc::timeout);  // nothing more arrives once it left
}

// Two receivers on one port, as a feed handler's sockets for two groups are: each gets only the group it
// joined, and one that left gets nothing more while the other still listens (Linux's default,
// IP_MULTICAST_ALL, would give each socket on the port every group any of them joined).
TEST(UdpMulticast, SocketsSharingAPortGetOnlyTheGroupsTheyJoined) {
  moirai::Runtime rt(one_shard());
  std::string skip;
  std::vector<std::string> got1;
  std::vector<TransportErrc> missed2;
  rt.run([&]() -> Task<void> {
    const std::string g1 = "239.255.77.2", g2 = "239.255.77.3";
    DatagramOptions o;
    o.reuse_address = true;
    DatagramSocket rx1 = DatagramSocket::bind(SocketAddress::parse("0.0.0.0:0"), o);
    const std::string port = std::to_string(rx1.local_address().port());
    DatagramSocket rx2 = DatagramSocket::bind(SocketAddress::parse("0.0.0.0:" + port), o);
    DatagramSocket tx = DatagramSocket::bind(SocketAddress::parse("127.0.0.1:0"));
    const SocketAddress to1 = SocketAddress::parse(g1 + ":" + port);
    try {
      rx1.join(g1, "lo");
      rx2.join(g2, "lo");
      tx.set_multicast_interface("127.0.0.1");
      co_await tx.send_to(to1, bytes_of("g1 first"));
      got1.push_back(text_of((co_await rx1.recv(2s)).payload));
    } catch (const TransportError& e) {
      skip = e.what();
      co_return;
    }
    const auto nothing_for_rx2 = [&]() -> Task<void> {
      try {
        co_await rx2.recv(100ms);
      } catch (const TransportError& e) {
        missed2.push_back(e.errc());
      }
    };
    co_await nothing_for_rx2();  // rx2 joined g2 only
    rx2.join(g1, "lo");
    rx2.leave(g1, "lo");
    co_await tx.send_to(to1, bytes_of("g1 second"));
    got1.push_back(text_of((co_await rx1.recv(2s)).payload));
    co_await nothing_for_rx2();  // rx2 left g1; rx1 still listens to it on the same port
  });
  if (!skip.empty()) GTEST_SKIP() << "this host gives no multicast on loopback: " << skip;
  EXPECT_EQ(got1, (std::vector<std::string>{"g1 first", "g1 second"}));
  EXPECT_EQ(missed2, (std::vector<TransportErrc>{TransportErrc::timeout, TransportErrc::timeout}));
}

TEST(UdpMulticast, RefusesAnAddressThatIsNotAGroup) {
  moirai::Runtime rt(one_shard());
  std::vector<std::pair<TransportErrc, std::string>> errors;
  rt.run([&]() -> Task<void> {
    DatagramSocket s = DatagramSocket::bind(SocketAddress::parse("0.0.0.0:0"));
    for (const char* g : {"10.1.2.3", "not-an-address", "239.1.1.1"}) {
      try {
        if (std::string(g) == "239.1.1.1") {
          s.leave(g, "lo");  // never joined
        } else {
          s.join(g, "lo");
        }
      } catch (const TransportError& e) {
        errors.emplace_back(e.errc(), e.what());
      }
    }
    try {
      s.join("239.1.1.2", "no-such-interface0");
    } catch (const TransportError& e) {
      errors.emplace_back(e.errc(), e.what());
    }
    co_return;
  });
  ASSERT_EQ(errors.size(), 4u);
  // A group or interface of the wrong form is a bad argument; a leave the kernel refuses is not.
  EXPECT_EQ(errors[0].first, TransportErrc::invalid_argument) << errors[0].second;
  EXPECT_EQ(errors[1].first, TransportErrc::invalid_argument) << errors[1].second;
  EXPECT_EQ(errors[2].first, TransportErrc::not_supported) << errors[2].second;
  EXPECT_EQ(errors[3].first, TransportErrc::invalid_argument) << errors[3].second;
  EXPECT_NE(errors[0].second.find("group 10.1.2.3 on interface lo: not a multicast address"),
            std::string::npos)
      << errors[0].second;
  EXPECT_NE(errors[1].second.find("not a numeric"), std::string::npos) << errors[1].second;
  EXPECT_NE(errors[2].second.find("leave multicast group 239.1.1.1"), std::string::npos) << errors[2].second;
  EXPECT_NE(errors[3].second.find("no interface named \"no-such-interface0\""), std::string::npos)
      << errors[3].second;
}

}  // namespace
