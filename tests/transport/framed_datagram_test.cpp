// Frames over UDP: echo between two shards with sender ids and addresses, order per sender, recv_from with
// interleaved senders (and a stash that fills without losing anything), receive timeouts, and bad datagrams
// (random bytes, a lying length, a short header, an oversized payload, a truncated datagram, a sender from
// another node) dropped and counted while good frames around them still arrive.
#include "moirai/transport/framed_datagram.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "../core/core_test_support.hpp"
#include "moirai/core/runtime.hpp"
#include "moirai/core/spawn.hpp"
#include "moirai/core/submit.hpp"
#include "transport_test_support.hpp"

namespace {

using moirai::Task;
using moirai_test::bytes_of;
using moirai_test::frame_bytes;
using moirai_test::one_shard;
using moirai_test::text_of;
using moirai_test::two_shards;
using namespace moirai::transport;
using namespace std::chrono_literals;

const SocketAddress kAny = SocketAddress::parse("127.0.0.1:0");

std::string numbered(const char* prefix, int i) {
  std::string s(prefix);
  s.append(std::to_string(i));
  return s;
}

FramedDatagramOptions quiet() {
  FramedDatagramOptions o;
  o.log_drops = false;
  return o;
}

TEST(FramedDatagram, EchoBetweenShardsCarriesSenderTypeAndAddress) {
  moirai::Runtime rt(two_shards());
  std::unique_ptr<FramedDatagramSocket> server;
  SocketAddress at;
  std::vector<std::string> got;
  bool ids_ok = true;
  rt.run([&]() -> Task<void> {
    co_await moirai::submit_to(1, [&]() -> Task<void> {
      server = std::make_unique<FramedDatagramSocket>(FramedDatagramSocket::bind(kAny, EndpointId{7, 1, 3}));
      at = server->local_address();
      co_return;
    });
    auto serving = moirai::spawn([&]() -> Task<void> {
      co_await moirai::submit_to(1, [&]() -> Task<void> {
        for (int i = 0; i < 300; ++i) {
          DatagramFrame f = co_await server->recv(5s);
          if (f.header.sender != EndpointId{7, 0, 9}) ids_ok = false;
          co_await server->send_to(f.sender_address(), f.header.type, f.payload);
        }
      });
    });
    FramedDatagramSocket client = FramedDatagramSocket::bind(kAny, EndpointId{7, 0, 9});
    for (int i = 0; i < 300; ++i) {
      const std::string text = numbered("ping ", i);
      co_await client.send_to(at, static_cast<std::uint16_t>(i % 5), bytes_of(text));
      DatagramFrame f = co_await client.recv(5s);
      if (f.header.sender != EndpointId{7, 1, 3} || f.header.type != i % 5) ids_ok = false;
      if (f.sender_address().to_string() != at.to_string()) ids_ok = false;
      got.push_back(text_of(f.payload));
    }
    co_await serving.join();
    co_await moirai::submit_to(1, [&] { server.reset(); });
  });
  ASSERT_EQ(got.size(), 300u);
  for (int i = 0; i < 300; ++i)
    EXPECT_EQ(got[i], numbered("ping ", i));
  EXPECT_TRUE(ids_ok);
}

TEST(FramedDatagram, EmptyPayloadAndConnectedSend) {
  moirai::Runtime rt(one_shard());
  bool ok = false;
  rt.run([&]() -> Task<void> {
    FramedDatagramSocket a = FramedDatagramSocket::bind(kAny, EndpointId{1, 0, 0});
    FramedDatagramSocket b = FramedDatagramSocket::bind(kAny, EndpointId{2, 0, 0});
    a.connect(b.local_address());
    co_await a.send(42, {});
    DatagramFrame f = co_await b.recv(5s);
    ok = f.header.type == 42 && f.payload.empty() && f.header.sender == EndpointId{1, 0, 0};
  });
  EXPECT_TRUE(ok);
}

// Frames of every size up to the receive buffer, to an address and to the connected peer, arrive whole.
TEST(FramedDatagram, LargeAndSmallFramesArriveWholeBothWays) {
  moirai::Runtime rt(one_shard());
  std::vector<std::size_t> sizes;
  bool intact = true;
  rt.run([&]() -> Task<void> {
    FramedDatagramSocket a = FramedDatagramSocket::bind(kAny, EndpointId{1, 0, 0});
    FramedDatagramSocket b = FramedDatagramSocket::bind(kAny, EndpointId{2, 0, 0});
    const SocketAddress to_b = b.local_address();
    for (std::size_t n : {std::size_t{1}, std::size_t{240}, std::size_t{241}, std::size_t{1900}}) {
      std::string text(n, 'x');
      for (std::size_t i = 0; i < n; ++i)
        text[i] = static_cast<char>('a' + i % 26);
      co_await a.send_to(to_b, 3, bytes_of(text));
      DatagramFrame f = co_await b.recv(5s);
      sizes.push_back(f.payload.size());
      if (text_of(f.payload) != text || f.header.type != 3) intact = false;
      const SocketAddress back = f.sender_address();
      b.connect(back);
      co_await b.send(4, bytes_of(text));
      DatagramFrame g = co_await a.recv(5s);
      if (text_of(g.payload) != text || g.header.type != 4) intact = false;
    }
  });
  EXPECT_EQ(sizes, (std::vector<std::size_t>{1, 240, 241, 1900}));
  EXPECT_TRUE(intact);
}

// Three senders interleave; recv_from takes one sender's frames in order and keeps the others, which then
// come out in their own order.
TEST(FramedDatagram, RecvFromKeepsOtherSendersInOrder) {
  moirai::Runtime rt(one_shard());
  std::vector<std::string> from_b, rest;
  rt.run([&]() -> Task<void> {
    FramedDatagramSocket r = FramedDatagramSocket::bind(kAny, EndpointId{9, 0, 0});
    const SocketAddress at = r.local_address();
    FramedDatagramSocket a = FramedDatagramSocket::bind(kAny, EndpointId{1, 0, 1});
    FramedDatagramSocket b = FramedDatagramSocket::bind(kAny, EndpointId{1, 0, 2});
    FramedDatagramSocket c = FramedDatagramSocket::bind(kAny, EndpointId{1, 0, 3});
    for (int i = 0; i < 10; ++i) {
      co_await a.send_to(at, 1, bytes_of(numbered("a", i)));
      co_await b.send_to(at, 1, bytes_of(numbered("b", i)));
      co_await c.send_to(at, 1, bytes_of(numbered("c", i)));
    }
    for (int i = 0; i < 10; ++i) {
      DatagramFrame f = co_await r.recv_from(EndpointId{1, 0, 2}, 5s);
      from_b.push_back(text_of(f.payload));
    }
    for (int i = 0; i < 20; ++i) {
      DatagramFrame f = co_await r.recv(5s);
      rest.push_back(text_of(f.payload) + "@" + std::to_string(f.sender_address().port()));
    }
    EXPECT_EQ(r.stashed_bytes(), 0u);
    // The stashed frames still carry their senders' addresses.
    const std::string a_port = std::to_string(a.local_address().port());
    EXPECT_EQ(rest[0], "a0@" + a_port);
  });
  ASSERT_EQ(from_b.size(), 10u);
  for (int i = 0; i < 10; ++i)
    EXPECT_EQ(from_b[i], numbered("b", i));
  ASSERT_EQ(rest.size(), 20u);
  std::vector<std::string> as, cs;
  for (const std::string& s : rest)
    (s[0] == 'a' ? as : cs).push_back(s.substr(0, s.find('@')));
  ASSERT_EQ(as.size(), 10u);
  ASSERT_EQ(cs.size(), 10u);
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(as[i], numbered("a", i));
    EXPECT_EQ(cs[i], numbered("c", i));
  }
}

