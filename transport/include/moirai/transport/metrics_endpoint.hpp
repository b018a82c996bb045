// The runtime's metrics over HTTP, on the framework's own TCP transport: `GET /metrics` answers the
// Prometheus text exposition format, `GET /metrics.json` the JSON form (core/metrics.hpp). It runs as tasks
// on the shard that serves it, so a scrape costs that shard the formatting and nothing else.
//
// One request per connection (the answer says `Connection: close`). Bad input is bounded: a request larger
// than `max_request_bytes` gets 431, a request that does not arrive whole within `request_timeout` (a peer
// that connects and sends nothing, or trickles) is closed, another method gets 405, another path 404, and
// beyond `max_connections` a new connection is closed at once. Each is counted (MetricsEndpointStats).
//
// A service adds its own metrics with a collector: a coroutine the endpoint awaits for each scrape of either
// path (it may gather from every shard with map_reduce), whose section is appended to the runtime's. A
// collector that throws gets 500 with its message; the endpoint goes on.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "moirai/core/sync.hpp"
#include "moirai/core/task.hpp"
#include "moirai/transport/stream_socket.hpp"

namespace moirai::transport {

struct MetricsEndpointOptions {
  std::size_t max_connections = 64;
  std::size_t max_request_bytes = 8192;
  Duration request_timeout = std::chrono::seconds(5);
};

struct MetricsEndpointStats {
  std::uint64_t served = 0;            // 200 answers
  std::uint64_t rejected = 0;          // 4xx answers
  std::uint64_t timed_out = 0;         // closed without a whole request in time
  std::uint64_t over_limit = 0;        // closed at once: max_connections were open
  std::uint64_t failed = 0;            // the peer reset or vanished
  std::uint64_t collector_failed = 0;  // 500 answers: the service's collector threw
};

// What the endpoint answers a request (the bytes before the blank line): status, content type and body.
struct HttpAnswer {
  int status = 200;
  std::string content_type;
  std::string body;
};
// A service's own metrics, in both formats: `prometheus` is appended to /metrics (whole lines, each ending
// in a newline), and `json`, a JSON value, becomes the member `json_name` of /metrics.json's object.
struct MetricsSection {
  std::string prometheus;
  std::string json_name;
  std::string json;
};
using MetricsCollector = std::function<Task<MetricsSection>()>;

// What the endpoint answers a request (the bytes before the blank line), the runtime's metrics followed by
// `extra` when given. On a shard.
HttpAnswer answer_metrics_request(std::string_view request_head, const MetricsSection* extra = nullptr);

class MetricsEndpoint {
 public:
  explicit MetricsEndpoint(StreamListener listener, MetricsEndpointOptions options = {},
                           MetricsCollector collector = {})
      : listener_(std::move(listener)), options_(options), collector_(std::move(collector)) {}
  MetricsEndpoint(const MetricsEndpoint&) = delete;
  MetricsEndpoint& operator=(const MetricsEndpoint&) = delete;

  // Accepts and answers until the task is cancelled (as every task is when its runtime stops), then waits
  // for the connections in progress to end. On a shard of the runtime whose metrics it serves.
  Task<void> serve();

  const MetricsEndpointStats& stats() const noexcept { return stats_; }
  SocketAddress local_address() const { return listener_.local_address(); }

 private:
  Task<void> connection(StreamSocket s, Gate::Holder holder);

  StreamListener listener_;
  Task<HttpAnswer> answer(std::string_view head);

  MetricsEndpointOptions options_;
  MetricsCollector collector_;
  MetricsEndpointStats stats_;
  Gate gate_;
  std::size_t active_ = 0;
};

}  // namespace moirai::transport
