#include "hgrm.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "distribution.hpp"
#include "text_lines.hpp"

namespace {

using moirai::LatencyHistogram;
using moirai::cli::hgrm_text;
using moirai::cli::LatencyDistribution;
using moirai::cli::testing::lines_of;

// 10007 recordings (a prime count, so that no percentile tick lands exactly on a rank boundary): a body
// around 1-3 us and a tail up to a few ms, from a fixed pseudo-random sequence.
std::unique_ptr<LatencyHistogram> sample_histogram() {
  auto h = std::make_unique<LatencyHistogram>();
  std::uint64_t x = 12345;
  for (int i = 0; i < 10007; ++i) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    const std::uint64_t r = x >> 33;
    h->record(i % 1000 == 0 ? 100'000 + r % 5'000'000 : 1000 + r % 2000);
  }
  return h;
}

struct DataLine {
  double value = 0;
  double percentile = 0;
  std::uint64_t total = 0;
  double inverse = 0;  // 1/(1-percentile); 0 on the last line, which has none
  int fields = 0;
};

DataLine parse_data_line(const std::string& line) {
  DataLine d;
  std::istringstream in(line);
  if (in >> d.value) ++d.fields;
  if (in >> d.percentile) ++d.fields;
  if (in >> d.total) ++d.fields;
  if (in >> d.inverse) ++d.fields;
  return d;
}

TEST(Distribution, ReadsPercentilesExactlyAsTheHistogram) {
  const auto h = sample_histogram();
  const LatencyDistribution d(*h);
  EXPECT_EQ(d.count(), h->count());
  EXPECT_EQ(d.min(), h->min());
  EXPECT_EQ(d.max(), h->max());
  EXPECT_DOUBLE_EQ(d.mean(), h->mean());
  for (double p = 0; p <= 100; p += 0.125)
    EXPECT_EQ(d.percentile(p), h->percentile(p)) << p;
  for (const double p : {99.9, 99.99, 99.999, 99.9999})
    EXPECT_EQ(d.percentile(p), h->percentile(p)) << p;
  EXPECT_LT(d.buckets().size(), 1000u);  // the non-empty buckets only
  EXPECT_EQ(d.buckets().back().cumulative, h->count());
}

TEST(Distribution, EmptyHasNoBuckets) {
  const auto h = std::make_unique<LatencyHistogram>();
  const LatencyDistribution d(*h);
  EXPECT_TRUE(d.empty());
  EXPECT_EQ(d.percentile(50), 0u);
  EXPECT_EQ(d.bucket_at(50), nullptr);
  EXPECT_TRUE(LatencyDistribution().empty());
}

TEST(Distribution, StdDeviationOfTwoValues) {
  auto h = std::make_unique<LatencyHistogram>();
  h->record_n(100, 50);
  h->record_n(200, 50);
  EXPECT_NEAR(LatencyDistribution(*h).stddev(), 50.0, 0.5);
}

TEST(Hgrm, HasHdrHistogramsHeaderRowsAndFooter) {
  const auto h = sample_histogram();
  const std::vector<std::string> lines = lines_of(hgrm_text(LatencyDistribution(*h), "moirai bench x: ns"));
  ASSERT_GT(lines.size(), 10u);
  EXPECT_EQ(lines[0], "# moirai bench x: ns");
  EXPECT_EQ(lines[1], "       Value     Percentile TotalCount 1/(1-Percentile)");
  EXPECT_EQ(lines[2], "");

  std::vector<DataLine> data;
  std::size_t i = 3;
  for (; i < lines.size() && lines[i].rfind("#[", 0) != 0; ++i)
    data.push_back(parse_data_line(lines[i]));
  ASSERT_EQ(lines.size() - i, 3u) << "three footer lines";
  ASSERT_GT(data.size(), 20u);

  // HdrHistogram's ticks: tenths up to the median, then five per halving of the distance to 100%.
  const double first[] = {0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.775};
  for (std::size_t k = 0; k < std::size(first); ++k)
    EXPECT_NEAR(data[k].percentile, first[k], 1e-12) << k;

  for (std::size_t k = 0; k + 1 < data.size(); ++k) {
    const DataLine& d = data[k];
    ASSERT_EQ(d.fields, 4) << lines[3 + k];
    if (k > 0) {
      EXPECT_GT(d.percentile, data[k - 1].percentile);
      EXPECT_GE(d.value, data[k - 1].value);
      EXPECT_GE(d.total, data[k - 1].total);
    }
    EXPECT_EQ(d.value, static_cast<double>(h->percentile(d.percentile * 100))) << lines[3 + k];
    EXPECT_NEAR(d.inverse, 1 / (1 - d.percentile), 0.01);
    // TotalCount: the recordings up to and including the value's bucket, so at least the percentile's rank.
    EXPECT_GE(static_cast<double>(d.total), std::floor(d.percentile * static_cast<double>(h->count())));
  }
  const DataLine& last = data.back();
  EXPECT_EQ(last.fields, 3);
  EXPECT_EQ(last.percentile, 1.0);
  EXPECT_EQ(last.value, static_cast<double>(h->max()));
  EXPECT_EQ(last.total, h->count());

  char mean[64];
  std::snprintf(mean, sizeof mean, "%.3f", h->mean());
  EXPECT_EQ(lines[i].rfind("#[Mean    = ", 0), 0u);
  EXPECT_NE(lines[i].find(mean), std::string::npos) << lines[i];
  EXPECT_NE(lines[i].find(", StdDeviation   = "), std::string::npos);
  EXPECT_EQ(lines[i + 1].rfind("#[Max     = ", 0), 0u);
  EXPECT_NE(lines[i + 1].find(std::to_string(h->max()) + ".000, Total count    = "), std::string::npos)
      << lines[i + 1];
  EXPECT_NE(lines[i + 1].find(std::to_string(h->count()) + "]"), std::string::npos);
  EXPECT_EQ(lines[i + 2], "#[Buckets =           37, SubBuckets     =          256]");
}

TEST(Hgrm, EmptyDistributionHasHeaderAndFooterOnly) {
  const std::vector<std::string> lines = lines_of(hgrm_text(LatencyDistribution(), ""));
  ASSERT_EQ(lines.size(), 5u);
  EXPECT_EQ(lines[0], "       Value     Percentile TotalCount 1/(1-Percentile)");
  EXPECT_EQ(lines[2].rfind("#[Mean", 0), 0u);
  EXPECT_NE(lines[3].find("Total count    =            0]"), std::string::npos) << lines[3];
}

TEST(Hgrm, OneValueGivesOneTickAndTheMaximum) {
  auto h = std::make_unique<LatencyHistogram>();
  h->record(777);
  const std::vector<std::string> lines = lines_of(hgrm_text(LatencyDistribution(*h), ""));
  ASSERT_EQ(lines.size(), 7u);
  EXPECT_EQ(parse_data_line(lines[2]).percentile, 0.0);
  EXPECT_EQ(parse_data_line(lines[2]).value, 777.0);
  EXPECT_EQ(parse_data_line(lines[3]).percentile, 1.0);
  EXPECT_EQ(parse_data_line(lines[3]).total, 1u);
}

}  // namespace
