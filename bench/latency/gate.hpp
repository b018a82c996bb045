// `moirai bench --baseline FILE --tolerance PCT`: a regression gate that compares this run with a saved one.
// Absolute times drift between machines and between hours on one shared machine, so it compares what does
// not: each Moirai row's ratio to the baseline measured in the same run.
#pragma once

#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "report.hpp"

namespace moirai::cli {

// The exit code of a run whose gate found a regression (2 is a usage or setup error).
inline constexpr int kRegressionExitCode = 3;

// One row of a saved run that has ratios (ratio_p50, ratio_p99 in `moirai bench --json`).
struct SavedRatios {
  std::string bench;
  std::string row;
  std::optional<double> p50;
  std::optional<double> p99;
};

// The rows with ratios of a saved `moirai bench --json` document: an array of reports, or one report.
// Throws Error(invalid_argument) naming `source` and what is wrong with it.
std::vector<SavedRatios> parse_saved_run(std::string_view json, const std::string& source);
// The same, read from `path`; a file that cannot be read is an error naming it, its cause and how to make
// one.
std::vector<SavedRatios> load_saved_run(const std::string& path);

struct GateOptions {
  double tolerance_pct = 25;                   // a ratio may grow by this much before it is a regression
  std::vector<std::string> figures = {"p50"};  // which ratios to gate: "p50", "p99"
};

// Validates --tolerance (a number in 0..1000) and --gate (p50 and/or p99); throws Error(invalid_argument).
void check_gate_options(const GateOptions& o);

struct GateLine {
  enum class Verdict { ok, regression, improvement, not_compared };
  std::string bench;
  std::string row;
  std::string figure;  // "p50" or "p99"
  std::optional<double> saved;
  std::optional<double> now;
  Verdict verdict = Verdict::not_compared;
  std::string why;  // for not_compared: which side lacks the figure

  // (now / saved - 1) * 100; 0 unless both are known.
  double change_pct() const noexcept;
};

struct GateResult {
  std::vector<GateLine> lines;
  std::size_t regressions() const noexcept;
};

// Every gated figure of the benches in `run`: a regression when now > saved * (1 + tolerance), an improvement
// when now * (1 + tolerance) < saved. Rows present on one side only, and rows of a bench that was not run,
// are not failures: the former are listed as not compared, the latter left out.
GateResult gate(const std::vector<BenchReport>& run, const std::vector<SavedRatios>& saved,
                const GateOptions& o);

// A table: figure, saved ratio, new ratio, change, verdict.
void print_gate(std::ostream& out, const GateResult& g, const GateOptions& o, std::string_view source);
// One line per regression: "moirai: regression: echo/moirai.tcp p50 ratio 1.44x -> 1.90x (+32%, tolerance
// 25%)".
void print_regressions(std::ostream& err, const GateResult& g, const GateOptions& o);

}  // namespace moirai::cli
