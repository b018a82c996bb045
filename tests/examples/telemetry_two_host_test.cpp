// The telemetry collector across two hosts: two network namespaces joined by a veth pair
// (tests/support/netns.hpp). The collector runs in A on two shards, listening and serving its metrics on A's
// address; the load runs in B and pushes across the link, then scrapes A's metrics endpoint across it too:
// every sample is acked, aggregated once and served. Skipped, saying why, where namespaces cannot be made.
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <memory>
#include <string>

#include "../support/netns.hpp"
#include "collector.hpp"
#include "moirai/core/cpu_set.hpp"
#include "moirai/core/runtime.hpp"
#include "telemetry_load.hpp"

namespace {

using namespace moirai::examples::telemetry;
using moirai::Task;
using moirai_test::one_shard_on;
using moirai_test::within;
using namespace std::chrono_literals;

}  // namespace

TEST(TelemetryTwoHosts, SamplesPushedAcrossTheLinkAreAggregatedOnTwoShardsAndServedAcrossIt) {
  moirai_test::NetnsPair pair;
  MOIRAI_SKIP_WITHOUT_NETNS(pair);
  const std::vector<int> cpus = moirai::current_thread_affinity();
  moirai::RuntimeOptions two = one_shard_on(cpus.front());
  two.cpus = {cpus.front(), cpus.back()};  // two shards (on one CPU where there is only one)
  auto a = moirai_test::start_runtime_in(pair.a().ns, two);
  auto b = moirai_test::start_runtime_in(pair.b().ns, one_shard_on(cpus.back()));

  std::unique_ptr<Collector> collector;
  CollectorOptions co;
  co.listen = pair.a().address + ":0";  // told to: the clients are on the other host
  co.metrics = pair.a().address + ":0";
  co.log = false;
  within(a->submit(0, [&]() -> Task<void> {
    collector = std::make_unique<Collector>(co);
    co_return;
  }));
  auto serving = a->submit(0, [&] { return collector->run(); });
  within(a->submit(0, [&]() -> Task<void> { co_await collector->ready(); }));
  const moirai::transport::SocketAddress ingest =
      within(a->submit(0, [&] { return collector->ingest_address(); }));
  const moirai::transport::SocketAddress metrics =
      within(a->submit(0, [&] { return collector->metrics_address(); }));

  LoadOptions lo;
  lo.to = ingest.to_string();
  lo.rate = 20'000;
  lo.connections = 8;
  lo.batch = 10;
  lo.keys = 40;
  lo.duration = 300ms;
  LoadResult load;
  std::string check;
  within(b->submit(0, [&]() -> Task<void> {
    LoadResult r = co_await run_load(lo);
    load = std::move(r);
    const std::string path = "/metrics";
    const std::string text = co_await http_get(metrics, path);
    check = check_scrape(load.expected, parse_scrape(text));
  }));
  const CollectorSnapshot snap = within(a->submit(0, [&] { return collector->snapshot(); }));
  within(a->submit(0, [&] { collector->stop(); }));
  within(std::move(serving));
  within(a->submit(0, [&] { collector.reset(); }));
  a->stop();
  b->stop();

  EXPECT_EQ(load.failure, "");
  EXPECT_EQ(load.samples, 6000u);
  EXPECT_EQ(load.accepted, load.samples);
  EXPECT_EQ(load.acked_batches, load.batches);
  EXPECT_EQ(check, "") << "the endpoint, scraped across the link, differs from what was pushed";
  ASSERT_EQ(snap.shards.size(), 2u);
  EXPECT_EQ(snap.total().samples, load.samples);
  EXPECT_EQ(snap.total().server.accepted, 8u);
  EXPECT_EQ(snap.keys.size(), 40u);
}
