// The files `moirai bench` writes besides its tables: HdrHistogram distributions (--hgrm), SVG plots (--plot)
// and a report directory (--report) with all of them, the JSON and a markdown summary.
#pragma once

#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "report.hpp"

namespace moirai::cli {

struct ReportOutputs {
  // --hgrm FILE: one file per row with a latency distribution (HdrHistogram's plotter takes one distribution
  // per file), named FILE's stem + "." + row + ".hgrm", or stem + "." + bench + "." + row + ".hgrm" when
  // several benches ran. The stem is FILE without a trailing ".hgrm".
  std::string hgrm;
  // --plot FILE.svg: the bench's plot; FILE's stem + "." + bench + ".svg" for each bench when several ran.
  std::string plot;
  // --report DIR: DIR/<bench>.json, DIR/<bench>.svg, DIR/<bench>.<row>.hgrm, DIR/summary.md, and DIR/all.json
  // (every report, as `moirai bench --json` prints them: usable as a --baseline file).
  std::string report_dir;
};

// What can be checked before minutes of benches: the directories of --hgrm and --plot exist, the report
// directory is created (with its parents). Throws Error(invalid_argument) naming the path and the cause.
void prepare_outputs(const ReportOutputs& o);
// Writes every output asked for; each file written is named on `log`. Throws Error naming a file that cannot
// be written and why.
void write_outputs(const ReportOutputs& o, const std::vector<BenchReport>& reports, std::ostream& log);

// The files of each output, for the reports given; each returns the paths it wrote.
std::vector<std::string> write_hgrm_files(const std::string& file, const std::vector<BenchReport>& reports);
std::vector<std::string> write_plots(const std::string& file, const std::vector<BenchReport>& reports);
std::vector<std::string> write_report_dir(const std::string& dir, const std::vector<BenchReport>& reports);

// DIR/summary.md: a section per bench with links to its plot, JSON and hgrm files, the plot itself, and a
// table of each row's p50 and p99 with the ratios to the bench's baseline.
std::string summary_markdown(const std::vector<BenchReport>& reports);

// Writes `text` to `path`, replacing it; throws Error(invalid_argument) naming the path and the cause.
void write_file(const std::string& path, std::string_view text);

}  // namespace moirai::cli
