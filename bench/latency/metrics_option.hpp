// `--metrics HOST:PORT` of `moirai echo` and `moirai bench`: the runtime's metrics over HTTP while it runs.
#pragma once

#include <string>

namespace moirai::cli {

// From a task on a running shard: when `at` is not empty, serves that runtime's metrics (GET /metrics,
// /metrics.json) at `at` until the runtime stops, and says where on stderr. Throws TransportError when the
// address cannot be bound (in use, or not this host's).
void serve_metrics_if_asked(const std::string& at);

}  // namespace moirai::cli
