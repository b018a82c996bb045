// The metrics endpoint: Prometheus text and JSON over HTTP on Moirai's own TCP transport, parsed back; bad
// requests answered or closed with their reason counted, and the endpoint serving on after each.
#include "moirai/transport/metrics_endpoint.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "../../bench/latency/json_reader.hpp"  // header-only JSON reader (test use only here)
#include "../support/prometheus_reader.hpp"
#include "moirai/core/runtime.hpp"
#include "moirai/core/spawn.hpp"
#include "moirai/core/submit.hpp"
#include "moirai/core/timer.hpp"
#include "transport_test_support.hpp"

namespace {

using namespace std::chrono_literals;
using moirai::Task;
using moirai::transport::MetricsEndpoint;
using moirai::transport::MetricsEndpointOptions;
using moirai::transport::MetricsEndpointStats;
using moirai::transport::SocketAddress;
using moirai::transport::StreamListener;
using moirai::transport::StreamSocket;
using moirai_test::bytes_of;

moirai::RuntimeOptions two_shards() {
  moirai::RuntimeOptions o;
  o.cpus = {0, 1};
  o.idle = moirai::IdleStrategy::sleep;
  o.metrics = true;
  return o;
}

// Sends `request` (all of it, then nothing more) and returns everything the endpoint sent until it closed.
Task<std::string> exchange(SocketAddress at, std::string request) {
  StreamSocket s = co_await StreamSocket::connect(at);
  if (!request.empty()) co_await s.send_all(bytes_of(request));
  std::string got;
  std::byte buf[4096];
  for (;;) {
    const std::size_t n = co_await s.recv_some(std::span(buf), 5s);
    if (n == 0) break;
    got.append(reinterpret_cast<const char*>(buf), n);
  }
  co_return got;
}

struct Response {
  int status = 0;
  std::string head;
  std::string body;
};
Response parse_response(const std::string& raw) {
  Response r;
  const std::size_t end = raw.find("\r\n\r\n");
  if (raw.rfind("HTTP/1.1 ", 0) != 0 || end == std::string::npos) return r;
  r.status = std::stoi(raw.substr(9, 3));
  r.head = raw.substr(0, end);
  r.body = raw.substr(end + 4);
  return r;
}

// Runs an endpoint on shard 0 with `options`, then `client(address, endpoint)` there too.
template <class Client>
MetricsEndpointStats with_endpoint(MetricsEndpointOptions options, Client client) {
  moirai::Runtime rt(two_shards());
  MetricsEndpoint endpoint(StreamListener::bind(SocketAddress::parse("127.0.0.1:0")), options);
  MetricsEndpointStats stats;
  rt.run([&]() -> Task<void> {
    moirai::spawn_detached(endpoint.serve());  // cancelled when the runtime stops
    co_await client(endpoint.local_address(), endpoint);
    stats = endpoint.stats();
  });
  return stats;
}

TEST(MetricsEndpoint, ServesPrometheusTextThatParsesBack) {
  std::string body, head;
  int status = 0;
  const auto stats = with_endpoint({}, [&](SocketAddress at, MetricsEndpoint&) -> Task<void> {
    const Response r = parse_response(co_await exchange(at, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"));
    status = r.status;
    head = r.head;
    body = r.body;
  });
  EXPECT_EQ(status, 200);
  EXPECT_NE(head.find("Content-Type: text/plain; version=0.0.4"), std::string::npos) << head;
  EXPECT_NE(head.find("Content-Length: " + std::to_string(body.size())), std::string::npos) << head;
  const moirai_test::PromExposition e = moirai_test::parse_prometheus(body);
  EXPECT_EQ(e.types.at("moirai_task_run_time_seconds"), "histogram");
  // Both shards of the runtime the endpoint runs on, with resumptions counted on shard 0 at least.
  EXPECT_GT(e.value("moirai_task_resumptions_total", {{"shard", "0"}, {"cpu", "0"}}), 0);
  EXPECT_EQ(e.series("moirai_task_resumptions_total").size(), 2u);
  EXPECT_EQ(stats.served, 1u);
}

TEST(MetricsEndpoint, ServesJsonAndIgnoresQueryParameters) {
  std::string body;
  with_endpoint({}, [&](SocketAddress at, MetricsEndpoint&) -> Task<void> {
    body = parse_response(co_await exchange(at, "GET /metrics.json?x=1 HTTP/1.0\r\n\r\n")).body;
  });
  const auto j = moirai::cli::json::parse_json(body);
  EXPECT_EQ(j.object().at("shards").array().size(), 2u);
  EXPECT_TRUE(j.object().at("all").object().at("histograms").object().at("scheduling_delay").is_object());
}

// A service's collector, gathering from both shards with map_reduce: its lines follow the runtime's in the
// Prometheus text, and its JSON value is a member of /metrics.json's object.
TEST(MetricsEndpoint, AServicesCollectorAddsItsSectionToBothFormats) {
  moirai::Runtime rt(two_shards());
  unsigned scrapes = 0;
  moirai::transport::MetricsCollector collector = [&]() -> Task<moirai::transport::MetricsSection> {
    ++scrapes;
    const unsigned shards = co_await moirai::map_reduce([] { return moirai::this_shard_id() + 1; }, 0u,
                                                        [](unsigned a, unsigned b) { return a + b; });
    moirai::transport::MetricsSection s;
    s.prometheus = "# TYPE service_shard_sum gauge\nservice_shard_sum " + std::to_string(shards) + "\n";
    s.json_name = "service";
    s.json = "{\"shard_sum\":" + std::to_string(shards) + "}";
    co_return s;
  };
  MetricsEndpoint endpoint(StreamListener::bind(SocketAddress::parse("127.0.0.1:0")), {}, collector);
  std::string text, json;
  rt.run([&]() -> Task<void> {
    moirai::spawn_detached(endpoint.serve());
    text = parse_response(co_await exchange(endpoint.local_address(), "GET /metrics HTTP/1.1\r\n\r\n")).body;
    json = parse_response(co_await exchange(endpoint.local_address(), "GET /metrics.json HTTP/1.1\r\n\r\n"))
               .body;
  });
  const moirai_test::PromExposition e = moirai_test::parse_prometheus(text);
  EXPECT_EQ(e.value("service_shard_sum", {}), 3);  // shards 0 and 1, each counted as index + 1
  EXPECT_EQ(e.series("moirai_task_resumptions_total").size(), 2u);  // the runtime's own metrics stay
  const auto j = moirai::cli::json::parse_json(json);
  EXPECT_EQ(j.object().at("service").object().at("shard_sum").number(), 3);
  EXPECT_EQ(j.object().at("shards").array().size(), 2u);
  EXPECT_EQ(scrapes, 2u);
}

// A collector that throws answers that scrape with 500, naming its message; the endpoint serves on.
TEST(MetricsEndpoint, ACollectorThatThrowsIsA500AndTheEndpointServesOn) {
  moirai::Runtime rt(two_shards());
  bool fail = true;
  moirai::transport::MetricsCollector collector = [&]() -> Task<moirai::transport::MetricsSection> {
    if (fail) throw std::runtime_error("aggregates not ready");
    co_return moirai::transport::MetricsSection{};
  };
  MetricsEndpoint endpoint(StreamListener::bind(SocketAddress::parse("127.0.0.1:0")), {}, collector);
  Response first, second;
  rt.run([&]() -> Task<void> {
    moirai::spawn_detached(endpoint.serve());
    first = parse_response(co_await exchange(endpoint.local_address(), "GET /metrics HTTP/1.1\r\n\r\n"));
    fail = false;
    second = parse_response(co_await exchange(endpoint.local_address(), "GET /metrics HTTP/1.1\r\n\r\n"));
  });
  EXPECT_EQ(first.status, 500);
  EXPECT_NE(first.body.find("aggregates not ready"), std::string::npos) << first.body;
  EXPECT_EQ(second.status, 200);
  EXPECT_EQ(endpoint.stats().collector_failed, 1u);
  EXPECT_EQ(endpoint.stats().served, 1u);
}

TEST(MetricsEndpoint, BadRequestsAreAnsweredOrClosedAndTheEndpointServesOn) {
  MetricsEndpointOptions o;
  o.request_timeout = 100ms;
  o.max_request_bytes = 512;
  std::vector<int> statuses;
  std::string silent;
  const auto stats = with_endpoint(o, [&](SocketAddress at, MetricsEndpoint&) -> Task<void> {
    statuses.push_back(parse_response(co_await exchange(at, "GET /nope HTTP/1.1\r\n\r\n")).status);
    statuses.push_back(parse_response(co_await exchange(at, "POST /metrics HTTP/1.1\r\n\r\n")).status);
    statuses.push_back(parse_response(co_await exchange(at, "hello\r\n\r\n")).status);
    statuses.push_back(
        parse_response(co_await exchange(at, "GET /metrics HTTP/1.1\r\nX: " + std::string(2000, 'a')))
            .status);
    silent = co_await exchange(at, "");  // connects and sends nothing: closed, no answer
    silent += co_await exchange(at, "GET /metrics HTTP/1.1\r\n");  // never finishes its head
    statuses.push_back(parse_response(co_await exchange(at, "GET /metrics HTTP/1.1\r\n\r\n")).status);
  });
  EXPECT_EQ(statuses, (std::vector<int>{404, 405, 400, 431, 200}));
  EXPECT_EQ(silent, "");
  EXPECT_EQ(stats.rejected, 4u);
  EXPECT_EQ(stats.timed_out, 2u);
  EXPECT_EQ(stats.served, 1u);
}

TEST(MetricsEndpoint, ConnectionsOverTheLimitAreClosedAtOnce) {
  MetricsEndpointOptions o;
  o.max_connections = 1;
  o.request_timeout = 2s;
  std::string second;
  int third = 0;
  const auto stats = with_endpoint(o, [&](SocketAddress at, MetricsEndpoint&) -> Task<void> {
    StreamSocket holder = co_await StreamSocket::connect(at);  // holds the one slot, sending nothing
    co_await moirai::sleep_for(20ms);
    second = co_await exchange(at, "GET /metrics HTTP/1.1\r\n\r\n");
    co_await holder.close();
    co_await moirai::sleep_for(20ms);
    third = parse_response(co_await exchange(at, "GET /metrics HTTP/1.1\r\n\r\n")).status;
  });
  EXPECT_EQ(second, "");
  EXPECT_EQ(third, 200);
  EXPECT_EQ(stats.over_limit, 1u);
}

}  // namespace
