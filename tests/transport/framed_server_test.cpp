// The framed server where bad input meets it: oversized frames, random bytes, a truncated header, a sender id
// that lies, a peer that connects and sends nothing, a peer killed mid-frame, a handler that throws, more
// connections than allowed. Each closes that connection only, counted by its reason; a well-behaved client
// connected throughout is served before, between and after; frames that arrived before a fault are handled.
// And thousands of connections opened and closed leave no fd and no memory behind.
#include "moirai/transport/framed_server.hpp"

#include <gtest/gtest.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "../core/core_test_support.hpp"
#include "moirai/core/runtime.hpp"
#include "moirai/core/spawn.hpp"
#include "moirai/core/submit.hpp"
#include "moirai/core/timer.hpp"
#include "transport_test_support.hpp"

namespace {

using moirai::Task;
using moirai_test::two_shards;
using namespace moirai::transport;
using namespace std::chrono_literals;

using moirai_test::bytes_of;
using moirai_test::text_of;

using moirai_test::frame_bytes;

// Echoes every frame; a frame of type 99 makes the handler throw.
struct Echo {
  std::vector<std::string>* seen;
  Task<void> operator()(FramedStream& c, const Frame& f) {
    if (f.header.type == 99) throw std::runtime_error("the handler refuses type 99");
    seen->push_back(text_of(f.payload));
    co_await c.queue(f.header.type, f.payload);  // the server flushes once no request is left to answer
  }
};

ServerOptions quiet_options() {
  ServerOptions o;
  o.self = EndpointId{7, 1, 0};
  o.framing.max_payload = 1024;
  o.first_frame_timeout = 200ms;
  o.log_faults = false;
  return o;
}

// Runs a server on shard 1 and `client` on shard 0; stops the server when the client is done.
template <class Client>
ServerStats run_server(ServerOptions options, std::vector<std::string>& seen, Client client) {
  moirai::Runtime rt(two_shards());
  FramedServer server(StreamListener::bind(SocketAddress::parse("127.0.0.1:0")), std::move(options));
  const SocketAddress at = server.local_address();
  ServerStats stats;
  rt.run([&]() -> Task<void> {
    auto serving = moirai::spawn(
        [&]() -> Task<void> { co_await moirai::submit_to(1, [&]() { return server.serve(Echo{&seen}); }); });
    co_await client(at, server);
    co_await moirai::submit_to(1, [&] {
      server.stop();
      return 0;
    });
    co_await serving.join();
    stats = co_await moirai::submit_to(1, [&] { return server.stats(); });
  });
  return stats;
}

// Waits until the server on shard 1 has seen every connection end.
Task<void> until_idle(FramedServer& server) {
  while (co_await moirai::submit_to(1, [&] { return server.stats().active; }) != 0)
    co_await moirai::sleep_for(1ms);
}

Task<std::string> round_trip(FramedStream& s, const std::string& text) {
  co_await s.send(1, bytes_of(text));
  co_return text_of((co_await s.recv(2s)).payload);
}

// Sends raw bytes and waits until the server drops the connection; returns how many frames came back first.
Task<int> send_raw_until_closed(const SocketAddress& at, std::vector<std::byte> bytes) {
  StreamSocket raw = co_await StreamSocket::connect(at);
  if (!bytes.empty()) co_await raw.send_all(bytes);
  FramedStream s(std::move(raw), EndpointId{}, 1024);
  int frames = 0;
  try {
    for (;;) {
      (void)co_await s.recv(5s);
      ++frames;
    }
  } catch (const TransportError&) {
  }
  co_return frames;
}

TEST(FramedServer, EachKindOfBadInputClosesOnlyItsConnectionWithItsReason) {
  std::vector<std::string> seen;
  std::vector<std::string> good;
  std::vector<int> frames_before_close;
  const ServerStats st =
      run_server(quiet_options(), seen, [&](SocketAddress at, FramedServer&) -> Task<void> {
        FramedStream ok(co_await StreamSocket::connect(at), EndpointId{5, 0, 1}, 1024);
        good.push_back(co_await round_trip(ok, "before"));
        // Over the maximum, from its header alone.
        frames_before_close.push_back(co_await send_raw_until_closed(at, frame_bytes(4096, 1, {}, "")));
        good.push_back(co_await round_trip(ok, "after too large"));
        // Random bytes.
        std::vector<std::byte> junk;
        for (char c : std::string("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
          junk.push_back(static_cast<std::byte>(c));
        frames_before_close.push_back(co_await send_raw_until_closed(at, junk));
        // Two good frames from node 3, then one claiming node 4: the two are answered, then the lie closes
        // it.
        std::vector<std::byte> lie = frame_bytes(3, 1, EndpointId{3, 0, 0}, "one");
        for (auto part :
             {frame_bytes(3, 1, EndpointId{3, 1, 0}, "two"), frame_bytes(3, 1, EndpointId{4, 0, 0}, "lie")})
          lie.insert(lie.end(), part.begin(), part.end());
        frames_before_close.push_back(co_await send_raw_until_closed(at, lie));
        // Connects and sends nothing: closed at the first-frame timeout.
        frames_before_close.push_back(co_await send_raw_until_closed(at, {}));
        // Half a header, then nothing more: the same timeout.
        std::vector<std::byte> half = frame_bytes(8, 1, {}, "");
        half.resize(7);
        frames_before_close.push_back(co_await send_raw_until_closed(at, half));
        // A handler that throws.
        frames_before_close.push_back(co_await send_raw_until_closed(at, frame_bytes(1, 99, {}, "x")));
        good.push_back(co_await round_trip(ok, "after all of it"));
        co_await ok.close();
      });
  EXPECT_EQ(good, (std::vector<std::string>{"before", "after too large", "after all of it"}));
  EXPECT_EQ(frames_before_close, (std::vector<int>{0, 0, 2, 0, 0, 0}));
  EXPECT_EQ(st.closed_for(CloseReason::too_large), 1u);
  EXPECT_EQ(st.closed_for(CloseReason::malformed), 2u);  // the random bytes and the lie
  EXPECT_EQ(st.closed_for(CloseReason::timed_out), 2u);
  EXPECT_EQ(st.closed_for(CloseReason::handler_failed), 1u);
  EXPECT_EQ(st.accepted, 7u);
  EXPECT_EQ(st.active, 0u);
  // The frames that came before the lie were handled: nothing accepted is lost.
  EXPECT_NE(std::find(seen.begin(), seen.end(), "two"), seen.end());
}

// A child process connects, sends a header and half its payload, and is killed: the server counts a reset,
// and the client connected beside it is still served.
TEST(FramedServer, APeerKilledMidFrameIsAResetAndTheOthersGoOn) {
  std::vector<std::string> seen;
  std::vector<std::string> good;
  const ServerStats st =
      run_server(quiet_options(), seen, [&](SocketAddress at, FramedServer&) -> Task<void> {
        FramedStream ok(co_await StreamSocket::connect(at), EndpointId{5, 0, 1}, 1024);
        good.push_back(co_await round_trip(ok, "before"));
        const pid_t child = fork();
        if (child == 0) {  // only async-signal-safe calls from here: the parent has threads
          const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
          if (fd < 0 || ::connect(fd, at.data(), at.size()) != 0) _exit(1);
          std::array<std::byte, 16 + 50> part{};
          write_frame_header(FrameHeader{100, 1, {}},
                             std::span<std::byte, kFrameHeaderSize>(part.data(), 16));
          if (::write(fd, part.data(), part.size()) != static_cast<ssize_t>(part.size())) _exit(1);
          ::kill(::getpid(), SIGKILL);
          _exit(1);
        }
        int status = 0;
        while (::waitpid(child, &status, WNOHANG) == 0)
          co_await moirai::sleep_for(1ms);
        EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "the child died before its frame";
        good.push_back(co_await round_trip(ok, "after"));
        co_await ok.close();
      });
  EXPECT_EQ(good, (std::vector<std::string>{"before", "after"}));
  EXPECT_EQ(st.closed_for(CloseReason::reset), 1u);
  EXPECT_EQ(st.accepted, 2u);
}

TEST(FramedServer, ConnectionsOverTheLimitAreClosedAtOnce) {
  std::vector<std::string> seen;
  ServerOptions o = quiet_options();
  o.max_connections = 2;
  std::vector<std::string> answers;
  int third_frames = -1;
  const ServerStats st = run_server(o, seen, [&](SocketAddress at, FramedServer& server) -> Task<void> {
    FramedStream a(co_await StreamSocket::connect(at), EndpointId{1, 0, 0}, 1024);
    FramedStream b(co_await StreamSocket::connect(at), EndpointId{2, 0, 0}, 1024);
    answers.push_back(co_await round_trip(a, "a"));
    answers.push_back(co_await round_trip(b, "b"));
    third_frames = co_await send_raw_until_closed(at, frame_bytes(1, 1, {}, "c"));
    answers.push_back(co_await round_trip(a, "a again"));
    co_await a.close();
    co_await b.close();
    co_await until_idle(server);
  });
  EXPECT_EQ(answers, (std::vector<std::string>{"a", "b", "a again"}));
  EXPECT_EQ(third_frames, 0);
  EXPECT_EQ(st.closed_for(CloseReason::over_limit), 1u);
  EXPECT_EQ(st.closed_for(CloseReason::peer_closed), 2u);
}

TEST(FramedServer, StopClosesOpenConnectionsAndServeReturns) {
  std::vector<std::string> seen;
  TransportErrc client_saw{};
  const ServerStats st =
      run_server(quiet_options(), seen, [&](SocketAddress at, FramedServer& server) -> Task<void> {
        FramedStream a(co_await StreamSocket::connect(at), EndpointId{1, 0, 0}, 1024);
        (void)co_await round_trip(a, "hello");
        co_await moirai::submit_to(1, [&] {
          server.stop();
          return 0;
        });
        try {
          (void)co_await a.recv(5s);
        } catch (const TransportError& e) {
          client_saw = e.errc();
        }
      });
  EXPECT_EQ(client_saw, TransportErrc::closed);
  EXPECT_EQ(st.closed_for(CloseReason::server_stopped), 1u);
  EXPECT_EQ(st.active, 0u);
}

std::size_t open_fds() {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/fd"))
    ++n;
  return n;
}

// Rounds of 250 connections open at once, each answered once and closed: after the first round (which warms
// pools and buffers), fds and heap in use come back to where they were.
TEST(FramedServer, ThousandsOfConnectionsLeaveNoFdOrMemoryBehind) {
  constexpr int kRounds = 8;
  constexpr int kPerRound = 250;
  std::vector<std::string> seen;
  seen.reserve(kRounds * kPerRound);
  std::vector<std::size_t> fds_after;
  std::vector<std::size_t> heap_after;
  int answered = 0;
  // Each round opens every connection before the first frame goes out, and answers them one by one: on a busy
  // host the last waits far longer than quiet_options()' 200 ms for its first frame, and was closed for it.
  ServerOptions options = quiet_options();
  options.first_frame_timeout = 60s;
  const ServerStats st = run_server(options, seen, [&](SocketAddress at, FramedServer& server) -> Task<void> {
    for (int r = 0; r < kRounds; ++r) {
      std::vector<FramedStream> conns;
      conns.reserve(kPerRound);
      for (int i = 0; i < kPerRound; ++i)
        conns.emplace_back(co_await StreamSocket::connect(at),
                           EndpointId{static_cast<std::uint32_t>(i), 0, 0}, 64);
      for (auto& c : conns)
        answered += (co_await round_trip(c, "x")) == "x";
      for (auto& c : conns)
        co_await c.close();
      conns.clear();
      co_await until_idle(server);
      fds_after.push_back(open_fds());
      heap_after.push_back(mallinfo2().uordblks);
    }
  });
  EXPECT_EQ(answered, kRounds * kPerRound);
  EXPECT_EQ(st.accepted, static_cast<std::uint64_t>(kRounds * kPerRound));
  EXPECT_EQ(st.closed_for(CloseReason::peer_closed), static_cast<std::uint64_t>(kRounds * kPerRound));
  for (int r = 1; r < kRounds; ++r) {
    EXPECT_EQ(fds_after[r], fds_after[0]) << "round " << r;
    // The `seen` vector was reserved; anything else that grew would be a leak per connection. Allow a page
    // of slack for the allocator's own bookkeeping.
    EXPECT_LE(heap_after[r], heap_after[0] + 4096) << "round " << r;
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------------
// Slow and hostile peers: trickled frames, many of them at once, a flood beside a ping-pong, a silent peer,
// and the TCP options that find a vanished one.

// Sends a header announcing `length` bytes and one byte of it, then a byte every 20 ms, until the server
// closes the connection (a send fails or end of stream); returns the bytes it managed to send. Gives up
// after 500 bytes (10 s), so a server that never closes fails the test instead of hanging it.
Task<int> dribble(SocketAddress at, std::uint32_t length) {
  StreamSocket raw = co_await StreamSocket::connect(at, 2s, RetryPolicy{5});
  int sent = 0;
  try {
    co_await raw.send_all(frame_bytes(length, 1, {}, "x"));
    for (; sent < 500; ++sent) {
      co_await moirai::sleep_for(20ms);
      std::array<std::byte, 16> sink{};
      try {
        if (co_await raw.recv_some(sink, 1ms) == 0) break;  // the server closed
      } catch (const TransportError& e) {
        if (e.errc() != TransportErrc::timeout) break;
      }
      co_await raw.send_all(std::span<const std::byte>(sink.data(), 1));
    }
  } catch (const TransportError&) {  // reset by the server
  }
  co_return sent;
}

TEST(SlowPeers, ManyTricklingPeersAreClosedAtTheFrameDeadlineWhileAGoodClientIsServed) {
  constexpr int kPeers = 150;
  std::vector<std::string> seen;
  ServerOptions o = quiet_options();
  o.first_frame_timeout = 30s;  // the trickle never stops, so only frame_complete_timeout can end it
  o.frame_complete_timeout = 300ms;
  std::vector<int> sent(kPeers, -1);
  int good_round_trips = 0;
  const ServerStats st = run_server(o, seen, [&](SocketAddress at, FramedServer& server) -> Task<void> {
    std::vector<moirai::TaskHandle<int>> peers;
    for (int i = 0; i < kPeers; ++i)
      peers.push_back(moirai::spawn(dribble(at, 1000)));
    FramedStream ok(co_await StreamSocket::connect(at), EndpointId{5, 0, 1}, 1024);
    for (int i = 0; i < kPeers; ++i) {
      if (co_await round_trip(ok, "ping " + std::to_string(i)) == "ping " + std::to_string(i))
        ++good_round_trips;
    }
    for (int i = 0; i < kPeers; ++i)
      sent[i] = co_await peers[i].join();
    good_round_trips += co_await round_trip(ok, "after") == "after";
    co_await ok.close();
    co_await until_idle(server);
  });
  EXPECT_EQ(good_round_trips, kPeers + 1);
  EXPECT_EQ(st.closed_for(CloseReason::timed_out), static_cast<std::uint64_t>(kPeers));
  for (int i = 0; i < kPeers; ++i)
    EXPECT_LT(sent[i], 500) << "peer " << i << " was never closed";
  EXPECT_LE(st.peak_buffered_bytes, static_cast<std::uint64_t>(kPeers) * 520);
  EXPECT_EQ(st.buffered_bytes, 0u);
}

// Holds a partial frame (a header announcing `length`, then `part` bytes of it) until the server closes it.
Task<void> hold_partial(SocketAddress at, std::uint32_t length, std::size_t part) {
  StreamSocket raw = co_await StreamSocket::connect(at, 2s, RetryPolicy{5});
  std::vector<std::byte> bytes = frame_bytes(length, 1, {}, std::string(part, 'p'));
  try {
    co_await raw.send_all(bytes);
    std::array<std::byte, 16> sink{};
    (void)co_await raw.recv_some(sink, 10s);
  } catch (const TransportError&) {
  }
}

TEST(SlowPeers, PartialFramesOverTheBudgetCloseTheConnectionHoldingTheMost) {
  constexpr int kPeers = 20;
  constexpr std::size_t kPart = 8000, kBudget = 64u << 10;
  std::vector<std::string> seen;
  ServerOptions o = quiet_options();
  o.framing.max_payload = 64u << 10;
  o.max_buffered_bytes = kBudget;
  std::vector<std::string> good;
  std::uint64_t over_budget = 0;
  const ServerStats st = run_server(o, seen, [&](SocketAddress at, FramedServer& server) -> Task<void> {
    FramedStream ok(co_await StreamSocket::connect(at), EndpointId{5, 0, 1}, 1024);
    good.push_back(co_await round_trip(ok, "before"));
    std::vector<moirai::TaskHandle<void>> peers;
    for (int i = 0; i < kPeers; ++i)
      peers.push_back(moirai::spawn(hold_partial(at, 60000, kPart)));
    // At most kBudget / (kPart + header) of them fit: the others must be closed, whatever the order.
    const std::uint64_t must_close = kPeers - kBudget / (kPart + kFrameHeaderSize);
    for (int i = 0; i < 5000 && over_budget < must_close; ++i) {
      good.push_back(co_await round_trip(ok, "during"));
      over_budget =
          co_await moirai::submit_to(1, [&] { return server.stats().closed_for(CloseReason::over_budget); });
    }
    good.push_back(co_await round_trip(ok, "after"));
    co_await ok.close();
    co_await moirai::submit_to(1, [&] {
      server.stop();
      return 0;
    });
    for (auto& p : peers)
      co_await p.join();
  });
  EXPECT_GE(over_budget, kPeers - kBudget / (kPart + kFrameHeaderSize));
  EXPECT_GE(st.closed_for(CloseReason::over_budget), over_budget);
  EXPECT_LE(st.peak_buffered_bytes, kBudget);
  EXPECT_GT(st.peak_buffered_bytes, kBudget / 2);  // the holders really were held
  ASSERT_GE(good.size(), 3u);
  EXPECT_EQ(good.front(), "before");
  EXPECT_EQ(good.back(), "after");
  for (std::size_t i = 1; i + 1 < good.size(); ++i)
    EXPECT_EQ(good[i], "during");
}

TEST(SlowPeers, AFloodingPeerDoesNotStarveAPingPongPeer) {
  constexpr int kRoundTrips = 300;
  std::vector<std::string> seen;
  ServerOptions o = quiet_options();
  o.frames_per_turn = 8;
  int completed = 0;
  std::uint64_t flooded = 0;
  (void)run_server(o, seen, [&](SocketAddress at, FramedServer&) -> Task<void> {
    bool done = false;
    FramedStream flood(co_await StreamSocket::connect(at), EndpointId{1, 0, 0}, 1024);
    // The flood sends bursts of 64 frames and drains whatever replies came, never waiting for them.
    auto flood_body = [&]() -> Task<void> {
      while (!done) {
        for (int i = 0; i < 64; ++i)
          co_await flood.queue(1, bytes_of("flood"));
        co_await flood.flush();
        flooded += 64;
        while (flood.has_buffered_frame())
          (void)co_await flood.recv();
        try {
          (void)co_await flood.recv(1ms);
        } catch (const TransportError&) {
        }
      }
    };
    auto flooding = moirai::spawn(flood_body());  // the lambda outlives its coroutine
    FramedStream pp(co_await StreamSocket::connect(at), EndpointId{2, 0, 0}, 1024);
    for (int i = 0; i < kRoundTrips; ++i)
      completed += co_await round_trip(pp, "pp") == "pp";
    done = true;
    co_await flooding.join();
    co_await pp.close();
    co_await flood.close();
  });
  EXPECT_EQ(completed, kRoundTrips);
  EXPECT_GT(flooded, 0u);
}

TEST(SlowPeers, AnIdlePeerIsClosedByFrameTimeoutWhenOneIsSet) {
  std::vector<std::string> seen;
  ServerOptions o = quiet_options();
  o.frame_timeout = 200ms;
  std::string answer;
  TransportErrc idle_saw{};
  const ServerStats st = run_server(o, seen, [&](SocketAddress at, FramedServer& server) -> Task<void> {
    FramedStream c(co_await StreamSocket::connect(at), EndpointId{1, 0, 0}, 1024);
    answer = co_await round_trip(c, "then silence");
    try {
      (void)co_await c.recv(10s);
    } catch (const TransportError& e) {
      idle_saw = e.errc();
    }
    co_await until_idle(server);
  });
  EXPECT_EQ(answer, "then silence");
  EXPECT_EQ(idle_saw, TransportErrc::closed);
  EXPECT_EQ(st.closed_for(CloseReason::timed_out), 1u);
}

int int_option(int fd, int level, int name) {
  int v = -1;
  socklen_t len = sizeof v;
  EXPECT_EQ(getsockopt(fd, level, name, &v, &len), 0);
  return v;
}

TEST(SlowPeers, LivenessOptionsAreSetOnConnectedAndAcceptedSockets) {
  moirai::Runtime rt(moirai_test::one_shard());
  rt.run([&]() -> Task<void> {
    StreamListener l = StreamListener::bind(SocketAddress::parse("127.0.0.1:0"));
    TcpLiveness live;
    live.keepalive_idle = 7s;
    live.keepalive_interval = 3s;
    live.keepalive_count = 2;
    live.user_timeout = 1234ms;
    auto accepting = moirai::spawn(l.accept());
    StreamSocket c = co_await StreamSocket::connect(l.local_address(), 1s, RetryPolicy{}, live);
    StreamSocket a = co_await accepting.join();
    for (int fd : {c.fd(), a.fd()}) {
      if (fd == a.fd()) a.set_liveness(live);
      EXPECT_EQ(int_option(fd, SOL_SOCKET, SO_KEEPALIVE), 1);
      EXPECT_EQ(int_option(fd, IPPROTO_TCP, TCP_KEEPIDLE), 7);
      EXPECT_EQ(int_option(fd, IPPROTO_TCP, TCP_KEEPINTVL), 3);
      EXPECT_EQ(int_option(fd, IPPROTO_TCP, TCP_KEEPCNT), 2);
      EXPECT_EQ(int_option(fd, IPPROTO_TCP, TCP_USER_TIMEOUT), 1234);
    }
    // The defaults: keepalive on, and TCP_USER_TIMEOUT as documented.
    StreamSocket d = co_await StreamSocket::connect(l.local_address());
    EXPECT_EQ(int_option(d.fd(), SOL_SOCKET, SO_KEEPALIVE), 1);
    EXPECT_EQ(int_option(d.fd(), IPPROTO_TCP, TCP_USER_TIMEOUT),
              static_cast<int>(TcpLiveness{}.user_timeout.count()));
    StreamSocket d_accepted = co_await l.accept();
  });
}

// A FramedStream over one end of a Unix socket pair; the test writes the other end by hand.
struct StreamPair {
  int peer = -1;
  int mine = -1;
  StreamPair() {
    int fds[2];
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
    mine = fds[0];
    peer = fds[1];
  }
  ~StreamPair() { ::close(peer); }
  void write(const std::vector<std::byte>& b) const {
    EXPECT_EQ(::write(peer, b.data(), b.size()), static_cast<ssize_t>(b.size()));
  }
};

TEST(SlowPeers, AHeaderAloneCostsNoBufferTheBytesThatComeDo) {
  moirai::Runtime rt(moirai_test::one_shard());
  rt.run([&]() -> Task<void> {
    StreamPair p;
    FramedStream s(StreamSocket(p.mine), EndpointId{}, 1u << 20);
    const std::size_t initial = s.receive_capacity();
    p.write(frame_bytes(1u << 20, 1, {}, "just a little"));
    EXPECT_THROW((void)co_await s.recv(50ms), TransportError);  // not whole: a timeout
    EXPECT_EQ(s.receive_capacity(), initial);
    EXPECT_LT(initial, 64u << 10);
    // The rest is more than a socket buffer holds: another thread writes it while the shard reads.
    std::thread rest([&p] { p.write(std::vector<std::byte>((1u << 20) - 13, std::byte{7})); });
    const Frame f = co_await s.recv(5s);
    rest.join();
    EXPECT_EQ(f.payload.size(), 1u << 20);
    EXPECT_EQ(s.receive_capacity(), (1u << 20) + kFrameHeaderSize);
    EXPECT_EQ(s.received_bytes(), 0u);
  });
}

TEST(SlowPeers, AFrameTrickledByteByByteEndsAtFrameCompleteTimeout) {
  moirai::Runtime rt(moirai_test::one_shard());
  std::string what;
  int trickled = 0;
  rt.run([&]() -> Task<void> {
    StreamPair p;
    FramedOptions fo;
    fo.frame_complete_timeout = 200ms;
    FramedStream s(StreamSocket(p.mine), EndpointId{}, fo);
    // A whole frame first: it is returned at once, and its deadline does not carry over.
    p.write(frame_bytes(2, 1, {}, "ok"));
    EXPECT_EQ(text_of((co_await s.recv(1s)).payload), "ok");
    p.write(frame_bytes(100, 1, {}, "a"));
    bool closed = false;
    auto trickle_body = [&]() -> Task<void> {
      while (!closed && trickled < 400) {  // a byte every 10 ms, for ever (4 s at most)
        co_await moirai::sleep_for(10ms);
        p.write(std::vector<std::byte>(1, std::byte{'a'}));
        ++trickled;
      }
    };
    auto trickle = moirai::spawn(trickle_body());  // the lambda outlives its coroutine
    try {
      (void)co_await s.recv();  // no idle timeout: only the frame's own deadline can end this
    } catch (const TransportError& e) {
      EXPECT_EQ(e.errc(), TransportErrc::timeout);
      what = e.what();
    }
    closed = true;
    co_await trickle.join();
  });
  EXPECT_NE(what.find("frame_complete_timeout"), std::string::npos) << what;
  EXPECT_LT(trickled, 99);  // ended before the frame could complete
}
