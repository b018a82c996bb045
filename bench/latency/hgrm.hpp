// HdrHistogram's percentile-distribution text (what Histogram.outputPercentileDistribution prints, an
// ".hgrm" file): the files HdrHistogram's plotter (hdrhistogram.github.io/HdrHistogram/plotFiles.html) and
// its other tools read, one distribution per file.
#pragma once

#include <string>
#include <string_view>

#include "distribution.hpp"

namespace moirai::cli {

// HdrHistogram's default: five percentile ticks per halving of the distance to 100%.
inline constexpr unsigned kHgrmTicksPerHalfDistance = 5;

// A "#" comment line with `comment` (the bench, the row and the unit: values are written in the report's own
// unit, nanoseconds or picoseconds, unscaled), the "Value Percentile TotalCount 1/(1-Percentile)" header,
// one line per percentile tick (value at that percentile, as LatencyDistribution::percentile reads it, the
// percentile as a fraction, the recordings up to that value, 1/(1-percentile)), the line at 100% (max), and
// the Mean/StdDeviation, Max/Total count and Buckets/SubBuckets footer. Empty distribution: header and
// footer only.
std::string hgrm_text(const LatencyDistribution& d, std::string_view comment,
                      unsigned ticks_per_half_distance = kHgrmTicksPerHalfDistance);

}  // namespace moirai::cli
