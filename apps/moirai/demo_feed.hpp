// `moirai demo feed`: the example feed handler (examples/feed_handler) with its generator, a TCP subscriber
// and an IPC strategy process on this host, as bench rows.
#pragma once

#include <ostream>

#include "feed_demo.hpp"
#include "report.hpp"

namespace moirai::cli {

// Rows baseline.feed.udp_syscall (the same packets over plain UDP multicast syscalls, the ratios' baseline),
// moirai.feed.tick_to_publish (TCP subscriber) and moirai.feed.tick_to_strategy (IPC) as latency
// percentiles in ns from each quote's intended send time, and moirai.feed.throughput (quotes the handler took
// per second); the note gives the counts (sent, received, published, gaps).
BenchReport feed_report(const examples::feed::DemoResult& r);

// Runs the demo and prints its report (a table, or JSON). Exit 0 when every quote sent was received and
// published changes reached both consumers in order; 1 otherwise (the note says what was lost).
int demo_feed(const examples::feed::DemoOptions& o, bool json, std::ostream& out);

}  // namespace moirai::cli
