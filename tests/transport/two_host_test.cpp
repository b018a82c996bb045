// Two hosts on one machine: two network namespaces joined by a veth pair (tests/support/netns.hpp), a
// Runtime in each, so every byte crosses a real link between two network stacks. TCP framed echo, UDP
// unicast and multicast (a sender in A, receivers joined in B) across the link; then the link is cut and
// restored: a send into the cut link fails with the user timeout instead of sitting in the kernel, a connect
// from the side whose routes went is unreachable, and a client streaming sequence-numbered messages sees its
// connection fail, reconnects and resends what was not acknowledged, so that the server ends with every
// message exactly once and in order. The fixture removes its namespaces, and a dead process's. Skipped,
// saying why, where namespaces cannot be made.
#include <gtest/gtest.h>
#include <net/if.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <future>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "../support/netns.hpp"
#include "moirai/core/runtime.hpp"
#include "moirai/core/spawn.hpp"
#include "moirai/core/timer.hpp"
#include "moirai/transport/datagram_socket.hpp"
#include "moirai/transport/framed_stream.hpp"
#include "moirai/transport/stream_socket.hpp"
#include "transport_test_support.hpp"

namespace {

using moirai::Task;
using moirai_test::bytes_of;
using moirai_test::NetnsPair;
using moirai_test::text_of;
using namespace moirai::transport;
using moirai_test::one_shard_on;
using namespace std::chrono_literals;

constexpr std::uint32_t kNodeA = 1, kNodeB = 2;

std::array<std::byte, 8> encode(std::uint64_t v) {
  std::array<std::byte, 8> b;
  std::memcpy(b.data(), &v, sizeof v);
  return b;
}
std::uint64_t decode(std::span<const std::byte> b) {
  std::uint64_t v = ~0ull;
  if (b.size() == sizeof v) std::memcpy(&v, b.data(), sizeof v);
  return v;
}

// A namespace pair with a one-shard Runtime in each: host A on CPU 0, host B on CPU 1.
class TwoHosts : public ::testing::Test {
 protected:
  void SetUp() override {
    pair_ = std::make_unique<NetnsPair>();
    MOIRAI_SKIP_WITHOUT_NETNS(*pair_);
    a_ = moirai_test::start_runtime_in(pair_->a().ns, one_shard_on(0));
    b_ = moirai_test::start_runtime_in(pair_->b().ns, one_shard_on(1));
  }
  void TearDown() override {
    stop();
    pair_.reset();  // the namespaces go even when the test failed
  }
  // Cancels every task on both hosts and joins their shards. Call it before reading what tasks wrote.
  void stop() {
    if (a_) a_->stop();
    if (b_) b_->stop();
  }
  template <class F>
  auto on_a(F f) {
    return a_->submit(0, std::move(f));
  }
  template <class F>
  auto on_b(F f) {
    return b_->submit(0, std::move(f));
  }
  // The future's value; past `limit`, or when it holds an exception, both hosts are stopped first (so no
  // task outlives the test's locals), then the test fails with the reason.
  template <class T>
  T result(std::future<T>& f, std::chrono::seconds limit = 15s) {
    if (f.wait_for(limit) != std::future_status::ready) {
      stop();
      throw std::runtime_error("a task across the link did not finish within " +
                               std::to_string(limit.count()) + " s");
    }
    try {
      return f.get();
    } catch (...) {
      stop();
      throw;
    }
  }
  SocketAddress address_of(const NetnsPair::Side& s, unsigned short port) const {
    return SocketAddress::parse(s.address + ":" + std::to_string(port));
  }

