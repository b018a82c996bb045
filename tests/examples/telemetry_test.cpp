// The telemetry collector: its wire format read back, the per-shard aggregates and their merge, and the
// service end to end on two shards: every sample a load pushed is acked, aggregated once and served by the
// metrics endpoint; bad frames, bad samples, too many keys and a key's wrong kind are refused and counted
// while every other client carries on; and folding a batch in allocates nothing.
#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "../support/allocation_counter.hpp"
#include "aggregator.hpp"
#include "baseline.hpp"
#include "collector.hpp"
#include "moirai/core/cpu_set.hpp"
#include "moirai/core/runtime.hpp"
#include "moirai/core/spawn.hpp"
#include "moirai/core/submit.hpp"
#include "moirai/transport/error.hpp"
#include "moirai/transport/framed_stream.hpp"
#include "sample.hpp"
#include "telemetry_demo.hpp"
#include "telemetry_load.hpp"

namespace {

using namespace moirai::examples::telemetry;
using moirai::Task;
using moirai::transport::EndpointId;
using moirai::transport::FramedStream;
using moirai::transport::SocketAddress;
using moirai::transport::StreamSocket;
using moirai::transport::TransportErrc;
using moirai::transport::TransportError;
using namespace std::chrono_literals;

Sample sample(std::string_view key, Kind kind, double v, std::int64_t at = 1) {
  Sample s;
  EXPECT_TRUE(make_sample(key, kind, v, at, s)) << key;
  return s;
}

std::vector<std::byte> batch_of(std::uint64_t id, const std::vector<Sample>& samples) {
  std::vector<std::byte> out(batch_size(samples.size()));
  write_batch(id, samples, out);
  return out;
}

moirai::RuntimeOptions two_shards() {
  moirai::RuntimeOptions o;
  o.cpus = moirai::current_thread_affinity();
  if (o.cpus.size() > 2) o.cpus.resize(2);
  if (o.cpus.size() < 2) o.cpus = {o.cpus.front(), o.cpus.front()};
  o.idle = moirai::IdleStrategy::spin_then_sleep;
  o.drop_capabilities = moirai::CapabilityDrop::off;
  return o;
}

TEST(TelemetryWire, ABatchReadsBackSampleBySample) {
  const std::vector<Sample> in{sample("cpu.load", Kind::gauge, 0.75, 42),
                               sample("rx_bytes", Kind::counter, 1500)};
  const std::vector<std::byte> b = batch_of(7, in);
  ASSERT_EQ(b.size(), 16u + 2 * 64u);
  BatchHeader h;
  ASSERT_TRUE(read_batch_header(b, h));
  EXPECT_EQ(h.batch, 7u);
  ASSERT_EQ(h.count, 2u);
  Sample out;
  ASSERT_TRUE(read_sample(b, 0, out));
  EXPECT_EQ(out.key_view(), "cpu.load");
  EXPECT_EQ(out.kind, Kind::gauge);
  EXPECT_EQ(out.value, 0.75);
  EXPECT_EQ(out.intended_ns, 42);
  ASSERT_TRUE(read_sample(b, 1, out));
  EXPECT_EQ(out.key_view(), "rx_bytes");
  EXPECT_EQ(out.kind, Kind::counter);
  // The header is little-endian "MTB1", then the count.
  EXPECT_EQ(static_cast<char>(b[0]), 'M');
  EXPECT_EQ(static_cast<char>(b[3]), '1');
  EXPECT_EQ(static_cast<int>(b[4]), 2);
}

TEST(TelemetryWire, PayloadsThatAreNotABatchAndBadSamplesAreRefused) {
  std::vector<std::byte> b = batch_of(1, {sample("a", Kind::counter, 1), sample("b", Kind::counter, 2)});
  BatchHeader h;
  EXPECT_FALSE(read_batch_header(std::span(b).first(16 + 64), h)) << "count says 2, bytes hold 1";
  EXPECT_FALSE(read_batch_header(std::span(b).first(8), h));
  std::vector<std::byte> bad_magic = b;
  bad_magic[0] = std::byte{'X'};
  EXPECT_FALSE(read_batch_header(bad_magic, h));
  std::vector<std::byte> none = batch_of(1, {});
  EXPECT_FALSE(read_batch_header(none, h)) << "an empty batch";

  Sample s;
  EXPECT_FALSE(make_sample("has space", Kind::counter, 1, 0, s));
  EXPECT_FALSE(make_sample("", Kind::counter, 1, 0, s));
  EXPECT_FALSE(make_sample(std::string(kMaxKeySize + 1, 'k'), Kind::counter, 1, 0, s));
  EXPECT_TRUE(make_sample(std::string(kMaxKeySize, 'k'), Kind::counter, 1, 0, s));
  ASSERT_TRUE(read_batch_header(b, h));
  std::vector<std::byte> kind = b;
  kind[16 + 16] = std::byte{9};  // sample 0's kind
  EXPECT_FALSE(read_sample(kind, 0, s));
  EXPECT_TRUE(read_sample(kind, 1, s)) << "the batch's other samples still read";
  std::vector<std::byte> key = b;
  key[16 + 18] = std::byte{'"'};  // a quote in sample 0's key would break the Prometheus label
  EXPECT_FALSE(read_sample(key, 0, s));
  std::vector<std::byte> nan = batch_of(1, {sample("a", Kind::counter, 1)});
  const double q = std::numeric_limits<double>::quiet_NaN();
  std::uint64_t bits;
  std::memcpy(&bits, &q, sizeof bits);
  moirai::transport::put_le(nan.data() + 16 + 8, bits, 8);
  EXPECT_FALSE(read_sample(nan, 0, s));
}

TEST(Aggregator, CountsSumsAndKeepsTheLatestGauge) {
  Aggregator a(8);
  EXPECT_EQ(a.add(sample("c", Kind::counter, 2, 10)), AddResult::added);
  EXPECT_EQ(a.add(sample("c", Kind::counter, 5, 5)), AddResult::added);
  EXPECT_EQ(a.add(sample("g", Kind::gauge, 7, 20)), AddResult::added);
  EXPECT_EQ(a.add(sample("g", Kind::gauge, 3, 10)), AddResult::added);  // sent earlier: not the latest
  EXPECT_EQ(a.add(sample("c", Kind::gauge, 1, 30)), AddResult::kind_mismatch);
  std::vector<KeyAggregate> s = a.snapshot();
  merge(s, {});
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].key, "c");
  EXPECT_EQ(s[0].value.count, 2u);
  EXPECT_EQ(s[0].value.sum, 7);
  EXPECT_EQ(s[0].value.min, 2);
  EXPECT_EQ(s[0].value.max, 5);
  EXPECT_EQ(s[1].key, "g");
  EXPECT_EQ(s[1].value.last, 7);
  EXPECT_EQ(s[1].value.count, 2u);
}

