#include "collector.hpp"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cinttypes>
#include <cmath>
#include <cstdio>

#include "moirai/core/error.hpp"
#include "moirai/core/shard.hpp"
#include "moirai/core/spawn.hpp"
#include "moirai/core/submit.hpp"
#include "moirai/transport/error.hpp"

namespace moirai::examples::telemetry {

using transport::FramedStream;
using transport::SocketAddress;
using transport::StreamListener;

// One shard's share: its listener's server, its aggregates, its counters. Made on that shard (so its memory
// is that shard's node's) and touched only there.
struct Collector::Part {
  Part(StreamListener listener, transport::ServerOptions so, std::size_t max_keys)
      : server(std::move(listener), std::move(so)), aggregator(max_keys) {}

  // Folds one frame in and queues its ack; throws TransportError(malformed) for a frame that is not a
  // batch, which ends that connection only.
  Task<void> take(FramedStream& conn, const transport::Frame& f) {
    BatchHeader h;
    if (f.header.type != kBatchFrameType || !read_batch_header(f.payload, h)) {
      ++stats.malformed_batches;
      throw transport::TransportError(
          transport::TransportErrc::malformed,
          "telemetry: frame of type " + std::to_string(f.header.type) + " and " +
              std::to_string(f.payload.size()) + " bytes is not a sample batch (type " +
              std::to_string(kBatchFrameType) + ", 16-byte header, 64 bytes a sample)");
    }
    Ack ack;
    ack.batch = h.batch;
    Sample s;
    for (std::uint32_t i = 0; i < h.count; ++i) {
      if (!read_sample(f.payload, i, s)) {
        ++stats.rejected_format;
        continue;
      }
      switch (aggregator.add(s)) {
        case AddResult::added:
          ++ack.accepted;
          break;
        case AddResult::table_full:
          ++stats.rejected_table_full;
          break;
        case AddResult::kind_mismatch:
          ++stats.rejected_kind;
          break;
      }
    }
    ack.rejected = h.count - ack.accepted;
    ack.aggregated_ns = monotonic_ns();
    // Each sample's latency, from its intended send time to now that its batch is folded in (a refused
    // sample's too: its answer is as late).
    for (std::uint32_t i = 0; i < h.count; ++i) {
      const std::int64_t intended = static_cast<std::int64_t>(
          transport::get_le(f.payload.data() + kBatchHeaderSize + std::size_t{i} * kSampleSize, 8));
      latency.record(
          static_cast<std::uint64_t>(ack.aggregated_ns > intended ? ack.aggregated_ns - intended : 0));
    }
    ++stats.batches;
    stats.samples += ack.accepted;
    std::array<std::byte, kAckSize> out;
    write_ack(ack, out);
    co_await conn.queue(kAckFrameType, out);
  }

  CollectorSnapshot snapshot() const {
    CollectorSnapshot s;
    s.keys = aggregator.snapshot();
    ShardCollectorStats st = stats;
    st.shard = this_shard_id();
    st.keys = aggregator.keys();
    st.server = server.stats();
    s.shards.push_back(st);
    *s.sample_to_aggregate = latency;
    return s;
  }