  std::unique_ptr<NetnsPair> pair_;
  std::unique_ptr<moirai::Runtime> a_, b_;
};

// The fixture itself: each side sees its own end of the link and not the other's, and a child forked into
// B runs there.
TEST_F(TwoHosts, EachSideHasItsOwnEndOfTheLink) {
  const moirai_test::CommandResult in_a = pair_->ip(pair_->a(), {"-o", "addr", "show"});
  const moirai_test::CommandResult in_b = pair_->ip(pair_->b(), {"-o", "addr", "show"});
  EXPECT_NE(in_a.output.find(pair_->a().address + "/24"), std::string::npos) << in_a.output;
  EXPECT_EQ(in_a.output.find(pair_->b().address + "/"), std::string::npos) << in_a.output;
  EXPECT_NE(in_b.output.find(pair_->b().address + "/24"), std::string::npos) << in_b.output;
  const moirai_test::CommandResult routes = pair_->ip(pair_->b(), {"route", "show"});
  EXPECT_NE(routes.output.find("224.0.0.0/4 dev " + pair_->b().dev), std::string::npos) << routes.output;
}

TEST(TwoHostsFork, AForkedChildRunsInTheNamespaceAndIsReaped) {
  NetnsPair pair;
  MOIRAI_SKIP_WITHOUT_NETNS(pair);
  const std::string dev_b = pair.b().dev, dev_a = pair.a().dev;
  const moirai_test::CommandResult r = moirai_test::run_in_child(pair.b().ns, [&](std::string& report) {
    const bool sees_b = if_nametoindex(dev_b.c_str()) != 0;
    const bool sees_a = if_nametoindex(dev_a.c_str()) != 0;
    report = std::string("sees ") + dev_b + ": " + (sees_b ? "yes" : "no") + ", " + dev_a + ": " +
             (sees_a ? "yes" : "no");
    return sees_b && !sees_a ? 0 : 1;
  });
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  const moirai_test::CommandResult hung = moirai_test::run_in_child(
      pair.a().ns,
      [](std::string&) {
        ::pause();
        return 0;
      },
      200ms);
  EXPECT_TRUE(hung.timed_out);
  EXPECT_EQ(hung.exit_code, 128 + SIGKILL);  // killed at the timeout, and reaped
}

// A pair goes with its object; one left by a process that died (its pid runs no more) goes when the next
// pair is made, and a live process's pair is left alone.
TEST(TwoHostsCleanup, APairGoesWithItsObjectAndADeadProcesssLeftoversWithTheNext) {
  const pid_t dead = ::fork();
  if (dead == 0) ::_exit(0);
  ASSERT_GT(dead, 0);
  ASSERT_EQ(::waitpid(dead, nullptr, 0), dead);
  const std::string leftover = std::string(NetnsPair::kPrefix) + std::to_string(dead) + "-0-a";
  const auto exists = [](const std::string& ns) { return ::access(("/run/netns/" + ns).c_str(), F_OK) == 0; };
  std::string a, b;
  {
    NetnsPair probe;
    MOIRAI_SKIP_WITHOUT_NETNS(probe);
  }
  ASSERT_EQ(moirai_test::run_command({"ip", "netns", "add", leftover}).exit_code, 0);
  {
    NetnsPair pair;
    MOIRAI_SKIP_WITHOUT_NETNS(pair);
    a = pair.a().ns;
    b = pair.b().ns;
    EXPECT_TRUE(exists(a));
    EXPECT_TRUE(exists(b));
    EXPECT_FALSE(exists(leftover)) << leftover << " was left by a dead process and should be gone";
  }
  EXPECT_FALSE(exists(a));
  EXPECT_FALSE(exists(b));
  if (exists(leftover)) moirai_test::run_command({"ip", "netns", "del", leftover});
}

TEST_F(TwoHosts, TcpFramedEchoAcrossTheLink) {
  constexpr int kMessages = 2000;
  std::unique_ptr<StreamListener> listener;
  std::string peer_seen;
  auto bound = on_a([&]() -> Task<unsigned short> {
    listener = std::make_unique<StreamListener>(StreamListener::bind(address_of(pair_->a(), 0)));
    co_return listener->local_address().port();
  });
  const unsigned short port = result(bound);
  auto served = on_a([&]() -> Task<int> {
    FramedStream s(co_await listener->accept(), EndpointId{kNodeA, 0, 1});
    int frames = 0;
    try {
      for (;;) {
        Frame f = co_await s.recv(5s);
        std::vector<std::byte> copy(f.payload.begin(), f.payload.end());
        co_await s.queue(f.header.type, copy);
        if (!s.has_buffered_frame()) co_await s.flush();
        ++frames;
      }
    } catch (const TransportError& e) {
      if (e.errc() != TransportErrc::closed) throw;
    }
    co_return frames;
  });
  std::vector<std::string> replies;
  std::vector<std::uint32_t> reply_nodes;
  auto client = on_b([&]() -> Task<void> {
    FramedStream c(co_await StreamSocket::connect(address_of(pair_->a(), port), 1s, RetryPolicy{5}),
                   EndpointId{kNodeB, 0, 1});
    for (int i = 0; i < kMessages; ++i) {
      co_await c.send(static_cast<std::uint16_t>(i % 65536), bytes_of("across " + std::to_string(i)));
      Frame f = co_await c.recv(5s);
      replies.push_back(std::to_string(f.header.type) + ":" + text_of(f.payload));
      reply_nodes.push_back(f.header.sender.node);
    }
    co_await c.close();
  });
  result(client);
  const int frames = result(served);
  stop();
  EXPECT_EQ(frames, kMessages);
  ASSERT_EQ(replies.size(), static_cast<std::size_t>(kMessages));
  for (int i = 0; i < kMessages; ++i)
    ASSERT_EQ(replies[static_cast<std::size_t>(i)], std::to_string(i) + ":across " + std::to_string(i));
  EXPECT_TRUE(
      std::all_of(reply_nodes.begin(), reply_nodes.end(), [](std::uint32_t n) { return n == kNodeA; }));
}

TEST_F(TwoHosts, UdpUnicastAcrossTheLink) {
  constexpr int kDatagrams = 300;
  std::unique_ptr<DatagramSocket> server;
  auto bound = on_a([&]() -> Task<unsigned short> {
    server = std::make_unique<DatagramSocket>(DatagramSocket::bind(address_of(pair_->a(), 0)));
    co_return server->local_address().port();
  });
  const unsigned short port = result(bound);
  std::vector<std::string> senders_seen_by_a;
  auto echo = on_a([&]() -> Task<void> {
    for (int i = 0; i < kDatagrams; ++i) {
      Datagram d = co_await server->recv(5s);
      const SocketAddress from = d.sender_address();
      if (i == 0) senders_seen_by_a.push_back(from.to_string());
      co_await server->send_to(from, d.payload);
    }
    server.reset();
  });
  std::vector<std::string> replies;
  std::string reply_from;
  auto client = on_b([&]() -> Task<void> {
    DatagramSocket c = DatagramSocket::bind(address_of(pair_->b(), 0));
    const SocketAddress to = address_of(pair_->a(), port);
    for (int i = 0; i < kDatagrams; ++i) {
      co_await c.send_to(to, bytes_of("datagram " + std::to_string(i)));
      Datagram d = co_await c.recv(5s);
      replies.push_back(text_of(d.payload));
      reply_from = d.sender_address().to_string();
    }
  });
  result(client);
  result(echo);
  stop();
  ASSERT_EQ(replies.size(), static_cast<std::size_t>(kDatagrams));
  for (int i = 0; i < kDatagrams; ++i)
    EXPECT_EQ(replies[static_cast<std::size_t>(i)], "datagram " + std::to_string(i));
  EXPECT_EQ(reply_from, address_of(pair_->a(), port).to_string());
  ASSERT_EQ(senders_seen_by_a.size(), 1u);
  EXPECT_EQ(senders_seen_by_a[0].substr(0, pair_->b().address.size() + 1), pair_->b().address + ":");
}

// A feed's shape: one sender in A, two receivers in B that joined the group on B's end of the link. Each
// receiver gets every datagram, in order (one sender, one link, nothing else on it); once one leaves, only
// the other gets what follows.
TEST_F(TwoHosts, UdpMulticastFromAReachesEveryReceiverJoinedInB) {
  constexpr int kDatagrams = 100;
  const std::string group = "239.255.31.7";
  std::unique_ptr<DatagramSocket> rx1, rx2;
  auto joined = on_b([&]() -> Task<unsigned short> {
    DatagramOptions o;
    o.reuse_address = true;
    rx1 = std::make_unique<DatagramSocket>(DatagramSocket::bind(SocketAddress::parse("0.0.0.0:0"), o));
    const unsigned short port = rx1->local_address().port();
    rx2 = std::make_unique<DatagramSocket>(
        DatagramSocket::bind(SocketAddress::parse("0.0.0.0:" + std::to_string(port)), o));
    rx1->join(group, pair_->b().dev);
    rx2->join(group, pair_->b().dev);
    co_return port;
  });
  const unsigned short port = result(joined);
  const SocketAddress to = SocketAddress::parse(group + ":" + std::to_string(port));
  auto sent = on_a([&]() -> Task<void> {
    DatagramSocket tx = DatagramSocket::bind(address_of(pair_->a(), 0));
    tx.set_multicast_interface(pair_->a().dev);
    tx.set_multicast_ttl(1);
    tx.set_multicast_loopback(false);
    for (int i = 0; i < kDatagrams; ++i)
      co_await tx.send_to(to, bytes_of("tick " + std::to_string(i)));
  });
  result(sent);
  std::vector<std::string> got1, got2;
  std::string from;
  auto received = on_b([&]() -> Task<void> {
    for (int i = 0; i < kDatagrams; ++i) {
      Datagram d = co_await rx1->recv(5s);
      got1.push_back(text_of(d.payload));
      from = d.sender_address().to_string();
    }
    for (int i = 0; i < kDatagrams; ++i)
      got2.push_back(text_of((co_await rx2->recv(5s)).payload));
    rx2->leave(group, pair_->b().dev);
  });
  result(received);
  auto after_leave = on_a([&]() -> Task<void> {
    DatagramSocket tx = DatagramSocket::bind(address_of(pair_->a(), 0));
    tx.set_multicast_interface(pair_->a().dev);
    co_await tx.send_to(to, bytes_of("after leave"));
  });
  result(after_leave);
  std::string last1;
  std::optional<TransportErrc> rx2_after_leave;
  auto last = on_b([&]() -> Task<void> {
    last1 = text_of((co_await rx1->recv(5s)).payload);
    try {
      co_await rx2->recv(300ms);
    } catch (const TransportError& e) {
      rx2_after_leave = e.errc();
    }
    rx1.reset();
    rx2.reset();
  });
  result(last);
  stop();
  ASSERT_EQ(got1.size(), static_cast<std::size_t>(kDatagrams));
  ASSERT_EQ(got2.size(), static_cast<std::size_t>(kDatagrams));
  for (int i = 0; i < kDatagrams; ++i) {
    EXPECT_EQ(got1[static_cast<std::size_t>(i)], "tick " + std::to_string(i));
    EXPECT_EQ(got2[static_cast<std::size_t>(i)], "tick " + std::to_string(i));
  }
  EXPECT_EQ(from.substr(0, pair_->a().address.size() + 1), pair_->a().address + ":");
  EXPECT_EQ(last1, "after leave");
  EXPECT_EQ(rx2_after_leave, TransportErrc::timeout);  // it left: nothing more for it
}

// Without TCP_USER_TIMEOUT a send into a cut link sits in the kernel while TCP retransmits (about 15 minutes
// by default) and a full send buffer holds send_all() as long; with it the send fails with a timeout that
// says what happened.
TEST_F(TwoHosts, ASendIntoACutLinkFailsAtTheUserTimeout) {
  std::unique_ptr<StreamListener> listener;
  auto bound = on_a([&]() -> Task<unsigned short> {
    listener = std::make_unique<StreamListener>(StreamListener::bind(address_of(pair_->a(), 0)));
    co_return listener->local_address().port();
  });
  const unsigned short port = result(bound);
  auto accepted = on_a([&]() -> Task<void> {
    StreamSocket s = co_await listener->accept();
    std::array<std::byte, 4096> sink;
    try {
      for (;;)
        if (co_await s.recv_some(sink, 10s) == 0) break;  // reads what arrives, until the test ends
    } catch (const TransportError&) {
    }
  });
  std::unique_ptr<StreamSocket> client;
  auto connected = on_b([&]() -> Task<void> {
    client = std::make_unique<StreamSocket>(co_await StreamSocket::connect(address_of(pair_->a(), port), 1s));
    client->set_user_timeout(300ms);
    co_await client->send_all(bytes_of("before the cut"));
  });
  result(connected);
  pair_->set_link_up(false);
  std::optional<TransportErrc> code;
  std::string what;
  auto sent = on_b([&]() -> Task<void> {
    std::vector<std::byte> big(8 << 20, std::byte{7});  // more than the socket buffers hold
    try {
      co_await client->send_all(big);
    } catch (const TransportError& e) {
      code = e.errc();
      what = e.what();
    }
    client.reset();
  });
  result(sent);
  stop();
  ASSERT_TRUE(code.has_value()) << "8 MiB went into a cut link without an error";
  EXPECT_EQ(*code, TransportErrc::timeout) << what;
  EXPECT_NE(what.find("send: Connection timed out"), std::string::npos) << what;
  EXPECT_NE(what.find("no answer from the peer"), std::string::npos) << what;
  std::printf("send into the cut link: %s\n", what.c_str());
}

// A's link is down, so A has no route to B: a connect from A is unreachable at once (not a 15-minute wait).
TEST_F(TwoHosts, AConnectFromTheSideThatLostItsRouteIsUnreachable) {
  pair_->set_link_up(false);
  std::optional<TransportErrc> code;
  std::string what;
  auto tried = on_a([&]() -> Task<void> {
    try {
      co_await StreamSocket::connect(address_of(pair_->b(), 9), 1s);
    } catch (const TransportError& e) {
      code = e.errc();
      what = e.what();
    }
  });
  result(tried);
  stop();
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, TransportErrc::unreachable) << what;
  EXPECT_NE(what.find("Network is unreachable"), std::string::npos) << what;
  std::printf("connect from the cut side: %s\n", what.c_str());
}

