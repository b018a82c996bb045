// The feed handler across two hosts: two network namespaces joined by a veth pair (tests/support/netns.hpp).
// The handler runs in A, joined to the feed's group on A's end of the link and publishing on A's address; the
// generator and a subscriber run in B. The quotes cross the link as multicast and the book changes come back
// over TCP: every quote is taken and every change reaches the subscriber, in order. Skipped, saying why,
// where namespaces cannot be made.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "../support/netns.hpp"
#include "feed_handler.hpp"
#include "load.hpp"
#include "moirai/core/cpu_set.hpp"
#include "moirai/core/runtime.hpp"

namespace {

using namespace moirai::examples::feed;
using moirai::Task;
using moirai_test::one_shard_on;
using moirai_test::within;
using namespace std::chrono_literals;

}  // namespace

TEST(FeedTwoHosts, QuotesCrossTheLinkAsMulticastAndEveryChangeComesBackOverTcp) {
  moirai_test::NetnsPair pair;
  MOIRAI_SKIP_WITHOUT_NETNS(pair);
  const std::vector<int> cpus = moirai::current_thread_affinity();
  auto a = moirai_test::start_runtime_in(pair.a().ns, one_shard_on(cpus.front()));
  auto b = moirai_test::start_runtime_in(pair.b().ns, one_shard_on(cpus.back()));
  const std::string group = "239.255.41.1";

  std::unique_ptr<FeedHandler> handler;
  FeedOptions fo;
  fo.feed = group + ":0";
  fo.interface = pair.a().dev;
  fo.publish = pair.a().address + ":0";  // told to: the subscriber is on the other host
  fo.symbols = 32;
  fo.log = false;
  within(a->submit(0, [&]() -> Task<void> {
    handler = std::make_unique<FeedHandler>(fo);
    co_return;
  }));
  auto serving = a->submit(0, [&] { return handler->run(); });
  const moirai::transport::SocketAddress publish =
      within(a->submit(0, [&] { return handler->publish_address(); }));
  const unsigned short port = within(a->submit(0, [&] { return handler->feed_address().port(); }));

  auto latency = std::make_unique<moirai::LatencyHistogram>();
  ConsumerStats sub;
  auto reading = b->submit(0, [&] { return subscribe(publish, *latency, sub); });
  for (int i = 0;
       i < 2000 && within(a->submit(0, [&] { return handler->stats().subscribers_accepted; })) == 0; ++i)
    std::this_thread::sleep_for(5ms);

  GeneratorOptions go;
  go.to = group + ":" + std::to_string(port);
  go.interface = pair.b().dev;
  go.rate = 20'000;
  go.quotes_per_packet = 4;
  go.symbols = 32;
  go.duration = 300ms;
  const GeneratorStats gen = within(b->submit(0, [&] { return generate(go); }));
  within(a->submit(0, [&] { return handler->settle(); }));  // what is still crossing the link arrives
  within(a->submit(0, [&] { handler->stop(); }));
  within(std::move(serving));
  const FeedStats feed = within(a->submit(0, [&] { return handler->stats(); }));
  within(std::move(reading));
  within(a->submit(0, [&] { handler.reset(); }));
  a->stop();
  b->stop();

  ASSERT_GT(gen.packets, 100u);
  EXPECT_EQ(feed.datagrams, gen.packets);
  EXPECT_EQ(feed.quotes, gen.quotes);
  EXPECT_EQ(feed.sequence.gaps, 0u);
  EXPECT_EQ(feed.malformed, 0u);
  EXPECT_GT(feed.changes, 0u);
  EXPECT_EQ(feed.published_tcp, feed.changes);
  EXPECT_EQ(sub.updates, feed.changes);
  EXPECT_EQ(sub.out_of_order, 0u);
  EXPECT_EQ(sub.malformed, 0u);
}
