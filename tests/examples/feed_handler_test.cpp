// The example feed handler: its wire format, book and sequence check on their own, then end to end on
// loopback multicast: every quote taken, every change published in order, gaps reported, bad datagrams
// dropped and counted, a subscriber that does not read cut without holding the feed back, and the IPC
// strategy process fed.
#include <gtest/gtest.h>

#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <string>
#include <vector>

#include "book.hpp"
#include "feed_demo.hpp"
#include "feed_handler.hpp"
#include "load.hpp"
#include "moirai/core/cpu_set.hpp"
#include "moirai/core/runtime.hpp"
#include "moirai/core/spawn.hpp"
#include "moirai/core/submit.hpp"
#include "moirai/core/timer.hpp"
#include "moirai/transport/datagram_socket.hpp"
#include "moirai/transport/error.hpp"
#include "moirai/transport/stream_socket.hpp"
#include "quote.hpp"

using namespace moirai;
using namespace moirai::examples::feed;
using namespace std::chrono_literals;

namespace {

Quote quote(std::uint32_t symbol, std::int64_t bid, std::int64_t ask) {
  Quote q;
  q.sent_ns = 1234;
  q.symbol = symbol;
  q.bid = bid;
  q.ask = ask;
  q.bid_size = 10;
  q.ask_size = 20;
  return q;
}

std::vector<int> two_cpus() {
  std::vector<int> cpus = current_thread_affinity();
  if (cpus.size() > 2) cpus.resize(2);
  return cpus;
}

}  // namespace

TEST(FeedWire, PacketsRoundTripFieldByField) {
  const std::array<Quote, 2> in = {quote(7, 1'000'000, 1'000'100), quote(4095, -5, 9)};
  std::array<std::byte, kMaxPacketSize> buf{};
  const std::size_t n = write_packet(42, in, buf);
  ASSERT_EQ(n, kPacketHeaderSize + 2 * kQuoteSize);
  // The header's bytes as docs in quote.hpp give them.
  EXPECT_EQ(buf[0], std::byte{'M'});
  EXPECT_EQ(buf[3], std::byte{'1'});
  EXPECT_EQ(buf[4], std::byte{2});
  EXPECT_EQ(buf[8], std::byte{42});
  const PacketView v = decode_packet(std::span<const std::byte>(buf.data(), n));
  ASSERT_EQ(v.status, PacketStatus::ok);
  EXPECT_EQ(v.seq, 42u);
  ASSERT_EQ(v.count, 2);
  for (std::size_t i = 0; i < 2; ++i) {
    const Quote q = v.quote(i);
    EXPECT_EQ(q.symbol, in[i].symbol);
    EXPECT_EQ(q.bid, in[i].bid);
    EXPECT_EQ(q.ask, in[i].ask);
    EXPECT_EQ(q.bid_size, in[i].bid_size);
    EXPECT_EQ(q.ask_size, in[i].ask_size);
    EXPECT_EQ(q.sent_ns, in[i].sent_ns);
  }
  Update u{99, in[1]}, back;
  std::array<std::byte, kUpdateSize> ub{};
  write_update(u, ub);
  ASSERT_TRUE(read_update(ub, back));
  EXPECT_EQ(back.seq, 99u);
  EXPECT_EQ(back.quote.bid, -5);
  EXPECT_FALSE(read_update(std::span<const std::byte>(ub.data(), kUpdateSize - 1), back));
}

TEST(FeedWire, WhatIsNotOnePacketIsRefusedWithItsReason) {
  const std::array<Quote, 1> in = {quote(1, 2, 3)};
  std::array<std::byte, kMaxPacketSize> buf{};
  const std::size_t n = write_packet(1, in, buf);
  auto status = [&](std::size_t size) {
    return decode_packet(std::span<const std::byte>(buf.data(), size)).status;
  };
  EXPECT_EQ(status(kPacketHeaderSize - 1), PacketStatus::too_short);
  EXPECT_EQ(status(n - 1), PacketStatus::bad_count);           // a quote cut short
  EXPECT_EQ(status(n + kQuoteSize), PacketStatus::bad_count);  // more bytes than the count says
  buf[4] = std::byte{0};                                       // count 0
  EXPECT_EQ(status(n), PacketStatus::bad_count);
  buf[0] = std::byte{'X'};
  EXPECT_EQ(status(n), PacketStatus::bad_magic);
}

