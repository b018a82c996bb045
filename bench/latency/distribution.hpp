// A bench row's whole latency distribution, kept after its LatencyHistogram is gone: the non-empty buckets
// only (a few hundred at most, where the histogram is a fixed 39 KB), enough to write HdrHistogram's
// percentile distribution and to plot latency by percentile.
#pragma once

#include <cstdint>
#include <vector>

#include "moirai/core/histogram.hpp"

namespace moirai::cli {

class LatencyDistribution {
 public:
  struct Bucket {
    std::uint64_t lowest = 0;  // the bucket's value range, as LatencyHistogram::for_each_bucket gives it
    std::uint64_t highest = 0;
    std::uint64_t count = 0;
    std::uint64_t cumulative = 0;  // recordings in this bucket and every one below it
  };

  LatencyDistribution() = default;
  explicit LatencyDistribution(const LatencyHistogram& h);

  bool empty() const noexcept { return count_ == 0; }
  std::uint64_t count() const noexcept { return count_; }
  std::uint64_t min() const noexcept { return min_; }
  std::uint64_t max() const noexcept { return max_; }
  double mean() const noexcept { return mean_; }
  // From each bucket's middle value, as HdrHistogram computes it.
  double stddev() const noexcept;
  const std::vector<Bucket>& buckets() const noexcept { return buckets_; }

  // The bucket that holds the recording at percentile p (0..100): the one LatencyHistogram::percentile reads.
  // Null when empty.
  const Bucket* bucket_at(double p) const noexcept;
  // LatencyHistogram::percentile(p) of the histogram this was taken from (exactly, for values below its
  // kHighestTrackable).
  std::uint64_t percentile(double p) const noexcept;

 private:
  std::vector<Bucket> buckets_;
  std::uint64_t count_ = 0;
  std::uint64_t min_ = 0;
  std::uint64_t max_ = 0;
  double mean_ = 0;
};

}  // namespace moirai::cli
