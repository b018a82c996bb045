#include "demo_feed.hpp"

#include <string>

namespace moirai::cli {

using examples::feed::DemoResult;

namespace {
BenchRow row_of(std::string name, const examples::feed::Figures& f) {
  BenchRow r;
  r.name = std::move(name);
  r.count = f.count;
  r.p50 = f.p50;
  r.p90 = f.p90;
  r.p99 = f.p99;
  r.p999 = f.p999;
  r.p9999 = f.p9999;
  r.max = f.max;
  return r;
}
}  // namespace

BenchReport feed_report(const DemoResult& r) {
  BenchReport rep;
  rep.bench = "feed";
  // The first baseline row, so that the Moirai rows' ratios are taken against it.
  if (r.baseline_ran) rep.rows.push_back(summarize("baseline.feed.udp_syscall", *r.udp_baseline));
  rep.rows.push_back(summarize("moirai.feed.tick_to_publish", *r.tick_to_publish));
  if (r.strategy_ran) rep.rows.push_back(row_of("moirai.feed.tick_to_strategy", r.tick_to_strategy));
  BenchRow tp;
  tp.name = "moirai.feed.throughput";
  tp.count = r.feed.quotes + r.feed.unknown_symbol;
  const double s = r.seconds();
  tp.per_sec = s > 0 ? static_cast<double>(tp.count) / s : 0.0;
  rep.rows.push_back(tp);
  rep.note = "quotes sent " + std::to_string(r.generator.quotes) + " in " +
             std::to_string(r.generator.packets) + " packets, received " + std::to_string(tp.count) +
             ", book changes " + std::to_string(r.feed.changes) + ", published " +
             std::to_string(r.feed.published_tcp) + " (tcp) + " + std::to_string(r.feed.published_ipc) +
             " (ipc, " + std::to_string(r.feed.ipc_dropped) + " dropped), subscriber got " +
             std::to_string(r.subscriber.updates) + ", strategy got " + std::to_string(r.strategy.updates) +
             "; gaps " + std::to_string(r.feed.sequence.gaps) + " (" +
             std::to_string(r.feed.sequence.missing) + " quotes missing, " +
             std::to_string(r.generator.skipped_quotes) + " left out by the generator), malformed " +
             std::to_string(r.feed.malformed) + ", kernel drops " + std::to_string(r.feed.kernel_drops) +
             ", generator behind schedule " + std::to_string(r.generator.behind) +
             " times; latency from each quote's intended send time";
  if (r.baseline_ran) {
    rep.note +=
        "; baseline: the same packets, paced the same way, over UDP multicast from the load's CPU to "
        "the handler's with plain syscalls (receiver spinning on recv), one figure per packet, " +
        std::to_string(r.baseline.received) + " of " + std::to_string(r.baseline.sent) +
        " received, behind schedule " + std::to_string(r.baseline.behind) +
        " times; Moirai's path adds the book and a TCP hop back to the subscriber";
  }
  return rep;
}

int demo_feed(const examples::feed::DemoOptions& o, bool json, std::ostream& out) {
  const DemoResult r = run_demo(o);
  const BenchReport rep = feed_report(r);
  if (json) {
    out << to_json(rep) << '\n';
  } else {
    print_table(out, rep);
  }
  const std::uint64_t received = r.feed.quotes + r.feed.unknown_symbol;
  const bool complete =
      received == r.generator.quotes && r.feed.malformed == 0 &&
      r.feed.sequence.missing <= r.generator.skipped_quotes && r.subscriber.updates == r.feed.published_tcp &&
      r.subscriber.out_of_order == 0 && r.subscriber.malformed == 0 &&
      (!r.strategy_ran || (r.strategy.updates == r.feed.published_ipc && r.feed.ipc_dropped == 0 &&
                           r.strategy.out_of_order == 0 && r.strategy.malformed == 0));
  return complete ? 0 : 1;
}

}  // namespace moirai::cli
