// The telemetry collector's load: clients that push sample batches at a fixed rate and measure, from each
// sample's intended send time (its place in the schedule, not when it actually left), how long until it was
// in the aggregates (sample_to_aggregate: the collector's ack says when; one clock, so meaningful on one host
// or across its network namespaces) and until the client had the ack (sample_to_ack: the client's clock
// only, so meaningful across hosts too). A client that falls behind (its shard stalled, the socket or the
// window of unacknowledged batches full) shows up as latency: stalls are not hidden (coordinated omission).
//
// It also knows what the collector should hold from it (per key, the count and sum of what was accepted),
// and check_scrape() compares that with what the metrics endpoint serves.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "aggregator.hpp"
#include "moirai/core/histogram.hpp"
#include "moirai/core/task.hpp"
#include "moirai/core/timer.hpp"
#include "moirai/transport/socket_address.hpp"

namespace moirai::examples::telemetry {

struct LoadOptions {
  std::string to = "127.0.0.1:30003";  // the collector's ingest address
  double rate = 200'000;               // samples per second, all connections together
  unsigned connections = 16;
  unsigned batch = 20;  // samples per batch, 1..kMaxSamplesPerBatch
  unsigned keys = 256;  // distinct keys "<prefix>.k<i>"; even i counters, odd i gauges
  std::string prefix = "load";
  Duration duration = std::chrono::seconds(1);
  unsigned window = 64;                         // batches a connection may have sent and not yet had acked
  Duration ack_wait = std::chrono::seconds(5);  // at the end, for the last acks
};

struct LoadResult {
  std::uint64_t batches = 0;
  std::uint64_t samples = 0;
  std::uint64_t acked_batches = 0;
  std::uint64_t accepted = 0;  // samples the acks said were taken
  std::uint64_t rejected = 0;
  std::uint64_t behind = 0;       // batches sent later than their intended time plus one batch interval
  std::uint64_t window_full = 0;  // batches that waited for an ack before they could go
  std::int64_t started_ns = 0;
  std::int64_t ended_ns = 0;
  std::string failure;  // the first connection error, if any
  std::unique_ptr<LatencyHistogram> sample_to_aggregate = std::make_unique<LatencyHistogram>();
  std::unique_ptr<LatencyHistogram> sample_to_ack = std::make_unique<LatencyHistogram>();
  std::vector<KeyAggregate> expected;  // per key: count and sum sent (sorted by key)
  double seconds() const noexcept { return static_cast<double>(ended_ns - started_ns) / 1e9; }
};

// What the load sends (and the baseline the same): sample n is for key n % keys, "<prefix>.k<i>", a counter
// for an even i and a gauge for an odd one; counters carry 1..10 and gauges 0..999, so that every sum is
// exact in a double and a scrape compares equal.
std::vector<std::string> load_keys(const std::string& prefix, unsigned keys);
inline Kind load_kind(std::size_t key) noexcept {
  return key % 2 == 0 ? Kind::counter : Kind::gauge;
}
inline double load_value(std::uint64_t n, Kind kind) noexcept {
  return kind == Kind::counter ? static_cast<double>(1 + n % 10) : static_cast<double>(n % 1000);
}

// Throws moirai::Error naming the option that is out of range and what to give.
void validate(const LoadOptions& options);

// Connects options.connections clients (retrying while the collector is not up), sends for
// options.duration on the calling shard, waits for the last acks, and closes. Throws moirai::Error for bad
// options, TransportError when the collector cannot be reached.
Task<LoadResult> run_load(LoadOptions options);

// GET `path` from an HTTP server (the metrics endpoint) and the body of its 200 answer; throws
// TransportError for an answer that is not 200, naming its status line.
Task<std::string> http_get(transport::SocketAddress at, std::string path);

// The per-key counts and sums in the collector's Prometheus section (moirai_telemetry_samples_total and
// moirai_telemetry_sum), sorted by key; throws moirai::Error naming a line that does not parse.
std::vector<KeyAggregate> parse_scrape(const std::string& prometheus_text);

// "" when every key `expected` names has exactly its count and sum in `scraped`; otherwise what differs
// (the first few keys).
std::string check_scrape(const std::vector<KeyAggregate>& expected, const std::vector<KeyAggregate>& scraped);

}  // namespace moirai::examples::telemetry
