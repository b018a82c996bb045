#include "distribution.hpp"

#include <algorithm>
#include <cmath>

namespace moirai::cli {

LatencyDistribution::LatencyDistribution(const LatencyHistogram& h)
    : count_(h.count()), min_(h.min()), max_(h.max()), mean_(h.mean()) {
  std::uint64_t cumulative = 0;
  h.for_each_bucket([&](std::uint64_t lowest, std::uint64_t highest, std::uint64_t n) {
    cumulative += n;
    buckets_.push_back(Bucket{lowest, highest, n, cumulative});
  });
}

double LatencyDistribution::stddev() const noexcept {
  if (count_ == 0) return 0;
  double sum = 0;
  for (const Bucket& b : buckets_) {
    const double middle = (static_cast<double>(b.lowest) + static_cast<double>(b.highest)) / 2;
    sum += static_cast<double>(b.count) * (middle - mean_) * (middle - mean_);
  }
  return std::sqrt(sum / static_cast<double>(count_));
}

const LatencyDistribution::Bucket* LatencyDistribution::bucket_at(double p) const noexcept {
  if (count_ == 0) return nullptr;
  const std::uint64_t rank = LatencyHistogram::rank_at_percentile(p, count_);
  const auto it = std::lower_bound(buckets_.begin(), buckets_.end(), rank,
                                   [](const Bucket& b, std::uint64_t r) { return b.cumulative < r; });
  return it == buckets_.end() ? &buckets_.back() : &*it;
}

std::uint64_t LatencyDistribution::percentile(double p) const noexcept {
  const Bucket* b = bucket_at(p);
  if (b == nullptr) return 0;
  // As LatencyHistogram::percentile: the last recording is the maximum, which a clamped top bucket cannot
  // represent; any other is its bucket's highest value, within [min, max].
  if (LatencyHistogram::rank_at_percentile(p, count_) >= count_) return max_;
  return std::clamp(b->highest, min_, max_);
}

}  // namespace moirai::cli
