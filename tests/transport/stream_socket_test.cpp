// TCP and framed streams over loopback between two shards, through their rings: frames arrive whole, in
// order, with their sender; a refused connect, a peer that closes, an oversized or malformed frame are the
// errors the issue names, and one bad connection does not stop the listener from serving the next.
#include "moirai/transport/stream_socket.hpp"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "../core/core_test_support.hpp"
#include "moirai/core/clock.hpp"
#include "moirai/core/runtime.hpp"
#include "moirai/core/spawn.hpp"
#include "moirai/core/submit.hpp"
#include "moirai/core/timer.hpp"
#include "moirai/transport/datagram_socket.hpp"
#include "moirai/transport/framed_stream.hpp"
#include "transport_test_support.hpp"

namespace {

using moirai::Task;
using moirai_test::two_shards;
using namespace moirai::transport;
using namespace std::chrono_literals;

using moirai_test::bytes_of;
using moirai_test::text_of;

// Serves framed echo on shard 1 for `connections` connections: each frame goes back with its type, under the
// server's own sender id. Records why each connection ended.
Task<void> echo_server(StreamListener& listener, int connections, std::vector<TransportErrc>& endings) {
  for (int c = 0; c < connections; ++c) {
    FramedStream s(co_await listener.accept(), EndpointId{0, 1, 9}, 1024);
    try {
      for (;;) {
        Frame f = co_await s.recv();
        std::vector<std::byte> copy(f.payload.begin(), f.payload.end());
        co_await s.send(f.header.type, copy);
      }
    } catch (const TransportError& e) {
      endings.push_back(e.errc());
    }
    co_await s.close();
  }
}

void frames_echo_in_order(moirai::IdleStrategy idle, const RecvOptions& receive = FramedOptions{}.recv) {
  moirai::Runtime rt(two_shards(idle));
  bool multishot = false;
  StreamListener listener = StreamListener::bind(SocketAddress::parse("127.0.0.1:0"));
  const SocketAddress at = listener.local_address();
  std::vector<TransportErrc> endings;
  std::vector<std::string> got;
  std::vector<EndpointId> senders;
  rt.run([&]() -> Task<void> {
    auto server = moirai::spawn([&]() -> Task<void> {
      co_await moirai::submit_to(1, [&]() { return echo_server(listener, 1, endings); });
    });
    FramedOptions fo;
    fo.max_payload = 1024;
    fo.recv = receive;
    FramedStream client(co_await StreamSocket::connect(at), EndpointId{0, 0, 3}, fo);
    for (int i = 0; i < 200; ++i) {
      co_await client.send(static_cast<std::uint16_t>(i), bytes_of("message " + std::to_string(i)));
      Frame f = co_await client.recv();
      got.push_back(std::to_string(f.header.type) + ":" + text_of(f.payload));
      senders.push_back(f.header.sender);
    }
    multishot = client.multishot();
    co_await client.close();
    co_await server.join();
  });
  EXPECT_EQ(multishot, !receive.force_fallback) << "Linux 6.0 and later receive with one multishot recv";
  ASSERT_EQ(got.size(), 200u);
  for (int i = 0; i < 200; ++i)
    EXPECT_EQ(got[static_cast<std::size_t>(i)], std::to_string(i) + ":message " + std::to_string(i));
  EXPECT_EQ(senders.front(), (EndpointId{0, 1, 9}));
  ASSERT_EQ(endings.size(), 1u);
  EXPECT_EQ(endings[0], TransportErrc::closed);  // the client closed cleanly between frames
}

TEST(Tcp, FramesEchoInOrderWithTheirSender) {
  frames_echo_in_order(moirai::IdleStrategy::spin_then_sleep);
}

// Shards that wait busy-polling in the kernel: the receive's completion is run inside the wait it ends.
TEST(Tcp, FramesEchoInOrderBetweenShardsThatBusyPoll) {
  frames_echo_in_order(moirai::IdleStrategy::busy_poll);
}

// A stream kept past its runtime (declared before it) is destroyed after the shard's ring: its armed receive
// must then leave the ring alone (AddressSanitizer finds the use after free this once was).
TEST(Tcp, AFramedStreamThatOutlivesItsRuntimeIsDestroyedWithoutItsRing) {
  std::optional<FramedStream> kept;
  std::vector<TransportErrc> endings;
  std::string got;
  {
    moirai::Runtime rt(two_shards());
    StreamListener listener = StreamListener::bind(SocketAddress::parse("127.0.0.1:0"));
    const SocketAddress at = listener.local_address();
    rt.run([&]() -> Task<void> {
      auto server = moirai::spawn([&]() -> Task<void> {
        co_await moirai::submit_to(1, [&]() { return echo_server(listener, 1, endings); });
      });
      kept.emplace(co_await StreamSocket::connect(at), EndpointId{0, 0, 3}, 1024);
      co_await kept->send(1, bytes_of("kept"));
      got = text_of((co_await kept->recv()).payload);  // the receive is armed from here on
      ::shutdown(kept->stream().fd(), SHUT_WR);  // the server sees the end and closes; `kept` stays open
      co_await server.join();
    });
  }
  EXPECT_EQ(got, "kept");
  EXPECT_TRUE(kept->multishot());
  kept.reset();  // after the runtime: nothing to cancel, and the ring is not touched
}

// Where the kernel lacks multishot receive: one-shot receives into the same ring's buffers.
TEST(Tcp, FramesEchoInOrderOnTheOneShotReceiveFallback) {
  RecvOptions receive = FramedOptions{}.recv;
  receive.force_fallback = true;
  frames_echo_in_order(moirai::IdleStrategy::spin_then_sleep, receive);
}

TEST(UnixSocket, FramesEchoOverAUnixStreamSocket) {
  moirai::Runtime rt(two_shards());
  const std::string path = "/tmp/moirai-test-" + std::to_string(getpid()) + ".sock";
  std::vector<TransportErrc> endings;
  std::string got;
  {
    StreamListener listener = StreamListener::bind(SocketAddress::parse("unix:" + path));
    rt.run([&]() -> Task<void> {
      auto server = moirai::spawn([&]() -> Task<void> {
        co_await moirai::submit_to(1, [&]() { return echo_server(listener, 1, endings); });
      });
      FramedStream client(co_await StreamSocket::connect(SocketAddress::parse("unix:" + path)), EndpointId{},
                          1024);
      co_await client.send(3, bytes_of("over unix"));
      got = text_of((co_await client.recv()).payload);
      co_await client.close();
      co_await server.join();
    });
  }
  EXPECT_EQ(got, "over unix");
  ASSERT_EQ(endings.size(), 1u);
  EXPECT_EQ(endings[0], TransportErrc::closed);
  EXPECT_NE(access(path.c_str(), F_OK), 0);  // the listener removed its path
}

TEST(Tcp, AConnectionNobodyAcceptsIsRefusedAfterItsRetries) {
  moirai::RuntimeOptions o = two_shards();
  o.cpus = {0};
  moirai::Runtime rt(o);
  SocketAddress at = SocketAddress::parse("127.0.0.1:0");
  {
    StreamListener l = StreamListener::bind(at);
    at = l.local_address();  // a port that was free; closed again below, so nobody listens there
  }
  TransportErrc seen{};
  std::string what;
  rt.run([&]() -> Task<void> {
    try {
      co_await StreamSocket::connect(at, 1s, RetryPolicy{3, 1ms, 4ms});
    } catch (const TransportError& e) {
      seen = e.errc();
      what = e.what();
    }
  });
  EXPECT_EQ(seen, TransportErrc::connection_refused);
  EXPECT_NE(what.find("3 attempts"), std::string::npos) << what;
}

int int_option(int fd, int level, int name) {
  int v = -1;
  socklen_t len = sizeof v;
  EXPECT_EQ(getsockopt(fd, level, name, &v, &len), 0) << std::strerror(errno);
  return v;
}

// The liveness options reach the kernel as asked (read back from it), refuse values the kernel would
// refuse or clamp, and refuse a Unix socket, which has no acknowledgements to time. What they do to a cut
// link is in two_host_test.cpp, where a link can be cut.
TEST(Tcp, UserTimeoutAndKeepaliveReachTheSocketAndBadValuesAreRefused) {
  moirai::RuntimeOptions o = two_shards();
  o.cpus = {0};
  moirai::Runtime rt(o);
  StreamListener listener = StreamListener::bind(SocketAddress::parse("127.0.0.1:0"));
  const std::string path = "/tmp/moirai-test-liveness-" + std::to_string(getpid()) + ".sock";
  StreamListener unix_listener = StreamListener::bind(SocketAddress::parse("unix:" + path));
  long long user_ms = -1, after_reset_ms = -1;
  int keepalive = -1, idle = -1, interval = -1, probes = -1;
  std::vector<std::string> invalid;
  TransportErrc unix_code{};
  std::string unix_what;
  rt.run([&]() -> Task<void> {
    StreamSocket s = co_await StreamSocket::connect(listener.local_address());
    s.set_user_timeout(250ms);
    user_ms = s.user_timeout().count();
    s.set_keepalive(2s, 3s, 4);
    keepalive = int_option(s.fd(), SOL_SOCKET, SO_KEEPALIVE);
    idle = int_option(s.fd(), IPPROTO_TCP, TCP_KEEPIDLE);
    interval = int_option(s.fd(), IPPROTO_TCP, TCP_KEEPINTVL);
    probes = int_option(s.fd(), IPPROTO_TCP, TCP_KEEPCNT);
    s.set_user_timeout(0ms);
    after_reset_ms = s.user_timeout().count();
    const auto refused = [&](auto&& f) {
      try {
        f();
      } catch (const moirai::Error& e) {
        EXPECT_EQ(e.code(), std::errc::invalid_argument) << e.what();
        invalid.emplace_back(e.what());
      }
    };
    refused([&] { s.set_user_timeout(-1ms); });
    refused([&] { s.set_keepalive(0s, 1s, 1); });
    refused([&] { s.set_keepalive(1s, 40000s, 1); });
    refused([&] { s.set_keepalive(1s, 1s, 128); });
    StreamSocket u = co_await StreamSocket::connect(SocketAddress::parse("unix:" + path));
    try {
      u.set_user_timeout(100ms);
    } catch (const TransportError& e) {
      unix_code = e.errc();
      unix_what = e.what();
    }
  });
  EXPECT_EQ(user_ms, 250);
  EXPECT_EQ(after_reset_ms, 0);
  EXPECT_EQ(keepalive, 1);
  EXPECT_EQ(idle, 2);
  EXPECT_EQ(interval, 3);
  EXPECT_EQ(probes, 4);
  ASSERT_EQ(invalid.size(), 4u);
  EXPECT_NE(invalid[0].find("-1 ms"), std::string::npos) << invalid[0];
  EXPECT_NE(invalid[1].find("1 to 32767 s"), std::string::npos) << invalid[1];
  EXPECT_NE(invalid[3].find("probes 128"), std::string::npos) << invalid[3];
  EXPECT_EQ(unix_code, TransportErrc::not_supported);
  EXPECT_NE(unix_what.find("not TCP"), std::string::npos) << unix_what;
}

// A peer that sends a header announcing more than the maximum, or bytes that are not a header, loses its
// connection with that reason; the listener serves the next connection normally.
TEST(Tcp, BadFramesCloseThatConnectionOnly) {
  moirai::Runtime rt(two_shards());
  StreamListener listener = StreamListener::bind(SocketAddress::parse("127.0.0.1:0"));
  const SocketAddress at = listener.local_address();
  std::vector<TransportErrc> endings;
  std::string good;
  rt.run([&]() -> Task<void> {
    auto server = moirai::spawn([&]() -> Task<void> {
      co_await moirai::submit_to(1, [&]() { return echo_server(listener, 4, endings); });
    });
    {  // 1: a frame over the server's 1024-byte maximum
      StreamSocket raw = co_await StreamSocket::connect(at);
      std::array<std::byte, kFrameHeaderSize> h{};
      write_frame_header(FrameHeader{4096, 1, {}}, h);
      co_await raw.send_all(h);
      std::byte b[16];
      (void)co_await raw.recv_some(b);  // the server closes: end of stream
    }
    {  // 2: random bytes
      StreamSocket raw = co_await StreamSocket::connect(at);
      const std::string junk = "GET / HTTP/1.1\r\n\r\n";
      co_await raw.send_all(bytes_of(junk));
      std::byte b[16];
      (void)co_await raw.recv_some(b);
    }
    {  // 3: half a frame, then the peer goes away
      StreamSocket raw = co_await StreamSocket::connect(at);
      std::array<std::byte, kFrameHeaderSize> h{};
      write_frame_header(FrameHeader{100, 1, {}}, h);
      co_await raw.send_all(h);
      co_await raw.send_all(bytes_of("only part"));
      co_await raw.close();
    }
    {  // 4: a good client is still served
      FramedStream client(co_await StreamSocket::connect(at), EndpointId{0, 0, 1}, 1024);
      co_await client.send(7, bytes_of("still here"));
      good = text_of((co_await client.recv()).payload);
      co_await client.close();
    }
    co_await server.join();
  });
  ASSERT_EQ(endings.size(), 4u);
  EXPECT_EQ(endings[0], TransportErrc::message_too_large);
  EXPECT_EQ(endings[1], TransportErrc::malformed);
  EXPECT_EQ(endings[2], TransportErrc::connection_reset);
  EXPECT_EQ(endings[3], TransportErrc::closed);
  EXPECT_EQ(good, "still here");
}

TEST(Tcp, APayloadOverTheMaximumIsNotSent) {
  moirai::Runtime rt(two_shards());
  StreamListener listener = StreamListener::bind(SocketAddress::parse("127.0.0.1:0"));
  const SocketAddress at = listener.local_address();
  TransportErrc seen{};
  rt.run([&]() -> Task<void> {
    auto server = moirai::spawn([&]() -> Task<void> {
      co_await moirai::submit_to(1, [&]() -> Task<void> {
        StreamSocket s = co_await listener.accept();
        std::byte b[64];
        while (co_await s.recv_some(b) != 0) {
        }
      });
    });
    FramedStream client(co_await StreamSocket::connect(at), EndpointId{}, 16);
    try {
      co_await client.send(1, bytes_of(std::string(17, 'x')));
    } catch (const TransportError& e) {
      seen = e.errc();
    }
    co_await client.close();
    co_await server.join();
  });
  EXPECT_EQ(seen, TransportErrc::message_too_large);
}

TEST(SocketAddress, ParsesTheDocumentedFormsAndNamesWhatIsWrong) {
  EXPECT_EQ(SocketAddress::parse("127.0.0.1:9000").to_string(), "127.0.0.1:9000");
  EXPECT_EQ(SocketAddress::parse("localhost:80").to_string(), "127.0.0.1:80");
  EXPECT_EQ(SocketAddress::parse("[::1]:443").to_string(), "[::1]:443");
  EXPECT_EQ(SocketAddress::parse("unix:/tmp/x.sock").to_string(), "unix:/tmp/x.sock");
  // A port alone, or no host, is loopback; every interface only when written out.
  EXPECT_EQ(SocketAddress::parse("9000").to_string(), "127.0.0.1:9000");
  EXPECT_EQ(SocketAddress::parse(":9000").to_string(), "127.0.0.1:9000");
  EXPECT_EQ(SocketAddress::parse("0.0.0.0:9000").to_string(), "0.0.0.0:9000");
  EXPECT_EQ(SocketAddress::parse("[::]:9000").to_string(), "[::]:9000");
  for (const char* bad : {"127.0.0.1", "", ":", "90000", "127.0.0.1:70000", "example.com:80", "[::1:80",
                          "unix:", "1.2.3.4:x"}) {
    try {
      SocketAddress::parse(bad);
      ADD_FAILURE() << bad;
    } catch (const TransportError& e) {
      EXPECT_EQ(e.errc(), TransportErrc::malformed);
      EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
    }
  }
}

// Found by tests/fuzz/options_fuzz.cpp: the path was cut at the NUL, so the address named another socket.
TEST(SocketAddress, RefusesAUnixPathHoldingANul) {
  using namespace std::string_view_literals;
  for (const std::string_view text : {"unix:/tmp/a\0b"sv, "unix:\0abstract"sv}) {
    try {
      SocketAddress::parse(text);
      ADD_FAILURE() << "accepted a NUL in the path";
    } catch (const TransportError& e) {
      EXPECT_EQ(e.errc(), TransportErrc::malformed);
      EXPECT_NE(std::string(e.what()).find("NUL"), std::string::npos) << e.what();
    }
  }
}

// Every listener given only a port listens on loopback: read back from the kernel (getsockname).
TEST(SocketAddress, APortAloneListensOnLoopbackOnly) {
  moirai::Runtime rt(moirai_test::one_shard());  // a datagram socket takes its shard's buffer ring
  rt.run([]() -> moirai::Task<void> {
    for (const char* text : {"0", ":0"}) {
      StreamListener l = StreamListener::bind(SocketAddress::parse(text));
      const SocketAddress bound = SocketAddress::of_socket(l.fd());
      EXPECT_EQ(bound.to_string(), "127.0.0.1:" + std::to_string(bound.port())) << text;
      DatagramSocket d = DatagramSocket::bind(SocketAddress::parse(text));
      const SocketAddress dbound = d.local_address();
      EXPECT_EQ(dbound.to_string(), "127.0.0.1:" + std::to_string(dbound.port())) << text;
    }
    StreamListener any = StreamListener::bind(SocketAddress::parse("0.0.0.0:0"));
    EXPECT_EQ(SocketAddress::of_socket(any.fd()).to_string().rfind("0.0.0.0:", 0), 0u);
    co_return;
  });
}

// Several tasks send_all() on one raw socket at once, each block (256 KiB) more than the kernel takes in one
// send, so each waits in the ring for room: the sends take turns, and the peer reads every block whole, each
// task's in its order. Before the turns, the rest of one block went out after another task's send had begun.
TEST(Tcp, SeveralTasksSendingOnOneSocketEachBlockArrivesWhole) {
  constexpr int kTasks = 4;
  constexpr int kBlocks = 10;
  constexpr std::size_t kBlock = 256 * 1024;
  // Block i of task t: t, i, then bytes that depend on both and on the place.
  const auto block_of = [](int t, int i) {
    std::vector<std::byte> b(kBlock);
    b[0] = static_cast<std::byte>(t);
    b[1] = static_cast<std::byte>(i);
    for (std::size_t k = 2; k < kBlock; ++k)
      b[k] = static_cast<std::byte>((static_cast<std::size_t>(t) * 31 + static_cast<std::size_t>(i) * 7 + k) %
                                    251);
    return b;
  };
  int intact = 0;
  std::vector<int> next(kTasks, 0);
  std::string fault;
  moirai::Runtime rt(moirai_test::one_shard());
  StreamListener l = StreamListener::bind(SocketAddress::parse("127.0.0.1:0"));
  rt.run([&]() -> Task<void> {
    moirai_test::StreamPair p = co_await moirai_test::connected_pair(l);
    auto reader = moirai::spawn([&]() -> Task<void> {
      std::vector<std::byte> got(kBlock);
      for (int n = 0; n < kTasks * kBlocks; ++n) {
        std::size_t have = 0;
        while (have < kBlock) {
          const std::size_t r = co_await p.b.recv_some(std::span(got).subspan(have), 5s);
          if (r == 0) co_return;
          have += r;
        }
        const int t = static_cast<int>(got[0]);
        if (t >= kTasks) {
          fault = "a block that starts with task " + std::to_string(t);
          ::shutdown(p.b.fd(), SHUT_RDWR);  // the senders' next sends fail at once
          co_return;
        }
        const int i = next[static_cast<std::size_t>(t)]++;
        if (got == block_of(t, i)) ++intact;
      }
    });
    std::vector<moirai::TaskHandle<void>> senders;
    for (int t = 0; t < kTasks; ++t) {
      senders.push_back(moirai::spawn([&, t]() -> Task<void> {
        try {
          for (int i = 0; i < kBlocks; ++i) {
            const std::vector<std::byte> b = block_of(t, i);
            co_await p.a.send_all(b);
          }
        } catch (const TransportError& e) {
          fault += std::string(" / a send failed: ") + e.what();
        }
      }));
    }
    for (auto& h : senders)
      co_await h.join();
    co_await reader.join();
  });
  EXPECT_EQ(fault, "");
  EXPECT_EQ(intact, kTasks * kBlocks) << "blocks whose bytes were interleaved with another send's";
  EXPECT_EQ(next, std::vector<int>(kTasks, kBlocks));
}

// close() while a send waits in the ring for room: the send goes out whole first, then the sending side
// shuts, so the peer reads every byte and then the end of the stream. (Before, close() shut the socket under
// the waiting send, which failed with a broken pipe and lost the rest.)
TEST(Tcp, CloseWhileASendWaitsForRoomLetsItFinishFirst) {
  const std::size_t kBytes = std::size_t{32} << 20;  // more than loopback's buffers hold, so the send waits
  std::size_t received = 0;
  bool ended = false;
  std::string send_error;
  moirai::Runtime rt(moirai_test::one_shard());
  StreamListener l = StreamListener::bind(SocketAddress::parse("127.0.0.1:0"));
  rt.run([&]() -> Task<void> {
    moirai_test::StreamPair p = co_await moirai_test::connected_pair(l);
    const std::vector<std::byte> data(kBytes, std::byte{7});
    auto sending = moirai::spawn([&]() -> Task<void> {
      try {
        co_await p.a.send_all(data);
      } catch (const TransportError& e) {
        send_error = e.what();
      }
    });
    co_await moirai::yield();  // the send takes what fits, then waits for room
    auto closing = moirai::spawn(p.a.close());
    co_await moirai::yield();
    std::vector<std::byte> buf(64 * 1024);
    for (;;) {
      const std::size_t r = co_await p.b.recv_some(buf, 5s);
      if (r == 0) break;
      received += r;
    }
    ended = true;
    co_await sending.join();
    co_await closing.join();
  });
  EXPECT_EQ(send_error, "");
  EXPECT_EQ(received, kBytes);
  EXPECT_TRUE(ended);
}

// SO_REUSEPORT: a listener on each shard binds one port, and connections spread across them, each accepted
// on the shard whose listener the kernel picked; a listener without the option is refused the port.
TEST(StreamListener, ReusePortListenersOnEveryShardShareOnePort) {
  moirai::Runtime rt(two_shards());
  ListenOptions reuse;
  reuse.reuse_port = true;
  constexpr int kConnections = 64;
  std::array<std::atomic<int>, 2> accepted{};
  std::array<std::atomic<bool>, 2> ended{};
  std::string refused;
  // Accepts until kConnections were accepted across both listeners.
  auto accept_loop = [&](StreamListener& l, unsigned me) -> Task<void> {
    std::vector<StreamSocket> kept;
    while (accepted[0].load() + accepted[1].load() < kConnections) {
      kept.push_back(co_await l.accept());
      ++accepted[me];
    }
    ended[me] = true;
  };
  rt.run([&]() -> Task<void> {
    StreamListener first = StreamListener::bind(SocketAddress::parse("127.0.0.1:0"), reuse);
    const SocketAddress at = first.local_address();
    try {
      StreamListener::bind(at);
    } catch (const TransportError& e) {
      refused = e.what();
    }
    std::atomic<bool> bound{false};
    auto other = moirai::spawn([&]() -> Task<void> {
      co_await moirai::submit_to(1, [&]() -> Task<void> {
        StreamListener second = StreamListener::bind(at, reuse);
        bound = true;
        co_await accept_loop(second, 1);
      });
    });
    auto here = moirai::spawn([&]() -> Task<void> { co_await accept_loop(first, 0); });
    while (!bound)
      co_await moirai::sleep_for(1ms);
    std::vector<StreamSocket> clients;
    for (int i = 0; i < kConnections; ++i)
      clients.push_back(co_await StreamSocket::connect(at));
    // The listener that did not take the last one waits in accept: more connections until it has one
    // (those the other listener's backlog takes are never accepted, which is fine).
    const std::int64_t give_up = moirai::deadline_after(10s);
    while (!(ended[0] && ended[1]) && moirai::monotonic_ns() < give_up) {
      if (accepted[0] + accepted[1] >= kConnections) clients.push_back(co_await StreamSocket::connect(at));
      co_await moirai::sleep_for(1ms);
    }
    co_await here.join();
    co_await other.join();
  });
  EXPECT_NE(refused.find("in use"), std::string::npos) << refused;
  EXPECT_GE(accepted[0] + accepted[1], kConnections);
  EXPECT_GT(accepted[0], 0) << "the kernel gave every connection to shard 1";
  EXPECT_GT(accepted[1], 0) << "the kernel gave every connection to shard 0";
}

}  // namespace
