#include "hgrm.hpp"

#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>

namespace moirai::cli {
namespace {

// printf into a std::string; every line of the format is short and fixed in width.
void appendf(std::string& out, const char* format, ...) __attribute__((format(printf, 2, 3)));
void appendf(std::string& out, const char* format, ...) {
  char buf[160];
  va_list args;
  va_start(args, format);
  const int n = std::vsnprintf(buf, sizeof buf, format, args);
  va_end(args);
  if (n > 0)
    out.append(buf, static_cast<std::size_t>(n) < sizeof buf ? static_cast<std::size_t>(n) : sizeof buf - 1);
}

// HdrHistogram's PercentileIterator step: `ticks` lines per halving of the distance to 100%, so the lines
// crowd where the tail is.
double next_percentile(double level, unsigned ticks) {
  const auto halvings = static_cast<long>(std::log(100.0 / (100.0 - level)) / std::log(2.0));
  const double reporting_ticks =
      static_cast<double>(ticks) * std::pow(2.0, static_cast<double>(halvings + 1));
  return level + 100.0 / reporting_ticks;
}

}  // namespace

std::string hgrm_text(const LatencyDistribution& d, std::string_view comment,
                      unsigned ticks_per_half_distance) {
  if (ticks_per_half_distance == 0) ticks_per_half_distance = kHgrmTicksPerHalfDistance;
  std::string out;
  if (!comment.empty()) {
    out += "# ";
    out += comment;
    out += '\n';
  }
  appendf(out, "%12s %14s %10s %14s\n\n", "Value", "Percentile", "TotalCount", "1/(1-Percentile)");
  if (!d.empty()) {
    // As HdrHistogram: a line at each tick until the tick lands in the top bucket, then one at 100%.
    for (double level = 0;; level = next_percentile(level, ticks_per_half_distance)) {
      const LatencyDistribution::Bucket* b = d.bucket_at(level);
      appendf(out, "%12.3f %2.12f %10llu %14.2f\n", static_cast<double>(d.percentile(level)), level / 100.0,
              static_cast<unsigned long long>(b->cumulative), 1.0 / (1.0 - level / 100.0));
      if (b->cumulative >= d.count() || level >= 100.0) break;
    }
    appendf(out, "%12.3f %2.12f %10llu\n", static_cast<double>(d.max()), 1.0,
            static_cast<unsigned long long>(d.count()));
  }
  appendf(out, "#[Mean    = %12.3f, StdDeviation   = %12.3f]\n", d.mean(), d.stddev());
  appendf(out, "#[Max     = %12.3f, Total count    = %12llu]\n", static_cast<double>(d.max()),
          static_cast<unsigned long long>(d.count()));
  // In HdrHistogram's terms: one bucket of 2 * kSubBucketCount exact values, then one bucket of
  // kSubBucketCount (the upper half) per power of two.
  appendf(out, "#[Buckets = %12zu, SubBuckets     = %12llu]\n",
          LatencyHistogram::kBucketCount / LatencyHistogram::kSubBucketCount - 1,
          static_cast<unsigned long long>(2 * LatencyHistogram::kSubBucketCount));
  return out;
}

}  // namespace moirai::cli
