// A latency histogram for nanosecond values: log-linear buckets (the HdrHistogram layout) in a fixed array
// inside the object, so recording costs a count-leading-zeros, a shift and an add, and never allocates.
//
// Layout. Values below 2 * kSubBucketCount are kept exactly (one bucket per value). Above that, each power of
// two [2^m, 2^(m+1)) is split into kSubBucketCount equal buckets of width 2^(m - kSubBucketBits), so a bucket
// is never wider than 1/kSubBucketCount of the values it holds: with 128 sub-buckets, any value read back is
// within 0.79% of the one recorded. Values above kHighestTrackable are counted in the top bucket; min() and
// max() stay exact.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cfloat>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>

namespace moirai {

class LatencyHistogram {
 public:
  // 2^7 sub-buckets per power of two bounds the relative error by 1/128 (< 1%).
  static constexpr unsigned kSubBucketBits = 7;
  static constexpr std::uint64_t kSubBucketCount = std::uint64_t{1} << kSubBucketBits;
  // Values up to 2^44 - 1 ns (about 4.9 hours) are bucketed with full precision; larger ones are clamped.
  static constexpr unsigned kTrackableBits = 44;
  static constexpr std::uint64_t kHighestTrackable = (std::uint64_t{1} << kTrackableBits) - 1;
  // One group of kSubBucketCount buckets per bit of magnitude above kSubBucketBits, plus the exact range
  // below.
  static constexpr std::size_t kBucketCount = (kTrackableBits - kSubBucketBits + 1) * kSubBucketCount;

  constexpr LatencyHistogram() noexcept = default;

  void record(std::uint64_t v) noexcept {
    ++counts_[bucket_index(v)];
    ++total_;
    sum_ += v;
    // std::min/std::max on integers compile to conditional moves, not branches.
    min_ = std::min(min_, v);
    max_ = std::max(max_, v);
  }

  // Records `n` occurrences of `v` (for example a coordinated-omission correction, or a merged summary).
  void record_n(std::uint64_t v, std::uint64_t n) noexcept {
    if (n == 0) return;  // min/max must not move for an empty record
    counts_[bucket_index(v)] += n;
    total_ += n;
    sum_ += static_cast<Sum>(v) * n;
    min_ = std::min(min_, v);
    max_ = std::max(max_, v);
  }

  std::uint64_t count() const noexcept { return total_; }
  std::uint64_t min() const noexcept { return total_ == 0 ? 0 : min_; }
  std::uint64_t max() const noexcept { return max_; }
  // From the exact sum of the recorded values, not from the buckets.
  double mean() const noexcept {
    return total_ == 0 ? 0.0 : static_cast<double>(sum_) / static_cast<double>(total_);
  }

  // The value at percentile `p` (0..100, clamped): the highest value equivalent to the bucket that holds the
  // ceil(p% * count)-th smallest recording (HdrHistogram's valueAtPercentile), clamped to [min(), max()].
  // percentile(100) is max(); 0 when empty. Walks the buckets: O(kBucketCount), not for the hot path.
  std::uint64_t percentile(double p) const noexcept {
    if (total_ == 0) return 0;
    const std::uint64_t rank = rank_at_percentile(p, total_);
    // The last recording is the maximum, which the top bucket cannot represent once values were clamped.
    if (rank >= total_) return max_;
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < kBucketCount; ++i) {
      seen += counts_[i];
      if (seen >= rank) return std::clamp(highest_in_bucket(i), min_, max_);
    }
    return max_;  // unreachable: the buckets sum to total_
  }

  // The rank percentile(p) looks for among `total` recordings: ceil(p% of total), in [1, total]; 0 for none.
  // Public so that a copy of the buckets (a report's distribution) reads percentiles exactly as this does.
  // The product is computed in double, which may land a few ulps above an integer it should equal (99.9% of
  // 1000 is 999.0000000000001): step back by that rounding error before ceil.
  static std::uint64_t rank_at_percentile(double p, std::uint64_t total) noexcept {
    if (total == 0) return 0;
    if (!(p > 0.0)) return 1;  // also catches NaN
    if (p >= 100.0) return total;
    const double exact = p / 100.0 * static_cast<double>(total);
    const double rank = std::ceil(exact - exact * 4 * DBL_EPSILON);
    return std::clamp<std::uint64_t>(static_cast<std::uint64_t>(rank), 1, total);
  }

