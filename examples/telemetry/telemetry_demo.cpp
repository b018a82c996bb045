#include "telemetry_demo.hpp"

#include <algorithm>
#include <exception>

#include "moirai/core/cpu_set.hpp"
#include "moirai/core/error.hpp"
#include "moirai/core/runtime.hpp"
#include "moirai/core/spawn.hpp"
#include "moirai/core/submit.hpp"

namespace moirai::examples::telemetry {

DemoResult run_demo(const DemoOptions& o) {
  if (!(o.seconds > 0)) throw Error(Errc::invalid_argument, "demo telemetry: --seconds must be above 0");
  RuntimeOptions ro;
  ro.cpus = o.cpus;
  ro.idle = o.idle;
  if (ro.cpus.empty()) {
    ro.cpus = current_thread_affinity();
    if (ro.cpus.size() > 2) ro.cpus.resize(2);
  }
  LoadOptions lo;
  lo.rate = o.rate;
  lo.connections = o.connections;
  lo.batch = o.batch;
  lo.keys = o.keys;
  lo.duration = std::chrono::nanoseconds(static_cast<std::int64_t>(o.seconds * 1e9));
  validate(lo);  // before anything starts
  DemoResult result;
  // The baseline first, with both CPUs to itself (before the runtime exists): sender on the load's CPU,
  // receiver on the collector's first.
  if (o.baseline_seconds > 0) {
    TcpBaselineOptions bo;
    bo.sender_cpu = ro.cpus.back();
    bo.receiver_cpu = ro.cpus.front();
    bo.rate = o.rate;
    bo.connections = o.baseline_connections;
    bo.batch = o.batch;
    bo.keys = o.keys;
    bo.seconds = std::min(o.seconds, o.baseline_seconds);
    result.baseline = tcp_syscall_baseline(bo, *result.tcp_baseline);
    result.baseline_ran = true;
  }
  Runtime rt(ro);
  const unsigned load_shard = static_cast<unsigned>(ro.cpus.size() - 1);
  rt.run([&]() -> Task<void> {
    Collector collector(CollectorOptions{});
    auto serving = spawn(collector.run());
    co_await collector.ready();  // a listener on every shard, so the connections spread over them
    lo.to = collector.ingest_address().to_string();
    std::exception_ptr failed;
    try {
      auto load = [&lo] { return run_load(lo); };
      LoadResult loaded = co_await submit_to(load_shard, load);  // named: see the g++ 12 note on submit_to
      result.load = std::move(loaded);
      const transport::SocketAddress endpoint = collector.metrics_address();
      const std::string path = "/metrics";  // named: g++ 12 mishandles owning temporaries in a co_await
      const std::string text = co_await http_get(endpoint, path);
      result.scrape_check = check_scrape(result.load.expected, parse_scrape(text));
      CollectorSnapshot snap = co_await collector.snapshot();
      result.collector = std::move(snap);
    } catch (...) {
      failed = std::current_exception();
    }
    collector.stop();  // whatever happened: the collector's tasks end before it does
    co_await serving.join();
    if (failed) std::rethrow_exception(failed);
  });
  return result;
}

}  // namespace moirai::examples::telemetry
