// What `moirai bench` prints: one table (or JSON object) per bench, each Moirai figure set beside the
// baseline measured in the same run, because only ratios measured in the same run mean anything on a shared
// host.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "distribution.hpp"
#include "moirai/core/histogram.hpp"

namespace moirai::cli {

// One line of a bench: a latency distribution in nanoseconds and, for throughput benches, a rate.
struct BenchRow {
  std::string name;  // "baseline.<what>" for a baseline, "moirai.<what>" for a figure compared with it
  std::uint64_t count = 0;
  std::uint64_t p50 = 0;
  std::uint64_t p90 = 0;
  std::uint64_t p99 = 0;
  std::uint64_t p999 = 0;
  std::uint64_t p9999 = 0;
  std::uint64_t max = 0;
  std::optional<double> per_sec;  // set on throughput rows: operations per second
  // Set on real-time rows: jobs released, and jobs that ended past their deadline.
  std::optional<std::uint64_t> releases;
  std::optional<std::uint64_t> misses;
  // The baseline row this row's ratios are taken against, when a bench measures more than one thing (the
  // alloc bench compares pools with malloc and current_numa_node() with sched_getcpu()). Empty: the report's
  // first baseline.
  std::string compare_with;
  // The whole distribution the percentiles came from, for HdrHistogram files and plots; empty on rows built
  // from figures alone.
  LatencyDistribution distribution;
};

// A latency row whose whole distribution is known: what `--hgrm` writes and `--plot` draws. Throughput rows
// are not (their histogram is time per message within a burst, not a latency).
bool has_latency_distribution(const BenchRow& row) noexcept;

struct BenchReport {
  std::string bench;
  std::vector<BenchRow> rows;
  std::string note;  // free text printed under the table, e.g. how a figure was measured
  // The unit of every figure: "ns", or "ps" for operations that take a few nanoseconds, where whole
  // nanoseconds would round a 1.4 ns figure to 1 and its ratio to a baseline with it.
  std::string unit = "ns";
};

// The row's percentiles as LatencyHistogram::percentile gives them (bucket's highest equivalent value), and
// its distribution.
BenchRow summarize(std::string name, const LatencyHistogram& h);

// Ratios of a Moirai row to its bench's baseline. The baseline is the first row whose name starts with
// "baseline."; rows starting with "moirai." and rows that name a compare_with get ratios, unless they are
// throughput rows, and only when the baseline's figure is non-zero (a ratio to 0 means nothing).
struct BaselineRatios {
  double p50 = 0;
  double p99 = 0;
};
const BenchRow* find_baseline(const BenchReport& r) noexcept;
// The baseline `row` is compared with: the row named by its compare_with, else find_baseline(r).
const BenchRow* baseline_for(const BenchReport& r, const BenchRow& row) noexcept;
std::optional<BaselineRatios> ratios_to_baseline(const BenchRow& row, const BenchRow* baseline) noexcept;

// Lines of cells in aligned columns, two spaces apart: the first column left-aligned (names), the others
// right-aligned (numbers), trailing blanks trimmed.
void print_columns(std::ostream& out, const std::vector<std::vector<std::string>>& lines);
// "1.23x"; two significant figures below 0.1 ("0.0012x").
std::string format_ratio(double r);

// A table for a person: a title line, aligned columns (name, count, p50, p90, p99, p99.9, p99.99, max in ns),
// then "p50/base" and "p99/base" (e.g. "1.23x") for Moirai rows, a "per sec" column when any row has a rate,
// and the note.
void print_table(std::ostream& out, const BenchReport& r);

// {"bench": ..., "unit": "ns" (or "ps"), "results": [{"name", "count", "p50", "p90", "p99", "p999", "p9999",
// "max"}]}, plus "per_sec" on throughput rows, "releases"/"misses" on real-time rows, "ratio_p50"/"ratio_p99"
// and "baseline" (the row compared with) on Moirai rows with a baseline, and "note" when there is one. One
// line, no trailing newline.
std::string to_json(const BenchReport& r);
// The reports as a JSON array, for `moirai bench --json` with no sub-command.
std::string to_json(const std::vector<BenchReport>& reports);

// How long a bench runs: a number of iterations, a duration, or whichever comes first when both are set.
// Both zero means "done immediately" (no iterations), so that a forgotten budget cannot run forever.
struct RunBudget {
  std::uint64_t count = 0;
  std::chrono::nanoseconds duration{0};

  bool done(std::uint64_t iterations, std::chrono::nanoseconds elapsed) const noexcept {
    if (count == 0 && duration.count() <= 0) return true;
    return (count > 0 && iterations >= count) || (duration.count() > 0 && elapsed >= duration);
  }
};

}  // namespace moirai::cli
