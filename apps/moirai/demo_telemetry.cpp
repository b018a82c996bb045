#include "demo_telemetry.hpp"

#include <string>

namespace moirai::cli {

using examples::telemetry::DemoResult;

BenchReport telemetry_report(const DemoResult& r) {
  BenchReport rep;
  rep.bench = "telemetry";
  // The baseline row first, so that the Moirai rows' ratios are taken against it.
  if (r.baseline_ran) rep.rows.push_back(summarize("baseline.telemetry.tcp_syscall", *r.tcp_baseline));
  rep.rows.push_back(summarize("moirai.telemetry.sample_to_aggregate", *r.load.sample_to_aggregate));
  rep.rows.push_back(summarize("moirai.telemetry.sample_to_ack", *r.load.sample_to_ack));
  BenchRow tp;
  tp.name = "moirai.telemetry.throughput";
  tp.count = r.load.accepted;
  const double s = r.load.seconds();
  tp.per_sec = s > 0 ? static_cast<double>(tp.count) / s : 0.0;
  rep.rows.push_back(tp);
  const auto total = r.collector.total();
  std::string spread;
  for (const auto& sh : r.collector.shards) {
    if (!spread.empty()) spread += '/';
    spread += std::to_string(sh.server.accepted);
  }
  rep.note = "samples sent " + std::to_string(r.load.samples) + " in " + std::to_string(r.load.batches) +
             " batches, acked " + std::to_string(r.load.acked_batches) + " batches, accepted " +
             std::to_string(r.load.accepted) + ", rejected " + std::to_string(r.load.rejected) +
             "; collector: " + std::to_string(r.collector.shards.size()) + " shards, connections " + spread +
             ", keys " + std::to_string(r.collector.keys.size()) + ", malformed batches " +
             std::to_string(total.malformed_batches) + "; load behind schedule " +
             std::to_string(r.load.behind) + " times, window full " + std::to_string(r.load.window_full) +
             " times; metrics endpoint " +
             (r.scrape_check.empty() ? "served every key's count and sum" : "differs: " + r.scrape_check) +
             (r.load.failure.empty() ? "" : "; failure: " + r.load.failure) +
             "; latency from each sample's intended send time";
  if (r.baseline_ran) {
    const auto& b = r.baseline;
    rep.note +=
        "; baseline: the same batches, paced the same way (kernel sleep, then a spin), from the load's CPU "
        "to the collector's first over " +
        std::to_string(b.connections) +
        " loopback TCP connection(s) with blocking send, a plain thread spinning on non-blocking recv "
        "parses them and folds them into an Aggregator, no acks; from each sample's intended send time "
        "to its batch being folded in (what sample_to_aggregate measures): batches sent " +
        std::to_string(b.sent_batches) + ", received " + std::to_string(b.received_batches) +
        ", samples sent " + std::to_string(b.sent_samples) + ", folded " + std::to_string(b.folded) +
        ", refused " + std::to_string(b.refused) + ", malformed " + std::to_string(b.malformed) + ", keys " +
        std::to_string(b.keys) + ", behind schedule " + std::to_string(b.behind) + " times";
  }
  return rep;
}

int demo_telemetry(const examples::telemetry::DemoOptions& o, bool json, std::ostream& out) {
  const DemoResult r = examples::telemetry::run_demo(o);
  const BenchReport rep = telemetry_report(r);
  if (json) {
    out << to_json(rep) << '\n';
  } else {
    print_table(out, rep);
  }
  const bool baseline_complete =
      !r.baseline_ran || (r.baseline.received_batches == r.baseline.sent_batches &&
                          r.baseline.folded == r.baseline.sent_samples && r.baseline.malformed == 0);
  const bool complete = r.load.failure.empty() && r.load.samples > 0 && r.load.accepted == r.load.samples &&
                        r.load.rejected == 0 && r.scrape_check.empty() && baseline_complete;
  return complete ? 0 : 1;
}

}  // namespace moirai::cli