// The link is cut while a client streams sequence-numbered messages that the server acknowledges
// (cumulatively: each ack is the count of messages taken). The client's connection fails with a clear
// error; the link comes back; the client reconnects (with retries, while the link may still be down) and
// resends from the first message not acknowledged. The server takes each sequence number once, in order (a
// resent one it has already is a duplicate, acknowledged again, not taken twice): it ends with every message
// exactly once, and none it acknowledged is lost.
enum class CutWhen {
  client_sending,  // the client sends a window into the cut link: the kernel gives it up at the user timeout
  acks_in_flight,  // the server took a message and its ack goes into the cut link: the client resends it
};

struct LinkCutRun {
  std::vector<std::uint64_t> taken;  // by the server, in order
  std::uint64_t duplicates = 0, gaps = 0, server_connections = 0, acked = 0;
  int client_connections = 0;
  std::vector<std::pair<TransportErrc, std::string>> failures;  // what the client saw
};

class TwoHostsLinkCut : public TwoHosts {
 protected:
  static constexpr std::uint64_t kMessages = 3000;
  static constexpr std::uint64_t kWindow = 32;  // messages the client may have unacknowledged
  static constexpr std::uint64_t kCutAt = kMessages / 3;
  static constexpr std::uint16_t kData = 1, kAck = 2;