TEST(Aggregator, PastMaxKeysANewKeyIsRefusedAndKnownOnesStillCount) {
  Aggregator a(3);
  for (const char* k : {"k1", "k2", "k3"})
    EXPECT_EQ(a.add(sample(k, Kind::counter, 1)), AddResult::added);
  EXPECT_EQ(a.add(sample("k4", Kind::counter, 1)), AddResult::table_full);
  EXPECT_EQ(a.add(sample("k2", Kind::counter, 1)), AddResult::added);
  EXPECT_EQ(a.keys(), 3u);
  // Many keys in a table of many slots: each found again after collisions.
  Aggregator big(1000);
  for (int i = 0; i < 1000; ++i)
    ASSERT_EQ(big.add(sample("key." + std::to_string(i), Kind::counter, i)), AddResult::added);
  for (int i = 0; i < 1000; ++i)
    ASSERT_EQ(big.add(sample("key." + std::to_string(i), Kind::counter, i)), AddResult::added);
  EXPECT_EQ(big.keys(), 1000u);
  for (const KeyAggregate& k : big.snapshot()) {
    EXPECT_EQ(k.value.count, 2u) << k.key;
    EXPECT_EQ(k.value.sum, 2 * std::stod(k.key.substr(4))) << k.key;
  }
}

TEST(Aggregator, ShardsMergeByKeyCountersAddAndTheLatestGaugeWins) {
  Aggregator s0(8), s1(8);
  s0.add(sample("c", Kind::counter, 1, 1));
  s1.add(sample("c", Kind::counter, 2, 2));
  s0.add(sample("g", Kind::gauge, 10, 5));
  s1.add(sample("g", Kind::gauge, 20, 4));
  s1.add(sample("only1", Kind::counter, 3, 1));
  std::vector<KeyAggregate> all = s0.snapshot();
  merge(all, s1.snapshot());
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].key, "c");
  EXPECT_EQ(all[0].value.sum, 3);
  EXPECT_EQ(all[0].value.count, 2u);
  EXPECT_EQ(all[1].key, "g");
  EXPECT_EQ(all[1].value.last, 10) << "s0's sample was meant to be sent later";
  EXPECT_EQ(all[2].key, "only1");
}

