#include "svg_plot.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iterator>
#include <vector>

namespace moirai::cli {
namespace {

// Geometry of the drawing, in SVG user units: the plot area, with room on the left for the latency labels
// and on the right for the legend.
constexpr double kWidth = 960;
constexpr double kHeight = 560;
constexpr double kLeft = 90;
constexpr double kTop = 60;
constexpr double kPlotWidth = 600;
constexpr double kPlotHeight = 420;
constexpr int kPointsPerSeries = 160;

constexpr const char* kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                   "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

// The x coordinate of HdrHistogram's plots: log10(1/(1-p)), 0.30 at 50%, 5 at 99.999%.
double percentile_scale(double percentile) {
  return std::log10(1.0 / (1.0 - percentile / 100.0));
}

std::string escape_xml(std::string_view s) {
  std::string out;
  for (const char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string fixed(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

struct Axes {
  double x_low = percentile_scale(kPlotLowestPercentile);
  double x_high = percentile_scale(kPlotHighestPercentile);
  double y_low = 0;  // log10 of the lowest and highest latency shown: whole decades
  double y_high = 1;

  double x(double percentile) const {
    return kLeft + (percentile_scale(percentile) - x_low) / (x_high - x_low) * kPlotWidth;
  }
  // Latencies below the axis (0 included, which a log scale cannot show) sit on it.
  double y(double latency) const {
    const double l = std::clamp(std::log10(std::max(latency, 1.0)), y_low, y_high);
    return kTop + kPlotHeight - (l - y_low) / (y_high - y_low) * kPlotHeight;
  }
};

void append_text(std::string& out, double x, double y, std::string_view anchor, std::string_view cls,
                 std::string_view text, std::string_view extra = {}) {
  out += "<text class=\"" + std::string(cls) + "\" x=\"" + fixed(x) + "\" y=\"" + fixed(y) +
         "\" text-anchor=\"" + std::string(anchor) + "\"" + std::string(extra) + ">" + escape_xml(text) +
         "</text>\n";
}

void append_line(std::string& out, double x1, double y1, double x2, double y2, std::string_view cls) {
  out += "<line class=\"" + std::string(cls) + "\" x1=\"" + fixed(x1) + "\" y1=\"" + fixed(y1) + "\" x2=\"" +
         fixed(x2) + "\" y2=\"" + fixed(y2) + "\"/>\n";
}

void append_axes(std::string& out, const Axes& a, std::string_view unit) {
  static constexpr std::pair<double, const char*> kPercentileTicks[] = {
      {50, "50%"}, {90, "90%"}, {99, "99%"}, {99.9, "99.9%"}, {99.99, "99.99%"}, {99.999, "99.999%"}};
  for (const auto& [p, label] : kPercentileTicks) {
    append_line(out, a.x(p), kTop, a.x(p), kTop + kPlotHeight, "grid");
    append_text(out, a.x(p), kTop + kPlotHeight + 20, "middle", "tick x", label);
  }
  // Decades, and 2x and 5x within them when the range is short enough to want them.
  const bool minor = a.y_high - a.y_low <= 2;
  for (double e = a.y_low; e <= a.y_high + 1e-9; ++e) {
    for (const double m : {1.0, 2.0, 5.0}) {
      if (m != 1.0 && (!minor || e >= a.y_high)) continue;
      const double v = m * std::pow(10.0, e);
      append_line(out, kLeft, a.y(v), kLeft + kPlotWidth, a.y(v), m == 1.0 ? "grid" : "grid minor");
      append_text(out, kLeft - 8, a.y(v) + 4, "end", "tick y", format_latency(v, unit));
    }
  }
  append_text(out, kLeft + kPlotWidth / 2, kTop + kPlotHeight + 45, "middle", "axis-label", "percentile");
  const std::string y_label = "latency (" + std::string(unit) + ", log scale)";
  append_text(out, 20, kTop + kPlotHeight / 2, "middle", "axis-label", y_label,
              " transform=\"rotate(-90 20 " + fixed(kTop + kPlotHeight / 2) + ")\"");
}

}  // namespace

std::string format_latency(double value, std::string_view unit) {
  static constexpr const char* kPrefixes[] = {"p", "n", "µ", "m", ""};
  std::size_t prefix = unit == "ps" ? 0 : 1;  // the report's unit is ps or ns
  while (value >= 999.5 && prefix + 1 < std::size(kPrefixes)) {
    value /= 1000;
    ++prefix;
  }
  char buf[48];
  std::snprintf(buf, sizeof buf, "%g %ss", value, kPrefixes[prefix]);
  return buf;
}

std::string percentile_plot_svg(const BenchReport& r) {
  std::vector<const BenchRow*> series;
  for (const BenchRow& row : r.rows)
    if (has_latency_distribution(row)) series.push_back(&row);

  Axes a;
  if (!series.empty()) {
    double low = HUGE_VAL, high = 0;
    for (const BenchRow* row : series) {
      low = std::min(low, static_cast<double>(row->distribution.percentile(kPlotLowestPercentile)));
      high = std::max(high, static_cast<double>(row->distribution.percentile(kPlotHighestPercentile)));
    }
    a.y_low = std::floor(std::log10(std::max(low, 1.0)));
    a.y_high = std::max(std::ceil(std::log10(std::max(high, 1.0))), a.y_low + 1);
  }

  std::string out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  out += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + fixed(kWidth) + "\" height=\"" +
         fixed(kHeight) + "\" viewBox=\"0 0 " + fixed(kWidth) + " " + fixed(kHeight) +
         "\" font-family=\"sans-serif\" font-size=\"12\">\n";
  out += "<title>" + escape_xml(r.bench) + "</title>\n";
  out +=
      "<style>.grid{stroke:#ddd;stroke-width:1}.grid.minor{stroke:#eee}.title{font-size:18px;font-weight:"
      "bold}"
      ".axis-label{font-size:13px}.series{fill:none;stroke-width:2}</style>\n";
  out += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  append_text(out, kLeft, 28, "start", "title", r.bench);
  append_text(out, kLeft, 46, "start", "subtitle",
              "latency by percentile; solid: Moirai, dashed: baselines measured in the same run");
  out += "<rect class=\"plot-area\" x=\"" + fixed(kLeft) + "\" y=\"" + fixed(kTop) + "\" width=\"" +
         fixed(kPlotWidth) + "\" height=\"" + fixed(kPlotHeight) + "\" fill=\"none\" stroke=\"#888\"/>\n";
  append_axes(out, a, r.unit);
  if (series.empty())
    append_text(out, kLeft + kPlotWidth / 2, kTop + kPlotHeight / 2, "middle", "empty",
                "no latency distribution");

  std::string legend = "<g class=\"legend\">\n";
  for (std::size_t i = 0; i < series.size(); ++i) {
    const BenchRow& row = *series[i];
    const bool baseline = row.name.rfind("moirai.", 0) != 0;
    const std::string color = kColors[i % std::size(kColors)];
    const std::string dash = baseline ? " stroke-dasharray=\"7 4\"" : "";
    const std::string name = escape_xml(row.name);
    out += "<polyline class=\"series " + std::string(baseline ? "baseline" : "moirai") + "\" data-name=\"" +
           name + "\" stroke=\"" + color + "\"" + dash + " points=\"";
    for (int k = 0; k < kPointsPerSeries; ++k) {
      // Evenly spaced on the x scale, from 50% to 99.999% exactly.
      const double u = a.x_low + (a.x_high - a.x_low) * k / (kPointsPerSeries - 1);
      const double p =
          k == kPointsPerSeries - 1 ? kPlotHighestPercentile : 100.0 * (1.0 - std::pow(10.0, -u));
      if (k > 0) out += ' ';
      out += fixed(a.x(p)) + "," + fixed(a.y(static_cast<double>(row.distribution.percentile(p))));
    }
    out += "\"/>\n";

    const double y = kTop + 10 + 22.0 * static_cast<double>(i);
    const double x = kLeft + kPlotWidth + 20;
    legend += "<g class=\"legend-entry\" data-name=\"" + name + "\">\n";
    legend += "<line x1=\"" + fixed(x) + "\" y1=\"" + fixed(y) + "\" x2=\"" + fixed(x + 30) + "\" y2=\"" +
              fixed(y) + "\" stroke=\"" + color + "\" stroke-width=\"2\"" + dash + "/>\n";
    legend += "<text x=\"" + fixed(x + 38) + "\" y=\"" + fixed(y + 4) + "\">" + name + "</text>\n</g>\n";
  }
  out += legend + "</g>\n</svg>\n";
  return out;
}

}  // namespace moirai::cli
