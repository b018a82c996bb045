// The telemetry collector: TCP clients push batches of metric samples (sample.hpp); every shard of the
// runtime accepts its own share of the connections (one SO_REUSEPORT listener per shard on one port), folds
// each batch into its own aggregates (aggregator.hpp) on the shard that received it, and acks it. Nothing is
// shared between shards on the way in: a scrape of the metrics endpoint (on the collector's home shard)
// gathers every shard's aggregates with map_reduce and merges them, so the cost of merging is paid per
// scrape, not per sample.
//
// Per shard it also records how long each sample took from its intended send time to being in the
// aggregates (sample_to_aggregate, on one clock: meaningful when the clients run on this host, or in another
// network namespace of it).
//
// Bad input: a frame that is not a batch closes that connection (malformed, counted and logged by the
// server); a sample with an unknown kind, a bad key or a value that is not finite is rejected and counted,
// and its batch's other samples count; past max_keys a new key's samples are rejected (table_full), and a
// key's samples of the other kind too (kind_mismatch). The ack says how many of the batch were accepted.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "aggregator.hpp"
#include "moirai/core/histogram.hpp"
#include "moirai/core/sync.hpp"
#include "moirai/core/task.hpp"
#include "moirai/transport/framed_server.hpp"
#include "moirai/transport/metrics_endpoint.hpp"

namespace moirai::examples::telemetry {

struct CollectorOptions {
  std::string listen = "127.0.0.1:0";   // where clients push (TCP); port 0: the kernel picks one
  std::string metrics = "127.0.0.1:0";  // the metrics endpoint (GET /metrics, /metrics.json); "": none
  std::size_t max_keys = 16'384;        // distinct keys per shard (about 110 bytes each)
  std::size_t max_connections = 4096;   // per shard
  bool log = true;                      // the server's rate-limited fault lines on stderr
};

struct ShardCollectorStats {
  unsigned shard = 0;
  std::uint64_t batches = 0;
  std::uint64_t samples = 0;          // accepted into the aggregates
  std::uint64_t rejected_format = 0;  // unknown kind, bad key, value not finite
  std::uint64_t rejected_table_full = 0;
  std::uint64_t rejected_kind = 0;      // a gauge sample for a counter's key, or the other way round
  std::uint64_t malformed_batches = 0;  // frames that were not a batch (their connection closed)
  std::uint64_t keys = 0;
  transport::ServerStats server;  // connections accepted, active, and why each closed
  std::uint64_t rejected() const noexcept { return rejected_format + rejected_table_full + rejected_kind; }
};

// Every shard's aggregates merged, its counters, and the merged sample-to-aggregate latency.
struct CollectorSnapshot {
  std::vector<KeyAggregate> keys;  // sorted by key
  std::vector<ShardCollectorStats> shards;
  std::unique_ptr<LatencyHistogram> sample_to_aggregate = std::make_unique<LatencyHistogram>();
  ShardCollectorStats total() const;
};

// The section the collector adds to the metrics endpoint: per key `moirai_telemetry_samples_total`, `_sum`,
// `_min`, `_max`, `_last` (labels key and kind); per shard the counters; and the sample-to-aggregate summary.
transport::MetricsSection metrics_section(const CollectorSnapshot& s);

class Collector {
 public:
  // On the shard that will run it (its home). Binds the home shard's listener, so ingest_address() is known
  // at once. Throws TransportError for an address that cannot be bound, moirai::Error for bad options.
  explicit Collector(CollectorOptions options);
  Collector(const Collector&) = delete;
  Collector& operator=(const Collector&) = delete;
  ~Collector();

  // On the home shard: starts a listener and server on every other shard (same port), the metrics endpoint
  // here, and serves until stop(); then closes every connection and returns.
  Task<void> run();
  // From the home shard; run() returns once every shard's connections have ended.
  void stop() noexcept;
  // From the home shard: waits until run() has a listener on every shard (or failed to; run() says why).
  // Until then only the home shard's (bound by the constructor) takes connections, so a client that must
  // reach every shard waits for this.
  Event::Awaiter ready() noexcept { return ready_.wait(); }

  transport::SocketAddress ingest_address() const { return ingest_; }
  // The endpoint's address (throws moirai::Error when options.metrics was empty).
  transport::SocketAddress metrics_address() const;
  // From the home shard, while run() runs: every shard's aggregates and counters, merged.
  Task<CollectorSnapshot> snapshot();

 private:
  struct Part;
  Task<void> setup_shard();
  Task<void> serve_shard();
  Part& here();

  CollectorOptions options_;
  transport::SocketAddress ingest_;
  std::optional<transport::StreamListener> home_listener_;
  std::optional<transport::MetricsEndpoint> endpoint_;
  std::vector<std::unique_ptr<Part>> parts_;  // one per shard, each made and used on its own shard
  Event stopped_;
  Event ready_;
  bool stopping_ = false;
};

}  // namespace moirai::examples::telemetry