  void merge(const LatencyHistogram& other) noexcept {
    for (std::size_t i = 0; i < kBucketCount; ++i)
      counts_[i] += other.counts_[i];
    total_ += other.total_;
    sum_ += other.sum_;
    min_ = std::min(min_, other.min_);
    max_ = std::max(max_, other.max_);
  }

  // Field by field rather than `*this = {}`, which could build a 39 KB temporary on the stack first.
  void reset() noexcept {
    counts_.fill(0);
    total_ = 0;
    min_ = std::numeric_limits<std::uint64_t>::max();
    max_ = 0;
    sum_ = 0;
  }

  // Calls f(lowest_value, highest_value, count) for each non-empty bucket, in ascending order of value. The
  // top bucket's highest value is max() when clamped values made it larger than the bucket's own bound, so
  // that every recorded value lies within the range reported for it.
  template <class F>
  void for_each_bucket(F&& f) const {
    for (std::size_t i = 0; i < kBucketCount; ++i) {
      if (counts_[i] == 0) continue;
      std::uint64_t high = highest_in_bucket(i);
      if (i == kBucketCount - 1) high = std::max(high, max_);
      f(lowest_in_bucket(i), high, counts_[i]);
    }
  }

  // The index of v's bucket in [0, kBucketCount) (what SharedHistogram counts in).
  // shift = how many low bits the bucket ignores: 0 below 2 * kSubBucketCount, then one more per power of
  // two. OR-ing in kSubBucketCount makes the magnitude at least kSubBucketBits, so small values fall out with
  // shift 0 and bucket index v without a branch (and countl_zero never sees 0). Bucket index = shift *
  // kSubBucketCount + (v >> shift), where v >> shift lies in [kSubBucketCount, 2 * kSubBucketCount) once
  // shift > 0: consecutive groups of kSubBucketCount buckets, one per power of two.
  static constexpr std::size_t bucket_index(std::uint64_t v) noexcept {
    v = std::min(v, kHighestTrackable);
    const unsigned magnitude = 63u - static_cast<unsigned>(std::countl_zero(v | kSubBucketCount));
    const unsigned shift = magnitude - kSubBucketBits;
    return static_cast<std::size_t>(shift * kSubBucketCount + (v >> shift));
  }

  // The range of values that share v's bucket, i.e. that this histogram cannot tell apart from v.
  static constexpr std::uint64_t lowest_equivalent(std::uint64_t v) noexcept {
    return lowest_in_bucket(bucket_index(v));
  }
  static constexpr std::uint64_t highest_equivalent(std::uint64_t v) noexcept {
    return highest_in_bucket(bucket_index(v));
  }

 private:
  friend class SharedHistogram;  // fills a snapshot's counts directly

  // The exact sum of all recorded values: 2^64 ns is only 584 years, a sum of many large values can pass it.
  // A 128-bit add is add + adc, where a double would cost g++ a branch in the uint64 -> double conversion.
  __extension__ using Sum = unsigned __int128;  // __extension__: a GNU type, which -Wpedantic would flag

  static constexpr unsigned bucket_shift(std::size_t i) noexcept {
    // Buckets [0, 2 * kSubBucketCount) have shift 0; each later group of kSubBucketCount one more.
    const std::size_t group = i >> kSubBucketBits;
    return static_cast<unsigned>(group == 0 ? 0 : group - 1);
  }

  static constexpr std::uint64_t lowest_in_bucket(std::size_t i) noexcept {
    const unsigned shift = bucket_shift(i);
    return (static_cast<std::uint64_t>(i) - shift * kSubBucketCount) << shift;
  }

  static constexpr std::uint64_t highest_in_bucket(std::size_t i) noexcept {
    return lowest_in_bucket(i) + ((std::uint64_t{1} << bucket_shift(i)) - 1);
  }

  std::array<std::uint64_t, kBucketCount> counts_{};
  std::uint64_t total_ = 0;
  std::uint64_t min_ = std::numeric_limits<std::uint64_t>::max();
  std::uint64_t max_ = 0;
  Sum sum_ = 0;
};

static_assert(LatencyHistogram::highest_equivalent(LatencyHistogram::kHighestTrackable) ==
                  LatencyHistogram::kHighestTrackable,
              "the top bucket must end exactly at the highest trackable value");
static_assert(LatencyHistogram::lowest_equivalent(2 * LatencyHistogram::kSubBucketCount - 1) ==
                  2 * LatencyHistogram::kSubBucketCount - 1,
              "values below 2 * kSubBucketCount are exact");

}  // namespace moirai