  transport::FramedServer server;
  Aggregator aggregator;
  ShardCollectorStats stats;
  LatencyHistogram latency;
};

namespace {

transport::ServerOptions server_options(const CollectorOptions& o) {
  transport::ServerOptions so;
  so.self = transport::EndpointId{static_cast<std::uint32_t>(::getpid()), 0, 1};
  so.framing.max_payload = static_cast<std::uint32_t>(batch_size(kMaxSamplesPerBatch));
  so.max_connections = o.max_connections;
  so.log_faults = o.log;
  return so;
}

StreamListener bind_ingest(const SocketAddress& at) {
  transport::ListenOptions lo;
  lo.reuse_port = true;
  return StreamListener::bind(at, lo);
}

CollectorOptions checked(CollectorOptions o) {
  if (o.max_keys == 0)
    throw Error(Errc::invalid_argument, "telemetry collector: max_keys 0: give at least 1");
  if (o.max_keys > Aggregator::kMostKeys) {
    throw Error(Errc::invalid_argument, "telemetry collector: max_keys " + std::to_string(o.max_keys) +
                                            " is over " + std::to_string(Aggregator::kMostKeys) +
                                            " per shard; give fewer, or more shards");
  }
  if (o.max_connections == 0)
    throw Error(Errc::invalid_argument, "telemetry collector: max_connections 0: give at least 1");
  return o;
}

// A double as both formats take it: shortest exact form; a sum that overflowed is +Inf (Prometheus) or null
// (JSON).
std::string number(double v, bool json) {
  if (!std::isfinite(v)) return json ? "null" : (v > 0 ? "+Inf" : v < 0 ? "-Inf" : "NaN");
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

const char* kind_name(Kind k) noexcept {
  return k == Kind::counter ? "counter" : "gauge";
}

}  // namespace

ShardCollectorStats CollectorSnapshot::total() const {
  ShardCollectorStats t;
  t.shard = ~0u;
  for (const ShardCollectorStats& s : shards) {
    t.batches += s.batches;
    t.samples += s.samples;
    t.rejected_format += s.rejected_format;
    t.rejected_table_full += s.rejected_table_full;
    t.rejected_kind += s.rejected_kind;
    t.malformed_batches += s.malformed_batches;
    t.keys += s.keys;
    t.server.accepted += s.server.accepted;
    t.server.active += s.server.active;
    t.server.frames += s.server.frames;
    for (std::size_t r = 0; r < t.server.closed.size(); ++r)
      t.server.closed[r] += s.server.closed[r];
  }
  return t;
}

transport::MetricsSection metrics_section(const CollectorSnapshot& s) {
  transport::MetricsSection m;
  std::string& p = m.prometheus;
  auto family = [&](const char* name, const char* type, const char* help) {
    p += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
  };
  auto key_line = [&](const char* name, const KeyAggregate& k, const std::string& v) {
    p += std::string(name) + "{key=\"" + k.key + "\",kind=\"" + kind_name(k.value.kind) + "\"} " + v + "\n";
  };
  family("moirai_telemetry_samples_total", "counter", "Samples aggregated per key.");
  for (const KeyAggregate& k : s.keys)
    key_line("moirai_telemetry_samples_total", k, std::to_string(k.value.count));
  const std::array<std::pair<const char*, double Aggregate::*>, 4> values{
      {{"moirai_telemetry_sum", &Aggregate::sum},
       {"moirai_telemetry_min", &Aggregate::min},
       {"moirai_telemetry_max", &Aggregate::max},
       {"moirai_telemetry_last", &Aggregate::last}}};
  for (const auto& [name, field] : values) {
    family(name, "gauge", "Per key: the sum, smallest, largest or latest of its values.");
    for (const KeyAggregate& k : s.keys)
      key_line(name, k, number(k.value.*field, false));
  }
  auto shard_family = [&](const char* name, const char* type, const char* help, auto value) {
    family(name, type, help);
    for (const ShardCollectorStats& st : s.shards)
      p += std::string(name) + "{shard=\"" + std::to_string(st.shard) + "\"} " + std::to_string(value(st)) +
           "\n";
  };
  shard_family("moirai_telemetry_batches_total", "counter", "Batches folded in.",
               [](const ShardCollectorStats& st) { return st.batches; });
  shard_family("moirai_telemetry_malformed_batches_total", "counter", "Frames that were not a batch.",
               [](const ShardCollectorStats& st) { return st.malformed_batches; });
  shard_family("moirai_telemetry_keys", "gauge", "Distinct keys held.",
               [](const ShardCollectorStats& st) { return st.keys; });
  shard_family("moirai_telemetry_connections", "gauge", "Client connections open.",
               [](const ShardCollectorStats& st) { return st.server.active; });
  family("moirai_telemetry_rejected_samples_total", "counter", "Samples refused, by reason.");
  for (const ShardCollectorStats& st : s.shards) {
    const std::string shard = std::to_string(st.shard);
    const std::array<std::pair<const char*, std::uint64_t>, 3> reasons{
        {{"format", st.rejected_format}, {"table_full", st.rejected_table_full}, {"kind", st.rejected_kind}}};
    for (const auto& [reason, n] : reasons)
      p += "moirai_telemetry_rejected_samples_total{shard=\"" + shard + "\",reason=\"" + reason + "\"} " +
           std::to_string(n) + "\n";
  }
  const LatencyHistogram& h = *s.sample_to_aggregate;
  family("moirai_telemetry_sample_to_aggregate_seconds", "summary",
         "From a sample's intended send time to its being in the aggregates.");
  for (double q : {0.5, 0.9, 0.99, 0.999}) {
    p += "moirai_telemetry_sample_to_aggregate_seconds{quantile=\"" + number(q, false) + "\"} " +
         number(static_cast<double>(h.percentile(q * 100)) / 1e9, false) + "\n";
  }
  p += "moirai_telemetry_sample_to_aggregate_seconds_sum " +
       number(h.mean() * static_cast<double>(h.count()) / 1e9, false) +
       "\nmoirai_telemetry_sample_to_aggregate_seconds_count " + std::to_string(h.count()) + "\n";

  m.json_name = "telemetry";
  std::string& j = m.json;
  j = "{\"keys\":[";
  for (std::size_t i = 0; i < s.keys.size(); ++i) {
    const KeyAggregate& k = s.keys[i];
    j += (i ? ",{" : "{") + std::string("\"key\":\"") + k.key + "\",\"kind\":\"" + kind_name(k.value.kind) +
         "\",\"count\":" + std::to_string(k.value.count) + ",\"sum\":" + number(k.value.sum, true) +
         ",\"min\":" + number(k.value.min, true) + ",\"max\":" + number(k.value.max, true) +
         ",\"last\":" + number(k.value.last, true) + "}";
  }
  j += "],\"shards\":[";
  for (std::size_t i = 0; i < s.shards.size(); ++i) {
    const ShardCollectorStats& st = s.shards[i];
    j += (i ? ",{" : "{") + std::string("\"shard\":") + std::to_string(st.shard) +
         ",\"batches\":" + std::to_string(st.batches) + ",\"samples\":" + std::to_string(st.samples) +
         ",\"rejected_format\":" + std::to_string(st.rejected_format) +
         ",\"rejected_table_full\":" + std::to_string(st.rejected_table_full) +
         ",\"rejected_kind\":" + std::to_string(st.rejected_kind) +
         ",\"malformed_batches\":" + std::to_string(st.malformed_batches) +
         ",\"keys\":" + std::to_string(st.keys) + ",\"connections\":" + std::to_string(st.server.active) +
         "}";
  }
  j += "],\"sample_to_aggregate_ns\":{\"count\":" + std::to_string(h.count());
  for (const auto& [name, q] : std::array<std::pair<const char*, double>, 5>{
           {{"p50", 50}, {"p90", 90}, {"p99", 99}, {"p999", 99.9}, {"max", 100}}})
    j += std::string(",\"") + name + "\":" + std::to_string(h.percentile(q));
  j += "}}";
  return m;
}

Collector::Collector(CollectorOptions options)
    : options_(checked(std::move(options))),
      ingest_(SocketAddress::parse(options_.listen)),
      home_listener_(bind_ingest(ingest_)) {
  ingest_ = home_listener_->local_address();  // the port the kernel picked, for the other shards to share
  parts_.resize(this_shard().shard_count());
  if (!options_.metrics.empty()) {
    endpoint_.emplace(StreamListener::bind(SocketAddress::parse(options_.metrics)),
                      transport::MetricsEndpointOptions{}, [this]() -> Task<transport::MetricsSection> {
                        // Named, not a temporary inside the co_await expression (g++ 12 destroys those
                        // wrongly).
                        const CollectorSnapshot snap = co_await snapshot();
                        co_return metrics_section(snap);
                      });
  }
}

Collector::~Collector() = default;

SocketAddress Collector::metrics_address() const {
  if (!endpoint_) throw Error(Errc::invalid_argument, "telemetry collector: made without a metrics endpoint");
  return endpoint_->local_address();
}

Collector::Part& Collector::here() {
  Part* p = parts_.at(this_shard_id()).get();
  if (p == nullptr)
    throw Error(Errc::invalid_argument, "telemetry collector: not running yet (call run() first)");
  return *p;
}

Task<void> Collector::setup_shard() {
  const unsigned me = this_shard_id();
  StreamListener l = me == 0 && home_listener_ ? std::move(*home_listener_) : bind_ingest(ingest_);
  parts_[me] = std::make_unique<Part>(std::move(l), server_options(options_), options_.max_keys);
  co_return;
}

Task<void> Collector::serve_shard() {
  Part& part = here();
  auto handler = [&part](FramedStream& conn, const transport::Frame& f) { return part.take(conn, f); };
  co_await part.server.serve(handler);
}

void Collector::stop() noexcept {
  stopping_ = true;
  stopped_.set();
}

Task<void> Collector::run() {
  if (this_shard_id() != 0)
    throw Error(Errc::invalid_argument, "telemetry collector: run it on shard 0, where it was made");
  try {
    co_await invoke_on_all([this] { return setup_shard(); });
  } catch (...) {
    ready_.set();  // started, if not well: run() throws what failed, and ready() waits no more
    throw;
  }
  ready_.set();
  auto serving = spawn(invoke_on_all([this] { return serve_shard(); }));
  std::optional<TaskHandle<void>> endpoint;
  if (endpoint_) endpoint.emplace(spawn(endpoint_->serve()));
  co_await stopped_.wait();
  co_await invoke_on_all([this]() -> Task<void> {
    here().server.stop();
    co_return;
  });
  co_await serving.join();
  if (endpoint) {
    endpoint->cancel();
    try {
      co_await endpoint->join();
    } catch (const TaskCancelled&) {
    }
  }
}

Task<CollectorSnapshot> Collector::snapshot() {
  CollectorSnapshot init;  // named: no owning temporary inside the co_await (g++ 12 frees those twice)
  CollectorSnapshot s =
      co_await map_reduce([this] { return here().snapshot(); }, std::move(init),
                          [](CollectorSnapshot acc, CollectorSnapshot one) {
                            merge(acc.keys, one.keys);
                            acc.shards.insert(acc.shards.end(), one.shards.begin(), one.shards.end());
                            acc.sample_to_aggregate->merge(*one.sample_to_aggregate);
                            return acc;
                          });
  std::sort(s.shards.begin(), s.shards.end(),
            [](const ShardCollectorStats& a, const ShardCollectorStats& b) { return a.shard < b.shard; });
  co_return s;
}

}  // namespace moirai::examples::telemetry