TEST(FeedBook, ChangesAreReportedRepeatsAndUnknownSymbolsAreNot) {
  Book b(8);
  EXPECT_EQ(b.apply(1, quote(3, 100, 101)), Book::Apply::changed);
  EXPECT_EQ(b.apply(2, quote(3, 100, 101)), Book::Apply::unchanged);
  EXPECT_EQ(b.at(3).seq, 1u);
  EXPECT_EQ(b.apply(3, quote(3, 100, 102)), Book::Apply::changed);
  EXPECT_EQ(b.at(3).ask, 102);
  EXPECT_EQ(b.at(3).seq, 3u);
  EXPECT_EQ(b.apply(4, quote(8, 1, 2)), Book::Apply::unknown_symbol);
  EXPECT_FALSE(b.at(0).valid);
}

TEST(FeedSequence, GapsDuplicatesAndOverlapsAreTold) {
  SequenceTracker t;
  EXPECT_EQ(t.on_packet(100, 4).first, 0u);  // the feed may start anywhere
  EXPECT_EQ(t.first_seq(), 100u);
  EXPECT_EQ(t.on_packet(104, 2).missing, 0u);
  const SequenceTracker::Verdict gap = t.on_packet(110, 1);  // 106..109 never came
  EXPECT_EQ(gap.missing, 4u);
  EXPECT_EQ(gap.first, 0u);
  const SequenceTracker::Verdict dup = t.on_packet(104, 2);
  EXPECT_EQ(dup.first, 2u);                                      // nothing to apply
  const SequenceTracker::Verdict overlap = t.on_packet(109, 4);  // 109, 110 seen; 111, 112 new
  EXPECT_EQ(overlap.first, 2u);
  EXPECT_EQ(overlap.missing, 0u);
  EXPECT_EQ(t.next_expected(), 113u);
  EXPECT_EQ(t.stats().gaps, 1u);
  EXPECT_EQ(t.stats().missing, 4u);
  EXPECT_EQ(t.stats().duplicates, 1u);
  EXPECT_EQ(t.stats().packets, 4u);
}

// What a run of the handler saw.
struct FeedRun {
  std::unique_ptr<LatencyHistogram> latency = std::make_unique<LatencyHistogram>();
  ConsumerStats sub;
  GeneratorStats gen;
  FeedStats feed;
};

// The handler on shard 0 (its feed on `fo.feed`'s group, at a port the kernel picks) and one reading
// subscriber on the last shard. `connect_others(h)` may connect more subscribers and says how many; once all
// are accepted, `load(h, load_shard, group_and_port, gen)` sends the feed. The handler stops once the load
// has returned and what was in flight has arrived (no datagram for 100 ms).
template <class Others, class Load>
FeedRun run_feed(FeedOptions fo, Others connect_others, Load load) {
  RuntimeOptions ro;
  ro.cpus = two_cpus();
  Runtime rt(ro);
  const unsigned load_shard = rt.shard_count() - 1;
  FeedRun r;
  rt.run([&]() -> Task<void> {
    fo.interface = "127.0.0.1";
    fo.log = false;
    FeedHandler h(fo);
    auto serving = spawn(h.run());
    const transport::SocketAddress publish = h.publish_address();
    const unsigned others = connect_others(h);
    auto reading = spawn([&]() -> Task<void> {
      co_await submit_to(load_shard, [&] { return subscribe(publish, *r.latency, r.sub); });
    });
    while (h.stats().subscribers_accepted < 1 + others)
      co_await sleep_for(1ms);
    const std::string group = fo.feed.substr(0, fo.feed.rfind(':'));
    const std::string to = group + ":" + std::to_string(h.feed_address().port());
    co_await load(h, load_shard, to, r.gen);
    co_await h.settle();  // what is still in flight arrives, however far behind a loaded host held it
    h.stop();
    co_await serving.join();
    r.feed = h.stats();
    co_await reading.join();
  });
  return r;
}