  LinkCutRun run_with_cut(CutWhen when) {
    LinkCutRun run;
    std::atomic<bool> ready_for_cut{false};  // a side waits at kCutAt for the cut
    std::atomic<bool> cut{false};            // the link is down (set by this thread)
    std::atomic<bool> failed{false};         // a client connection failed

    std::unique_ptr<StreamListener> listener;
    auto bound = on_a([&]() -> Task<unsigned short> {
      listener = std::make_unique<StreamListener>(StreamListener::bind(address_of(pair_->a(), 0)));
      co_return listener->local_address().port();
    });
    const unsigned short port = result(bound);

    const auto wait_for_cut = [&]() -> Task<void> {
      ready_for_cut.store(true);
      while (!cut.load())
        co_await moirai::sleep_for(1ms);
    };
    // Each connection has its own task on A's one shard; after the cut the old one may still deliver, so
    // both feed one sequence.
    auto handle = [&](StreamSocket sock) -> Task<void> {
      FramedStream s(std::move(sock), EndpointId{kNodeA, 0, 1});
      try {
        for (;;) {
          Frame f = co_await s.recv();
          const std::uint64_t seq = decode(f.payload);
          if (seq == run.taken.size()) {
            run.taken.push_back(seq);
          } else if (seq < run.taken.size()) {
            ++run.duplicates;
          } else {
            ++run.gaps;
          }
          if (when == CutWhen::acks_in_flight && seq == kCutAt && !ready_for_cut.load())
            co_await wait_for_cut();
          co_await s.queue(kAck, encode(run.taken.size()));
          if (!s.has_buffered_frame()) co_await s.flush();
        }
      } catch (const TransportError&) {
        // the old connection, reset once the link is back, or cancelled at the end
      }
    };
    auto serving = on_a([&]() -> Task<void> {
      for (;;) {
        StreamSocket c = co_await listener->accept();
        ++run.server_connections;
        moirai::spawn(handle(std::move(c)));
      }
    });

    auto streaming = on_b([&]() -> Task<void> {
      std::uint64_t acked = 0;
      const SocketAddress to = address_of(pair_->a(), port);
      while (acked < kMessages) {
        // Each attempt waits 200 ms for the handshake; while the link is down B's end has no carrier and
        // the SYN is lost, so the attempt times out and is retried.
        StreamSocket sock = co_await StreamSocket::connect(to, 200ms, RetryPolicy{60, 10ms, 100ms});
        sock.set_user_timeout(300ms);  // data unacknowledged for 300 ms ends the connection
        FramedStream s(std::move(sock), EndpointId{kNodeB, 0, 1});
        ++run.client_connections;
        std::uint64_t next = acked;  // resend everything not acknowledged
        try {
          while (acked < kMessages) {
            while (next < kMessages && next - acked < kWindow)
              co_await s.queue(kData, encode(next++));
            if (when == CutWhen::client_sending && acked >= kCutAt && !ready_for_cut.load())
              co_await wait_for_cut();  // the window queued here goes out into the cut link
            co_await s.flush();
            Frame f = co_await s.recv(1s);
            const std::uint64_t upto = decode(f.payload);
            if (f.header.type == kAck && upto <= kMessages) acked = std::max(acked, upto);
          }
          co_await s.close();
        } catch (const TransportError& e) {
          run.failures.emplace_back(e.errc(), e.what());
          failed.store(true);
        }
      }
      run.acked = acked;
    });

    // This thread: wait for the cue, cut, wait for the client's failure, restore. Every wait is bounded.
    const auto until = [&](const std::atomic<bool>& flag, const char* what) {
      const auto deadline = std::chrono::steady_clock::now() + 10s;
      while (!flag.load() && std::chrono::steady_clock::now() < deadline &&
             streaming.wait_for(1ms) != std::future_status::ready) {
      }
      if (!flag.load()) {
        stop();
        throw std::runtime_error(std::string("gave up waiting for ") + what);
      }
    };
    until(ready_for_cut, "a third of the messages");
    pair_->set_link_up(false);
    cut.store(true);
    until(failed, "the client to see its connection fail");
    pair_->set_link_up(true);
    result(streaming, 20s);
    stop();  // the server has every message once the client has every acknowledgement
    for (const auto& [code, what] : run.failures)
      std::printf("client saw: %s\n", what.c_str());
    std::printf("connections: client %d, server %llu; duplicates the server dropped: %llu\n",
                run.client_connections, static_cast<unsigned long long>(run.server_connections),
                static_cast<unsigned long long>(run.duplicates));
    return run;
  }

