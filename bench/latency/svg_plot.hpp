// A bench's latency by percentile as an SVG a browser shows: every row with a distribution as one line, the
// Moirai rows solid and the in-run baselines dashed, on HdrHistogram's "1/(1-percentile)" log scale.
#pragma once

#include <string>
#include <string_view>

#include "report.hpp"

namespace moirai::cli {

// The x axis runs from kPlotLowestPercentile to kPlotHighestPercentile.
inline constexpr double kPlotLowestPercentile = 50.0;
inline constexpr double kPlotHighestPercentile = 99.999;

// A standalone SVG document, titled with the bench's name. x: percentile on a log scale of 1/(1-p), labelled
// 50%, 90%, 99% ... 99.999%; y: latency in the report's unit on a log scale, decade ticks labelled with an SI
// prefix ("10 µs"). The plot area is a <rect class="plot-area">; each row with a latency distribution is one
// <polyline class="series moirai|baseline" data-name="ROW">, its points left to right in rising percentile;
// the legend is a <g class="legend"> of <g class="legend-entry" data-name="ROW">, one per series.
std::string percentile_plot_svg(const BenchReport& r);

// "1.5 µs", "100 ns", "2 ms": a latency in `unit` ("ns" or "ps") with the SI prefix that keeps it in [1,
// 1000).
std::string format_latency(double value, std::string_view unit);

}  // namespace moirai::cli