TEST(TelemetryScrape, ParsesTheCollectorsSectionAndFindsWhatDiffers) {
  CollectorSnapshot snap;
  KeyAggregate a{"load.k0", {}}, b{"load.k1", {}};
  a.value.add(3, 1);
  a.value.add(4, 2);
  b.value.kind = Kind::gauge;
  b.value.add(9, 1);
  snap.keys = {a, b};
  snap.shards.push_back({});
  const std::string text = metrics_section(snap).prometheus;
  const std::vector<KeyAggregate> got = parse_scrape(text);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(check_scrape({a, b}, got), "");
  KeyAggregate more = a;
  more.value.add(1, 3);
  EXPECT_NE(check_scrape({more}, got).find("load.k0: count 2 sum 7"), std::string::npos)
      << check_scrape({more}, got);
  EXPECT_NE(check_scrape({KeyAggregate{"load.k9", {}}}, got).find("load.k9: missing"), std::string::npos);
  EXPECT_THROW(parse_scrape("moirai_telemetry_sum{key=\"x\",kind=\"counter\"} twelve\n"), moirai::Error);
}

// The whole service on two shards: the load's connections spread over both, every sample is acked and
// aggregated once, and the endpoint serves each key's count and sum.
TEST(TelemetryCollector, EverySamplePushedIsAggregatedOnceAndServedByTheEndpoint) {
  DemoOptions o;
  o.seconds = 0.5;
  o.rate = 40'000;
  o.connections = 16;
  o.batch = 10;
  o.keys = 50;
  o.cpus = two_shards().cpus;
  const DemoResult r = run_demo(o);
  EXPECT_EQ(r.load.failure, "");
  EXPECT_EQ(r.load.samples, 20'000u);
  EXPECT_EQ(r.load.accepted, r.load.samples);
  EXPECT_EQ(r.load.acked_batches, r.load.batches);
  EXPECT_EQ(r.scrape_check, "");
  ASSERT_EQ(r.collector.shards.size(), 2u);
  const ShardCollectorStats t = r.collector.total();
  EXPECT_EQ(t.samples, r.load.samples);
  EXPECT_EQ(t.server.accepted, 16u);
  EXPECT_GT(r.collector.shards[0].server.accepted, 0u) << "SO_REUSEPORT gave shard 1 every connection";
  EXPECT_GT(r.collector.shards[1].server.accepted, 0u) << "SO_REUSEPORT gave shard 0 every connection";
  EXPECT_EQ(r.collector.keys.size(), 50u);
  EXPECT_EQ(r.load.sample_to_aggregate->count(), r.load.samples);
  EXPECT_EQ(r.collector.sample_to_aggregate->count(), r.load.samples);
  // The baseline ran first, at the same rate, and folded every sample it sent.
  ASSERT_TRUE(r.baseline_ran);
  EXPECT_EQ(r.baseline.sent_samples, r.load.samples);
  EXPECT_EQ(r.baseline.folded, r.baseline.sent_samples);
  EXPECT_EQ(r.tcp_baseline->count(), r.baseline.folded);
}

// The demo's baseline (plain syscalls over loopback TCP): every batch it sent arrives whole and every sample
// is folded into its Aggregator and recorded once, over one connection and over several used in turn.
TEST(TelemetryBaseline, EveryBatchSentIsReceivedAndFolded) {
  const std::vector<int> cpus = two_shards().cpus;
  for (unsigned connections : {1u, 4u}) {
    TcpBaselineOptions o;
    o.receiver_cpu = cpus[0];
    o.sender_cpu = cpus[1];
    o.rate = 40'000;
    o.batch = 10;
    o.keys = 50;
    o.connections = connections;
    o.seconds = 0.3;
    moirai::LatencyHistogram latency;
    const TcpBaselineStats st = tcp_syscall_baseline(o, latency);
    EXPECT_EQ(st.connections, connections);
    EXPECT_EQ(st.sent_batches, 1200u) << connections << " connections";
    EXPECT_EQ(st.sent_samples, st.sent_batches * 10);
    EXPECT_EQ(st.received_batches, st.sent_batches) << connections << " connections";
    EXPECT_EQ(st.folded, st.sent_samples) << connections << " connections";
    EXPECT_EQ(st.refused, 0u);
    EXPECT_EQ(st.malformed, 0u);
    EXPECT_EQ(st.keys, 50u);
    EXPECT_EQ(latency.count(), st.folded);
  }
  TcpBaselineOptions bad;
  bad.batch = 5000;
  moirai::LatencyHistogram latency;
  EXPECT_THROW(tcp_syscall_baseline(bad, latency), moirai::Error);
}

TEST(TelemetryCollector, BadOptionsAreRefusedNamingTheFix) {
  DemoOptions o;
  o.batch = 5000;
  try {
    run_demo(o);
    ADD_FAILURE() << "took a batch of 5000";
  } catch (const moirai::Error& e) {
    EXPECT_NE(std::string(e.what()).find("give 1 to 1024"), std::string::npos) << e.what();
  }
  LoadOptions lo;
  lo.prefix = "no spaces";
  EXPECT_THROW(validate(lo), moirai::Error);
  CollectorOptions none, too_many;
  none.max_keys = 0;
  too_many.max_keys = Aggregator::kMostKeys + 1;
  moirai::Runtime rt(two_shards());
  std::string what, what_many;
  rt.run([&]() -> Task<void> {
    for (auto [options, out] : {std::pair{&none, &what}, std::pair{&too_many, &what_many}}) {
      try {
        Collector c(*options);
      } catch (const moirai::Error& e) {
        *out = e.what();
      }
    }
    co_return;
  });
  EXPECT_NE(what.find("max_keys 0"), std::string::npos) << what;
  EXPECT_NE(what_many.find("or more shards"), std::string::npos) << what_many;
}

// Sends `frames` (type, payload) on one connection and returns the acks it got, or the error that ended it.
struct Exchange {
  std::vector<Ack> acks;
  std::string ended_by;
};
using Frames = std::vector<std::pair<std::uint16_t, std::vector<std::byte>>>;
Task<Exchange> push(SocketAddress at, Frames frames) {
  Exchange x;
  FramedStream s(co_await StreamSocket::connect(at), EndpointId{9, 0, 0});
  try {
    for (const auto& [type, payload] : frames) {
      co_await s.send(type, payload);
      moirai::transport::Frame f = co_await s.recv(2s);
      Ack a;
      if (read_ack(f.payload, a)) x.acks.push_back(a);
    }
  } catch (const TransportError& e) {
    x.ended_by = e.what();
  }
  co_return x;
}

// Bad input, each on its own connection: a frame that is not a batch closes only that connection; bad
// samples, a key beyond max_keys and a key of the other kind are refused, the batch's other samples taken,
// and the ack says how many; a good client pushing throughout is served.
TEST(TelemetryCollector, BadInputIsRefusedAndCountedAndOtherClientsCarryOn) {
  moirai::Runtime rt(two_shards());
  Exchange garbage, mixed, good;
  CollectorSnapshot snap;
  rt.run([&]() -> Task<void> {
    CollectorOptions co;
    co.max_keys = 4;
    co.log = false;
    Collector c(co);
    auto serving = moirai::spawn(c.run());
    co_await c.ready();
    const SocketAddress at = c.ingest_address();
    // Each list named: no owning temporary inside a co_await (g++ 12 mishandles those).
    std::vector<std::byte> bad_magic = batch_of(1, {sample("x", Kind::counter, 1)});
    bad_magic[1] = std::byte{0};
    Frames garbage_frames{{kBatchFrameType, bad_magic}};
    Exchange g = co_await push(at, std::move(garbage_frames));
    garbage = g;
    std::vector<std::byte> bad_kind =
        batch_of(2, {sample("ok.a", Kind::counter, 1), sample("ok.b", Kind::counter, 1)});
    bad_kind[16 + 64 + 16] = std::byte{7};
    Frames mixed_frames{
        {kBatchFrameType, bad_kind},
        {kBatchFrameType, batch_of(3, {sample("ok.a", Kind::gauge, 1)})},
        {kBatchFrameType, batch_of(4, {sample("k1", Kind::counter, 1), sample("k2", Kind::counter, 1),
                                       sample("k3", Kind::counter, 1), sample("k4", Kind::counter, 1),
                                       sample("k5", Kind::counter, 1)})},
        {77, std::vector<std::byte>(5)}};
    Exchange m = co_await push(at, std::move(mixed_frames));
    mixed = m;
    Frames good_frames{{kBatchFrameType, batch_of(5, {sample("ok.a", Kind::counter, 2)})},
                       {kBatchFrameType, batch_of(6, {sample("ok.a", Kind::counter, 3)})}};
    Exchange ok = co_await push(at, std::move(good_frames));
    good = ok;
    CollectorSnapshot got = co_await c.snapshot();
    snap = std::move(got);
    c.stop();
    co_await serving.join();
  });
  EXPECT_TRUE(garbage.acks.empty());
  EXPECT_NE(garbage.ended_by, "") << "the connection sending garbage was closed";
  ASSERT_EQ(mixed.acks.size(), 3u) << mixed.ended_by;
  EXPECT_EQ(mixed.acks[0].accepted, 1u);
  EXPECT_EQ(mixed.acks[0].rejected, 1u);
  EXPECT_EQ(mixed.acks[1].accepted, 0u) << "ok.a is a counter";
  // Each shard holds up to 4 keys; the connection's shard already has ok.a, so k1..k3 fit and k4, k5 do not
  // (or, on an empty shard, k1..k4).
  EXPECT_GE(mixed.acks[2].rejected, 1u);
  EXPECT_NE(mixed.ended_by, "") << "the frame of type 77 ended the connection";
  ASSERT_EQ(good.acks.size(), 2u) << good.ended_by;
  EXPECT_EQ(good.acks[1].accepted, 1u);
  const ShardCollectorStats t = snap.total();
  EXPECT_EQ(t.malformed_batches, 2u);
  EXPECT_EQ(t.rejected_format, 1u);
  EXPECT_EQ(t.rejected_kind, 1u);
  EXPECT_EQ(t.rejected_table_full, mixed.acks[2].rejected);
  EXPECT_EQ(t.server.closed_for(moirai::transport::CloseReason::malformed), 2u);
  for (const KeyAggregate& k : snap.keys) {
    if (k.key == "ok.a") {
      EXPECT_EQ(k.value.sum, 1 + 2 + 3) << "ok.a, over both shards";
    }
  }
}

// Folding batches in allocates nothing once the keys are known: the collector's receive, aggregate and ack
// path, counted on one connection after a warm-up.
TEST(TelemetryCollector, FoldingABatchInAllocatesNothing) {
  moirai::RuntimeOptions ro = two_shards();
  ro.cpus.resize(1);
  moirai::Runtime rt(ro);
  std::optional<Collector> c;
  std::optional<moirai::TaskHandle<void>> serving;
  std::optional<FramedStream> client;
  std::vector<Sample> samples;
  for (int i = 0; i < 20; ++i)
    samples.push_back(sample("alloc.k" + std::to_string(i), i % 2 ? Kind::gauge : Kind::counter, i));
  std::vector<std::byte> out(batch_size(samples.size()));
  std::uint64_t id = 0;
  auto body = [&](int n) -> Task<std::uint64_t> {
    if (!client) {
      CollectorOptions co;
      co.metrics = "";
      c.emplace(co);
      serving.emplace(moirai::spawn(c->run()));
      co_await c->ready();
      client.emplace(co_await StreamSocket::connect(c->ingest_address()), EndpointId{3, 0, 0});
    }
    std::uint64_t accepted = 0;
    for (int i = 0; i < n; ++i) {
      write_batch(++id, samples, out);
      co_await client->send(kBatchFrameType, out);
      moirai::transport::Frame f = co_await client->recv();
      Ack a;
      if (read_ack(f.payload, a)) accepted += a.accepted;
    }
    co_return accepted;
  };
  std::uint64_t allocations = 0, sum = 0;
  rt.run([&]() -> Task<void> {
    sum += co_await body(1000);  // warm-up: the keys, the buffers, the timer heap
    moirai_test::g_allocations.store(0);
    moirai_test::g_counting.store(true);
    sum += co_await body(10'000);
    moirai_test::g_counting.store(false);
    allocations = moirai_test::g_allocations.load();
    c->stop();
    co_await serving->join();
    serving.reset();  // on the shard, before the runtime ends
    client.reset();
    c.reset();
  });
  EXPECT_EQ(allocations, 0u);
  EXPECT_EQ(sum, 20u * (1000 + 10'000));
}

}  // namespace