  static void expect_every_message_once_in_order(const LinkCutRun& run) {
    EXPECT_GE(run.client_connections, 2);
    EXPECT_GE(run.server_connections, 2u);
    EXPECT_EQ(run.gaps, 0u);
    EXPECT_EQ(run.acked, kMessages);
    ASSERT_EQ(run.taken.size(), kMessages);
    for (std::uint64_t i = 0; i < kMessages; ++i)
      ASSERT_EQ(run.taken[i], i);
  }
};

// The client sends a window into the cut link: the kernel holds it unacknowledged, and at the user timeout
// the receive that waits for its acks fails: "recv: Connection timed out (no answer ...)".
TEST_F(TwoHostsLinkCut, CutWhileTheClientSendsItTimesOutReconnectsAndResends) {
  const LinkCutRun run = run_with_cut(CutWhen::client_sending);
  ASSERT_FALSE(run.failures.empty());
  EXPECT_EQ(run.failures.front().first, TransportErrc::timeout) << run.failures.front().second;
  EXPECT_NE(run.failures.front().second.find("recv: Connection timed out (no answer from the peer"),
            std::string::npos)
      << run.failures.front().second;
  for (const auto& [code, what] : run.failures)
    EXPECT_TRUE(code == TransportErrc::timeout || code == TransportErrc::unreachable) << what;
  expect_every_message_once_in_order(run);
}

// The server took message kCutAt and its ack is lost with the link: the client, waiting for it, fails (its
// receive's timeout, or the user timeout if some of its window was still unacknowledged), reconnects and
// resends from kCutAt, which the server already has: those are dropped as duplicates, not taken twice.
TEST_F(TwoHostsLinkCut, CutWhileAcksAreInFlightTheResentDuplicatesAreDroppedNotTakenTwice) {
  const LinkCutRun run = run_with_cut(CutWhen::acks_in_flight);
  ASSERT_FALSE(run.failures.empty());
  for (const auto& [code, what] : run.failures)
    EXPECT_TRUE(code == TransportErrc::timeout || code == TransportErrc::unreachable) << what;
  EXPECT_GE(run.duplicates, 1u);  // at least kCutAt came twice
  expect_every_message_once_in_order(run);
}

}  // namespace
