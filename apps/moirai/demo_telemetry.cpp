#include "demo_telemetry.hpp"

#include <string>

namespace moirai::cli {

using examples::telemetry::DemoResult;

BenchReport telemetry_report(const DemoResult& r) {
  BenchReport rep;
  rep.bench = "telemetry";
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
  const bool complete = r.load.failure.empty() && r.load.samples > 0 && r.load.accepted == r.load.samples &&
                        r.load.rejected == 0 && r.scrape_check.empty();
  return complete ? 0 : 1;
}

}  // namespace moirai::cli