// A full stash refuses, loses nothing: the frame that did not fit is the next recv()'s after the stashed
// ones, and the awaited sender's frame is still there.
TEST(FramedDatagram, FullStashRefusesAndKeepsEveryFrame) {
  moirai::Runtime rt(one_shard());
  std::vector<std::string> order;
  bool refused = false;
  rt.run([&]() -> Task<void> {
    FramedDatagramOptions o = quiet();
    o.stash_bytes = 2 * (32 + kFrameHeaderSize + 2);  // two of x's frames
    FramedDatagramSocket r = FramedDatagramSocket::bind(kAny, EndpointId{9, 0, 0}, o);
    const SocketAddress at = r.local_address();
    FramedDatagramSocket x = FramedDatagramSocket::bind(kAny, EndpointId{1, 0, 1});
    FramedDatagramSocket y = FramedDatagramSocket::bind(kAny, EndpointId{1, 0, 2});
    for (int i = 0; i < 3; ++i)
      co_await x.send_to(at, 1, bytes_of(numbered("x", i)));
    co_await y.send_to(at, 1, bytes_of("y0"));
    try {
      (void)co_await r.recv_from(EndpointId{1, 0, 2}, 5s);
    } catch (const TransportError& e) {
      refused = e.errc() == TransportErrc::message_too_large &&
                std::string(e.what()).find("stash_bytes") != std::string::npos;
    }
    for (int i = 0; i < 4; ++i) {
      DatagramFrame f = co_await r.recv(5s);
      order.push_back(text_of(f.payload));
    }
  });
  EXPECT_TRUE(refused);
  EXPECT_EQ(order, (std::vector<std::string>{"x0", "x1", "x2", "y0"}));
}

