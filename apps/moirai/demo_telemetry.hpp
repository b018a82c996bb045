// `moirai demo telemetry`: the example telemetry collector (examples/telemetry) on every shard, with its load
// pushing over loopback TCP, as bench rows.
#pragma once

#include <ostream>

#include "report.hpp"
#include "telemetry_demo.hpp"

namespace moirai::cli {

// Rows baseline.telemetry.tcp_syscall (the same batches over loopback TCP with plain syscalls, folded into an
// Aggregator by a spinning thread: the ratios' baseline; when the demo ran it),
// moirai.telemetry.sample_to_aggregate (from each sample's intended send time to its being in the aggregates)
// and moirai.telemetry.sample_to_ack (to the client holding the ack), percentiles in ns, and
// moirai.telemetry.throughput (samples aggregated per second); the note gives the counts and the result of
// checking the metrics endpoint's aggregates against what was sent.
BenchReport telemetry_report(const examples::telemetry::DemoResult& r);

// Runs the demo and prints its report (a table, or JSON). Exit 0 when every sample sent was acked and
// accepted, the endpoint served each key's count and sum, and the baseline folded every sample it sent; 1
// otherwise (the note says what differs).
int demo_telemetry(const examples::telemetry::DemoOptions& o, bool json, std::ostream& out);

}  // namespace moirai::cli