GeneratorOptions load_to(const std::string& to, double rate, unsigned per_packet, std::uint32_t symbols) {
  GeneratorOptions go;
  go.to = to;
  go.interface = "127.0.0.1";
  go.rate = rate;
  go.quotes_per_packet = per_packet;
  go.symbols = symbols;
  return go;
}

// Every quote taken, every change reaches the subscriber in order, the generator's left-out packets are
// reported as gaps, and datagrams that are not packets are counted and dropped while the feed goes on.
TEST(FeedHandler, TakesEveryQuotePublishesEveryChangeAndReportsGaps) {
  FeedOptions fo;
  fo.feed = "239.255.0.11:0";
  fo.symbols = 16;
  const FeedRun r = run_feed(
      fo, [](FeedHandler&) { return 0u; },
      [](FeedHandler&, unsigned shard, const std::string& to, GeneratorStats& gen) -> Task<void> {
        // Not packets: they are dropped and counted, and what follows is taken as usual.
        transport::DatagramSocket junk =
            transport::DatagramSocket::bind(transport::SocketAddress::parse("0.0.0.0:0"));
        junk.set_multicast_interface("127.0.0.1");
        const transport::SocketAddress at = transport::SocketAddress::parse(to);
        const std::array<std::byte, 5> five{};
        co_await junk.send_to(at, five);
        std::array<std::byte, 64> lies{};
        lies[0] = std::byte{'M'}, lies[1] = std::byte{'Q'}, lies[2] = std::byte{'F'},
        lies[3] = std::byte{'1'};
        lies[4] = std::byte{9};  // nine quotes in 48 bytes
        co_await junk.send_to(at, lies);
        GeneratorOptions go = load_to(to, 20'000, 4, 16);
        go.skip_every = 25;
        go.duration = 300ms;
        gen = co_await submit_to(shard, [&go] { return generate(go); });
      });
  const FeedStats& feed = r.feed;
  ASSERT_GT(r.gen.packets, 100u);
  EXPECT_EQ(feed.kernel_drops, 0u) << "loopback dropped datagrams: the host is overloaded";
  EXPECT_EQ(feed.malformed, 2u);
  EXPECT_EQ(feed.quotes + feed.unknown_symbol, r.gen.quotes);
  EXPECT_EQ(feed.unknown_symbol, 0u);
  // Every left-out packet is a gap of its quotes, except one at the very end (nothing after it shows it).
  EXPECT_GE(feed.sequence.gaps + 1, r.gen.skipped_packets);
  EXPECT_LE(feed.sequence.gaps, r.gen.skipped_packets);
  EXPECT_EQ(feed.sequence.missing, feed.sequence.gaps * 4u);
  EXPECT_GT(feed.changes, 0u);
  EXPECT_LT(feed.changes, feed.quotes);  // the generator repeats some quotes: those are not published
  EXPECT_EQ(feed.published_tcp, feed.changes);
  EXPECT_EQ(r.sub.updates, feed.changes);
  EXPECT_EQ(r.sub.out_of_order, 0u);
  EXPECT_EQ(r.sub.malformed, 0u);
  EXPECT_EQ(r.latency->count(), r.sub.updates);
}

// A subscriber that connects and never reads fills its socket, then its buffer, and is cut; the one that
// reads gets every change all the same.
TEST(FeedHandler, ASubscriberThatDoesNotReadIsCutAndTheOthersGetEverything) {
  FeedOptions fo;
  fo.feed = "239.255.0.12:0";
  fo.symbols = 64;
  fo.subscriber_buffer = 64 * 1024;
  int silent = -1;
  const FeedRun r = run_feed(
      fo,
      [&](FeedHandler& h) {
        // The silent one: a plain socket with a small receive buffer (set before connecting, so that the
        // window it offers is small) that nobody reads.
        silent = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        const int small = 4096;
        ::setsockopt(silent, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
        const transport::SocketAddress at = h.publish_address();
        EXPECT_EQ(::connect(silent, at.data(), at.size()), 0);
        return 1u;
      },
      [](FeedHandler& h, unsigned shard, const std::string& to, GeneratorStats& gen) -> Task<void> {
        GeneratorOptions go = load_to(to, 200'000, 8, 64);
        go.duration = 250ms;
        // The kernel takes megabytes into a socket nobody reads before its sends stop completing: send until
        // the silent subscriber is cut (a bound on rounds, not on time, keeps a broken handler from hanging).
        for (int round = 0; round < 40 && h.stats().subscribers_cut == 0; ++round) {
          const GeneratorStats g = co_await submit_to(shard, [&go] { return generate(go); });
          gen.quotes += g.quotes;
          go.first_seq += g.quotes;
        }
      });
  ::close(silent);
  const FeedStats& feed = r.feed;
  EXPECT_EQ(feed.subscribers_accepted, 2u);
  EXPECT_EQ(feed.subscribers_cut, 1u) << "lost " << feed.subscribers_lost;
  // At 200k quotes a second a held-up shard (a loaded host, a sanitizer) may see the kernel drop datagrams
  // its socket had no room for: those are counted, and nothing else is lost.
  EXPECT_EQ(feed.quotes + 8u * feed.kernel_drops, r.gen.quotes);
  EXPECT_EQ(r.sub.updates, feed.changes);
  EXPECT_EQ(r.sub.out_of_order, 0u);
  // The silent subscriber was written to until it was cut: fewer updates than the reader got.
  EXPECT_LT(feed.published_tcp, 2 * feed.changes);
}

// The whole demo: generator, handler, TCP subscriber and the strategy process over IPC.
TEST(FeedDemo, EveryChangeReachesTheSubscriberAndTheStrategyProcess) {
  if (current_thread_affinity().size() < 2) GTEST_SKIP() << "the demo needs two CPUs";
  DemoOptions o;
  o.seconds = 0.3;
  o.rate = 20'000;
  o.quotes_per_packet = 2;
  o.symbols = 32;
  const DemoResult r = run_demo(o);
  ASSERT_TRUE(r.strategy_ran);
  EXPECT_EQ(r.feed.quotes, r.generator.quotes);
  EXPECT_GT(r.feed.changes, 0u);
  EXPECT_EQ(r.subscriber.updates, r.feed.changes);
  EXPECT_EQ(r.feed.ipc_dropped, 0u);
  EXPECT_EQ(r.feed.published_ipc, r.feed.changes);
  EXPECT_EQ(r.strategy.updates, r.feed.published_ipc);
  EXPECT_EQ(r.strategy.out_of_order, 0u);
  EXPECT_EQ(r.tick_to_strategy.count, r.strategy.updates);
  EXPECT_EQ(r.feed.sequence.gaps, 0u);
  // The baseline ran first, on the same schedule: every packet it sent arrived and was measured once.
  ASSERT_TRUE(r.baseline_ran);
  EXPECT_GT(r.baseline.sent, 0u);
  EXPECT_EQ(r.baseline.received, r.baseline.sent);
  EXPECT_EQ(r.udp_baseline->count(), r.baseline.received);
}

TEST(FeedHandler, BadOptionsAreRefusedNamingThem) {
  RuntimeOptions ro;
  ro.cpus = {current_thread_affinity().front()};
  Runtime rt(ro);
  std::vector<std::string> errors;
  rt.run([&]() -> Task<void> {
    auto expect_error = [&](FeedOptions fo) {
      try {
        FeedHandler h(fo);
        errors.push_back("");
      } catch (const std::exception& e) {
        errors.push_back(e.what());
      }
    };
    FeedOptions none;
    none.symbols = 0;
    expect_error(none);
    FeedOptions tiny;
    tiny.subscriber_buffer = 10;
    expect_error(tiny);
    FeedOptions bad_address;
    bad_address.feed = "not-an-address";
    expect_error(bad_address);
    co_return;
  });
  ASSERT_EQ(errors.size(), 3u);
  EXPECT_NE(errors[0].find("symbols"), std::string::npos) << errors[0];
  EXPECT_NE(errors[1].find("subscriber_buffer"), std::string::npos) << errors[1];
  EXPECT_NE(errors[2].find("not-an-address"), std::string::npos) << errors[2];
}