TEST(FramedDatagram, ReceiveTimesOut) {
  moirai::Runtime rt(one_shard());
  bool timed_out = false;
  rt.run([&]() -> Task<void> {
    FramedDatagramSocket r = FramedDatagramSocket::bind(kAny, EndpointId{9, 0, 0});
    try {
      (void)co_await r.recv(20ms);
    } catch (const TransportError& e) {
      timed_out = e.errc() == TransportErrc::timeout;
    }
  });
  EXPECT_TRUE(timed_out);
}

// Each kind of bad datagram is dropped and counted under its reason; the good frames between them arrive.
TEST(FramedDatagram, BadDatagramsAreDroppedAndCountedAndTheSocketGoesOn) {
  moirai::Runtime rt(one_shard());
  std::vector<std::string> got;
  DatagramStats stats;
  rt.run([&]() -> Task<void> {
    FramedDatagramOptions o = quiet();
    o.max_payload = 100;
    o.peer_node = 1;
    o.socket.recv.buffer_size = 512;
    FramedDatagramSocket r = FramedDatagramSocket::bind(kAny, EndpointId{9, 0, 0}, o);
    const SocketAddress at = r.local_address();
    DatagramSocket raw = DatagramSocket::bind(kAny);
    const EndpointId good{1, 0, 0};
    auto send_raw = [&](const std::vector<std::byte>& v) { return raw.send_to(at, v); };
    co_await send_raw(frame_bytes(2, 1, good, "ok"));
    co_await raw.send_to(at, bytes_of("random bytes that are not a frame"));  // bad version byte
    co_await send_raw(frame_bytes(50, 1, good, "short"));                     // promises more than it has
    co_await send_raw(frame_bytes(2, 1, good, "oktrailing"));                 // bytes after the frame
    std::vector<std::byte> tiny = frame_bytes(0, 1, good, "");
    tiny.resize(10);
    co_await send_raw(tiny);                                                // a header cut short
    co_await send_raw(frame_bytes(200, 1, good, std::string(200, 'z')));    // over max_payload
    co_await send_raw(frame_bytes(1000, 1, good, std::string(1000, 'q')));  // over the receive buffer
    co_await send_raw(frame_bytes(4, 1, EndpointId{5, 0, 0}, "liar"));      // another node
    co_await send_raw(frame_bytes(4, 1, good, "fine"));
    for (int i = 0; i < 2; ++i) {
      DatagramFrame f = co_await r.recv(5s);
      got.push_back(text_of(f.payload));
    }
    stats = r.stats();
  });
  EXPECT_EQ(got, (std::vector<std::string>{"ok", "fine"}));
  EXPECT_EQ(stats.frames, 2u);
  EXPECT_EQ(stats.dropped[static_cast<std::size_t>(DropReason::malformed)], 4u);
  EXPECT_EQ(stats.dropped[static_cast<std::size_t>(DropReason::too_large)], 1u);
  EXPECT_EQ(stats.dropped[static_cast<std::size_t>(DropReason::truncated)], 1u);
  EXPECT_EQ(stats.dropped[static_cast<std::size_t>(DropReason::wrong_sender)], 1u);
  EXPECT_EQ(stats.dropped_total(), 7u);
}

TEST(FramedDatagram, OversizedSendIsRefusedWithNothingSent) {
  moirai::Runtime rt(one_shard());
  bool refused = false;
  bool nothing_arrived = false;
  rt.run([&]() -> Task<void> {
    FramedDatagramOptions o = quiet();
    o.max_payload = 8;
    FramedDatagramSocket a = FramedDatagramSocket::bind(kAny, EndpointId{1, 0, 0}, o);
    FramedDatagramSocket b = FramedDatagramSocket::bind(kAny, EndpointId{2, 0, 0});
    const SocketAddress to = b.local_address();
    try {
      co_await a.send_to(to, 1, bytes_of("nine bytes"));
    } catch (const TransportError& e) {
      refused = e.errc() == TransportErrc::message_too_large;
    }
    try {
      (void)co_await b.recv(20ms);
    } catch (const TransportError& e) {
      nothing_arrived = e.errc() == TransportErrc::timeout;
    }
  });
  EXPECT_TRUE(refused);
  EXPECT_TRUE(nothing_arrived);
}

TEST(FramedDatagram, MaxPayloadOverWhatUdpCarriesIsRefusedAtBind) {
  moirai::Runtime rt(one_shard());
  std::string what;
  rt.run([&]() -> Task<void> {
    FramedDatagramOptions o;
    o.max_payload = kMaxDatagramPayload + 1;
    try {
      (void)FramedDatagramSocket::bind(kAny, EndpointId{}, o);
    } catch (const TransportError& e) {
      what = e.what();
    }
    co_return;
  });
  EXPECT_NE(what.find("max_payload"), std::string::npos) << what;
  EXPECT_NE(what.find("TCP"), std::string::npos) << what;
}

}  // namespace
