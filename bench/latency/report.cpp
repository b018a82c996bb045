#include "report.hpp"

#include "json_writer.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <iterator>
#include <string_view>
#include <utility>

namespace moirai::cli {

using json::append_key;
using json::append_number;
using json::append_string;

BenchRow summarize(std::string name, const LatencyHistogram& h) {
  BenchRow row;
  row.name = std::move(name);
  row.count = h.count();
  row.p50 = h.percentile(50);
  row.p90 = h.percentile(90);
  row.p99 = h.percentile(99);
  row.p999 = h.percentile(99.9);
  row.p9999 = h.percentile(99.99);
  row.max = h.max();
  row.distribution = LatencyDistribution(h);
  return row;
}

bool has_latency_distribution(const BenchRow& row) noexcept {
  return !row.per_sec && !row.distribution.empty();
}

namespace {

constexpr std::string_view kBaselinePrefix = "baseline.";
constexpr std::string_view kMoiraiPrefix = "moirai.";

bool starts_with(std::string_view s, std::string_view prefix) noexcept {
  return s.substr(0, prefix.size()) == prefix;
}

}  // namespace

const BenchRow* find_baseline(const BenchReport& r) noexcept {
  for (const BenchRow& row : r.rows)
    if (starts_with(row.name, kBaselinePrefix)) return &row;
  return nullptr;
}

const BenchRow* baseline_for(const BenchReport& r, const BenchRow& row) noexcept {
  if (!row.compare_with.empty()) {
    for (const BenchRow& b : r.rows)
      if (b.name == row.compare_with) return &b;
  }
  return find_baseline(r);
}

std::optional<BaselineRatios> ratios_to_baseline(const BenchRow& row, const BenchRow* baseline) noexcept {
  // A Moirai row is compared with its baseline; any other row only when it names one (a second baseline
  // measured against the first, as the raw io_uring floor against plain syscalls).
  if (baseline == nullptr || row.per_sec) return std::nullopt;
  if (!starts_with(row.name, kMoiraiPrefix) && row.compare_with.empty()) return std::nullopt;
  if (baseline->p50 == 0 || baseline->p99 == 0) return std::nullopt;
  return BaselineRatios{static_cast<double>(row.p50) / static_cast<double>(baseline->p50),
                        static_cast<double>(row.p99) / static_cast<double>(baseline->p99)};
}

// ---- table
// -----------------------------------------------------------------------------------------------------

std::string format_ratio(double r) {
  char buf[32];
  // Two significant figures below 0.1, where two decimals would print a 0.0012 ratio as 0.00x.
  std::snprintf(buf, sizeof buf, r != 0 && std::fabs(r) < 0.1 ? "%.2gx" : "%.2fx", r);
  return buf;
}

namespace {

// Three significant figures with an SI suffix: "950", "12.3k", "1.25M". A rate is read at a glance, not
// copied.
std::string format_rate(double v) {
  if (!std::isfinite(v)) return "-";
  static constexpr const char* kSuffixes[] = {"", "k", "M", "G", "T"};
  std::size_t s = 0;
  while (std::fabs(v) >= 999.5 && s + 1 < std::size(kSuffixes)) {
    v /= 1000;
    ++s;
  }
  const char* format = std::fabs(v) < 9.995 ? "%.2f%s" : std::fabs(v) < 99.95 ? "%.1f%s" : "%.0f%s";
  char buf[48];
  std::snprintf(buf, sizeof buf, format, v, kSuffixes[s]);
  return buf;
}

}  // namespace

void print_columns(std::ostream& out, const std::vector<std::vector<std::string>>& lines) {
  std::vector<std::size_t> widths;
  for (const auto& cells : lines) {
    widths.resize(std::max(widths.size(), cells.size()), 0);
    for (std::size_t c = 0; c < cells.size(); ++c)
      widths[c] = std::max(widths[c], cells[c].size());
  }
  for (const auto& cells : lines) {
    std::string line;
    for (std::size_t c = 0; c < cells.size(); ++c) {
      const std::size_t pad = widths[c] - cells[c].size();
      if (c == 0) {
        line += cells[c];  // names left-aligned, numbers right-aligned so that digits line up
        line.append(pad, ' ');
      } else {
        line += "  ";
        line.append(pad, ' ');
        line += cells[c];
      }
    }
    while (!line.empty() && line.back() == ' ')
      line.pop_back();
    out << line << '\n';
  }
}

void print_table(std::ostream& out, const BenchReport& r) {
  bool any_ratio = false;
  bool any_rate = false;
  bool any_jobs = false;
  for (const BenchRow& row : r.rows) {
    any_ratio = any_ratio || ratios_to_baseline(row, baseline_for(r, row)).has_value();
    any_rate = any_rate || row.per_sec.has_value();
    any_jobs = any_jobs || row.releases.has_value();
  }

  // Build every cell first so that each column can be as wide as its widest cell.
  std::vector<std::string> header = {"name", "count", "p50", "p90", "p99", "p99.9", "p99.99", "max"};
  if (any_ratio) {
    header.emplace_back("p50/base");
    header.emplace_back("p99/base");
  }
  if (any_rate) header.emplace_back("per sec");
  if (any_jobs) {
    header.emplace_back("releases");
    header.emplace_back("misses");
  }

  std::vector<std::vector<std::string>> lines;
  lines.push_back(header);
  for (const BenchRow& row : r.rows) {
    std::vector<std::string> cells = {row.name,
                                      std::to_string(row.count),
                                      std::to_string(row.p50),
                                      std::to_string(row.p90),
                                      std::to_string(row.p99),
                                      std::to_string(row.p999),
                                      std::to_string(row.p9999),
                                      std::to_string(row.max)};
    if (any_ratio) {
      const auto ratios = ratios_to_baseline(row, baseline_for(r, row));
      // A Moirai latency row without a usable baseline says so; other rows have nothing to compare.
      const bool comparable = starts_with(row.name, kMoiraiPrefix) && !row.per_sec;
      cells.push_back(ratios ? format_ratio(ratios->p50) : comparable ? "-" : "");
      cells.push_back(ratios ? format_ratio(ratios->p99) : comparable ? "-" : "");
    }
    if (any_rate) cells.push_back(row.per_sec ? format_rate(*row.per_sec) : "");
    if (any_jobs) {
      cells.push_back(row.releases ? std::to_string(*row.releases) : "");
      cells.push_back(row.misses ? std::to_string(*row.misses) : "");
    }
    lines.push_back(std::move(cells));
  }

  out << r.bench << " (latency in " << r.unit << ")\n";
  print_columns(out, lines);
  if (!r.note.empty()) {
    out << r.note;
    if (r.note.back() != '\n') out << '\n';
  }
}

// ---- JSON
// ------------------------------------------------------------------------------------------------------

namespace {

void append_row(std::string& out, const BenchRow& row, const BenchRow* baseline) {
  out += '{';
  append_key(out, "name");
  append_string(out, row.name);
  const std::pair<std::string_view, std::uint64_t> figures[] = {
      {"count", row.count}, {"p50", row.p50},     {"p90", row.p90}, {"p99", row.p99},
      {"p999", row.p999},   {"p9999", row.p9999}, {"max", row.max},
  };
  for (const auto& [key, value] : figures) {
    out += ',';
    append_key(out, key);
    append_number(out, value);
  }
  if (row.per_sec) {
    out += ',';
    append_key(out, "per_sec");
    append_number(out, *row.per_sec);
  }
  for (const auto& [key, value] : {std::pair{"releases", row.releases}, std::pair{"misses", row.misses}}) {
    if (!value) continue;
    out += ',';
    append_key(out, key);
    append_number(out, *value);
  }
  if (const auto ratios = ratios_to_baseline(row, baseline)) {
    out += ',';
    append_key(out, "ratio_p50");
    append_number(out, ratios->p50);
    out += ',';
    append_key(out, "ratio_p99");
    append_number(out, ratios->p99);
    out += ',';
    append_key(out, "baseline");
    append_string(out, baseline->name);
  }
  out += '}';
}

void append_report(std::string& out, const BenchReport& r) {
  out += '{';
  append_key(out, "bench");
  append_string(out, r.bench);
  out += ',';
  append_key(out, "unit");
  append_string(out, r.unit);
  out += ',';
  append_key(out, "results");
  out += '[';
  for (std::size_t i = 0; i < r.rows.size(); ++i) {
    if (i > 0) out += ',';
    append_row(out, r.rows[i], baseline_for(r, r.rows[i]));
  }
  out += ']';
  if (!r.note.empty()) {
    out += ',';
    append_key(out, "note");
    append_string(out, r.note);
  }
  out += '}';
}

}  // namespace

std::string to_json(const BenchReport& r) {
  std::string out;
  append_report(out, r);
  return out;
}

std::string to_json(const std::vector<BenchReport>& reports) {
  std::string out = "[";
  for (std::size_t i = 0; i < reports.size(); ++i) {
    if (i > 0) out += ',';
    append_report(out, reports[i]);
  }
  out += ']';
  return out;
}

}  // namespace moirai::cli
