#include "gate.hpp"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "json_reader.hpp"
#include "moirai/core/error.hpp"

namespace moirai::cli {
namespace {

const char* kHowToSave = "save one with `moirai bench --json > FILE`";

[[noreturn]] void bad_file(const std::string& source, const std::string& what) {
  throw Error(Errc::invalid_argument, "baseline '" + source + "': " + what + "; " + kHowToSave);
}

std::optional<double> ratio_field(const json::JsonObject& row, const std::string& key) {
  const auto it = row.find(key);
  if (it == row.end() || !it->second.is_number()) return std::nullopt;  // absent, or null (not a number)
  return it->second.number();
}

void read_report(const json::Json& report, const std::string& source, std::vector<SavedRatios>& out) {
  if (!report.is_object() || !report.has("bench") || !report.at("bench").is_string() ||
      !report.has("results") || !report.at("results").is_array())
    bad_file(source, "a report is not an object with \"bench\" and \"results\"");
  const std::string& bench = report.at("bench").string();
  for (const json::Json& row : report.at("results").array()) {
    if (!row.is_object() || !row.has("name") || !row.at("name").is_string())
      bad_file(source, "a row of bench '" + bench + "' has no \"name\"");
    SavedRatios s{bench, row.at("name").string(), ratio_field(row.object(), "ratio_p50"),
                  ratio_field(row.object(), "ratio_p99")};
    if (s.p50 || s.p99) out.push_back(std::move(s));
  }
}

std::optional<double> figure_of(const SavedRatios& s, const std::string& figure) {
  return figure == "p50" ? s.p50 : s.p99;
}

std::string format_change(double pct, const char* format) {
  char buf[32];
  std::snprintf(buf, sizeof buf, format, pct);
  return buf;
}

}  // namespace

std::vector<SavedRatios> parse_saved_run(std::string_view text, const std::string& source) {
  json::Json doc;
  try {
    doc = json::JsonParser(text).parse_document();
  } catch (const std::runtime_error& e) {
    bad_file(source, e.what());
  }
  std::vector<SavedRatios> out;
  if (doc.is_array()) {
    for (const json::Json& report : doc.array())
      read_report(report, source, out);
  } else {
    read_report(doc, source, out);
  }
  if (out.empty()) bad_file(source, "no row has a ratio to its baseline (ratio_p50)");
  return out;
}

std::vector<SavedRatios> load_saved_run(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int err = errno;
    throw Error(Errc::invalid_argument,
                "cannot read baseline '" + path + "': " + std::strerror(err) + "; " + kHowToSave);
  }
  std::ostringstream text;
  text << in.rdbuf();
  return parse_saved_run(text.str(), path);
}

void check_gate_options(const GateOptions& o) {
  if (!(o.tolerance_pct >= 0 && o.tolerance_pct <= 1000))
    throw Error(Errc::invalid_argument, "--tolerance must be a percentage from 0 to 1000");
  if (o.figures.empty()) throw Error(Errc::invalid_argument, "--gate needs p50, p99 or both");
  for (const std::string& f : o.figures)
    if (f != "p50" && f != "p99")
      throw Error(Errc::invalid_argument, "--gate takes p50 and p99, not '" + f + "'");
}

double GateLine::change_pct() const noexcept {
  if (!saved || !now || *saved == 0) return 0;
  return (*now / *saved - 1) * 100;
}

std::size_t GateResult::regressions() const noexcept {
  std::size_t n = 0;
  for (const GateLine& l : lines)
    n += l.verdict == GateLine::Verdict::regression ? 1 : 0;
  return n;
}

GateResult gate(const std::vector<BenchReport>& run, const std::vector<SavedRatios>& saved,
                const GateOptions& o) {
  const double allowed = 1 + o.tolerance_pct / 100;
  GateResult g;
  for (const BenchReport& r : run) {
    for (const std::string& figure : o.figures) {
      // This run's rows, in the report's order, each with its saved counterpart when there is one.
      for (const BenchRow& row : r.rows) {
        const auto ratios = ratios_to_baseline(row, baseline_for(r, row));
        if (!ratios) continue;
        GateLine l;
        l.bench = r.bench;
        l.row = row.name;
        l.figure = figure;
        l.now = figure == "p50" ? ratios->p50 : ratios->p99;
        for (const SavedRatios& s : saved)
          if (s.bench == r.bench && s.row == row.name) l.saved = figure_of(s, figure);
        if (!l.saved) {
          l.why = "not in the saved run";
        } else if (*l.now > *l.saved * allowed) {
          l.verdict = GateLine::Verdict::regression;
        } else if (*l.now * allowed < *l.saved) {
          l.verdict = GateLine::Verdict::improvement;
        } else {
          l.verdict = GateLine::Verdict::ok;
        }
        g.lines.push_back(std::move(l));
      }
      // Saved rows this run did not produce (renamed, removed, or without a baseline this time).
      for (const SavedRatios& s : saved) {
        if (s.bench != r.bench || !figure_of(s, figure)) continue;
        bool found = false;
        for (const GateLine& l : g.lines)
          found = found || (l.bench == s.bench && l.row == s.row && l.figure == figure);
        if (!found)
          g.lines.push_back({s.bench, s.row, figure, figure_of(s, figure), std::nullopt,
                             GateLine::Verdict::not_compared, "not in this run"});
      }
    }
  }
  return g;
}

void print_gate(std::ostream& out, const GateResult& g, const GateOptions& o, std::string_view source) {
  out << "gate: ratios to the in-run baseline against " << source << " (tolerance "
      << format_change(o.tolerance_pct, "%g") << "%)\n";
  std::vector<std::vector<std::string>> lines = {{"figure", "saved", "now", "change", "verdict"}};
  for (const GateLine& l : g.lines) {
    const bool both = l.saved && l.now;
    const char* verdict = l.verdict == GateLine::Verdict::ok            ? "ok"
                          : l.verdict == GateLine::Verdict::regression  ? "REGRESSION"
                          : l.verdict == GateLine::Verdict::improvement ? "improved"
                                                                        : "not compared";
    lines.push_back({l.bench + "/" + l.row + " " + l.figure, l.saved ? format_ratio(*l.saved) : "-",
                     l.now ? format_ratio(*l.now) : "-",
                     both ? format_change(l.change_pct(), "%+.1f%%") : "-",
                     l.why.empty() ? verdict : std::string(verdict) + " (" + l.why + ")"});
  }
  print_columns(out, lines);
  const std::size_t n = g.regressions();
  out << (n == 0 ? std::string("gate: no regression") : "gate: " + std::to_string(n) + " regression(s)")
      << '\n';
}

void print_regressions(std::ostream& err, const GateResult& g, const GateOptions& o) {
  for (const GateLine& l : g.lines) {
    if (l.verdict != GateLine::Verdict::regression) continue;
    err << "moirai: regression: " << l.bench << '/' << l.row << ' ' << l.figure << " ratio "
        << format_ratio(*l.saved) << " -> " << format_ratio(*l.now) << " ("
        << format_change(l.change_pct(), "%+.0f%%") << ", tolerance " << format_change(o.tolerance_pct, "%g")
        << "%)\n";
  }
}

}  // namespace moirai::cli
