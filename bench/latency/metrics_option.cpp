#include "metrics_option.hpp"

#include <iostream>

#include "moirai/core/spawn.hpp"
#include "moirai/transport/metrics_endpoint.hpp"

namespace moirai::cli {

namespace {

// The endpoint lives in this task's frame, which the runtime cancels (and so closes) when it stops.
Task<void> run_metrics_endpoint(transport::StreamListener listener) {
  transport::MetricsEndpoint endpoint(std::move(listener));
  co_await endpoint.serve();
}

}  // namespace

void serve_metrics_if_asked(const std::string& at) {
  if (at.empty()) return;
  transport::StreamListener l = transport::StreamListener::bind(transport::SocketAddress::parse(at));
  // On stderr, so that --json output on stdout stays one JSON document.
  std::cerr << "moirai: metrics at http://" << l.local_address().to_string() << "/metrics" << std::endl;
  spawn_detached(run_metrics_endpoint(std::move(l)));
}

}  // namespace moirai::cli
