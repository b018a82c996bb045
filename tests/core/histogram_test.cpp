#include "moirai/core/histogram.hpp"

#include <gtest/gtest.h>

#include "../support/allocation_counter.hpp"

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <memory>
#include <new>
#include <tuple>
#include <vector>

namespace {
int* volatile g_escape = nullptr;
}  // namespace

namespace {

using moirai::LatencyHistogram;

TEST(Histogram, EmptyReportsZeros) {
  LatencyHistogram h;
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.min(), 0u);
  EXPECT_EQ(h.max(), 0u);
  EXPECT_EQ(h.mean(), 0.0);
  EXPECT_EQ(h.percentile(0), 0u);
  EXPECT_EQ(h.percentile(50), 0u);
  EXPECT_EQ(h.percentile(100), 0u);
  int buckets = 0;
  h.for_each_bucket([&](std::uint64_t, std::uint64_t, std::uint64_t) { ++buckets; });
  EXPECT_EQ(buckets, 0);
}

TEST(Histogram, SmallValuesAreExact) {
  LatencyHistogram h;
  for (std::uint64_t v = 0; v < 2 * LatencyHistogram::kSubBucketCount; ++v) {
    EXPECT_EQ(LatencyHistogram::lowest_equivalent(v), v);
    EXPECT_EQ(LatencyHistogram::highest_equivalent(v), v);
  }
  h.record(3);
  h.record(7);
  h.record(7);
  h.record(100);
  EXPECT_EQ(h.count(), 4u);
  EXPECT_EQ(h.min(), 3u);
  EXPECT_EQ(h.max(), 100u);
  EXPECT_DOUBLE_EQ(h.mean(), (3.0 + 7 + 7 + 100) / 4);
  EXPECT_EQ(h.percentile(0), 3u);
  EXPECT_EQ(h.percentile(25), 3u);
  EXPECT_EQ(h.percentile(26), 7u);
  EXPECT_EQ(h.percentile(50), 7u);
  EXPECT_EQ(h.percentile(75), 7u);
  EXPECT_EQ(h.percentile(76), 100u);
  EXPECT_EQ(h.percentile(100), 100u);
}

TEST(Histogram, ZeroIsARecordableValue) {
  LatencyHistogram h;
  h.record(0);
  EXPECT_EQ(h.count(), 1u);
  EXPECT_EQ(h.min(), 0u);
  EXPECT_EQ(h.max(), 0u);
  EXPECT_EQ(h.percentile(50), 0u);
}

TEST(Histogram, BucketsTileTheRangeWithBoundedWidth) {
  // Every bucket starts right after the previous one ends, and none is wider than 1/kSubBucketCount of its
  // lowest value: the relative-error guarantee, checked at every power of two and its neighbours.
  for (unsigned bit = 8; bit < LatencyHistogram::kTrackableBits; ++bit) {
    const std::uint64_t p = std::uint64_t{1} << bit;
    for (std::uint64_t v : {p - 1, p, p + 1, p + p / 3}) {
      const std::uint64_t lo = LatencyHistogram::lowest_equivalent(v);
      const std::uint64_t hi = LatencyHistogram::highest_equivalent(v);
      ASSERT_LE(lo, v);
      ASSERT_GE(hi, v);
      ASSERT_LT(static_cast<double>(hi - lo), static_cast<double>(lo) / 100.0) << "v=" << v;
    }
    EXPECT_EQ(LatencyHistogram::highest_equivalent(p - 1) + 1, LatencyHistogram::lowest_equivalent(p));
  }
}

TEST(Histogram, UniformPercentilesWithinOnePercent) {
  LatencyHistogram h;
  constexpr std::uint64_t kN = 100000;
  for (std::uint64_t v = 1; v <= kN; ++v)
    h.record(v);
  EXPECT_EQ(h.count(), kN);
  EXPECT_EQ(h.min(), 1u);
  EXPECT_EQ(h.max(), kN);
  EXPECT_DOUBLE_EQ(h.mean(), (kN + 1) / 2.0);
  for (double p : {1.0, 10.0, 25.0, 50.0, 90.0, 99.0, 99.9, 99.99}) {
    const double expected = p / 100.0 * kN;
    const auto got = static_cast<double>(h.percentile(p));
    EXPECT_GE(got, expected) << "p" << p;  // the highest equivalent value is never below the true one
    EXPECT_LE(got, expected * 1.01) << "p" << p;
  }
  EXPECT_EQ(h.percentile(100), kN);
}

TEST(Histogram, PercentileRankIsNotPushedUpByRounding) {
  // 99.9% of 1000 is exactly the 999th value; floating-point rounding must not make it the 1000th.
  LatencyHistogram h;
  for (std::uint64_t v = 1; v <= 1000; ++v)
    h.record(v * 1000);
  EXPECT_EQ(h.percentile(99.9), LatencyHistogram::highest_equivalent(999000));
  EXPECT_EQ(h.percentile(100), 1000000u);
}

TEST(Histogram, RecordNEqualsRepeatedRecord) {
  LatencyHistogram a;
  LatencyHistogram b;
  for (int i = 0; i < 5; ++i)
    a.record(12345);
  a.record(7);
  b.record_n(12345, 5);
  b.record_n(7, 1);
  b.record_n(999999, 0);  // recording nothing changes nothing
  EXPECT_EQ(a.count(), b.count());
  EXPECT_EQ(a.min(), b.min());
  EXPECT_EQ(a.max(), b.max());
  EXPECT_DOUBLE_EQ(a.mean(), b.mean());
  for (double p : {0.0, 10.0, 50.0, 99.0, 100.0})
    EXPECT_EQ(a.percentile(p), b.percentile(p));
}

std::vector<std::tuple<std::uint64_t, std::uint64_t, std::uint64_t>> buckets_of(const LatencyHistogram& h) {
  std::vector<std::tuple<std::uint64_t, std::uint64_t, std::uint64_t>> out;
  h.for_each_bucket(
      [&](std::uint64_t lo, std::uint64_t hi, std::uint64_t n) { out.emplace_back(lo, hi, n); });
  return out;
}

TEST(Histogram, MergeEqualsRecordingBoth) {
  auto a = std::make_unique<LatencyHistogram>();
  auto b = std::make_unique<LatencyHistogram>();
  auto both = std::make_unique<LatencyHistogram>();
  std::uint64_t x = 88172645463325252ull;  // xorshift64: a fixed, spread-out sequence
  for (int i = 0; i < 20000; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    const std::uint64_t v = x % 5000000;
    (i % 3 == 0 ? *a : *b).record(v);
    both->record(v);
  }
  a->merge(*b);
  EXPECT_EQ(a->count(), both->count());
  EXPECT_EQ(a->min(), both->min());
  EXPECT_EQ(a->max(), both->max());
  EXPECT_DOUBLE_EQ(a->mean(), both->mean());
  for (double p : {0.0, 1.0, 50.0, 90.0, 99.0, 99.9, 99.99, 100.0})
    EXPECT_EQ(a->percentile(p), both->percentile(p)) << "p" << p;
  EXPECT_EQ(buckets_of(*a), buckets_of(*both));
}

TEST(Histogram, MergeWithEmptyKeepsMinAndMax) {
  LatencyHistogram a;
  LatencyHistogram empty;
  a.record(500);
  a.merge(empty);
  EXPECT_EQ(a.min(), 500u);
  EXPECT_EQ(a.max(), 500u);
  empty.merge(a);
  EXPECT_EQ(empty.count(), 1u);
  EXPECT_EQ(empty.min(), 500u);
}

TEST(Histogram, ResetEmptiesEverything) {
  LatencyHistogram h;
  h.record(10);
  h.record(1000000);
  h.reset();
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.min(), 0u);
  EXPECT_EQ(h.max(), 0u);
  EXPECT_EQ(h.mean(), 0.0);
  EXPECT_EQ(h.percentile(50), 0u);
  EXPECT_TRUE(buckets_of(h).empty());
  h.record(42);
  EXPECT_EQ(h.min(), 42u);
  EXPECT_EQ(h.max(), 42u);
}

TEST(Histogram, HugeValuesAreClampedButMaxIsExact) {
  LatencyHistogram h;
  const std::uint64_t huge = std::uint64_t{1} << 60;
  const std::uint64_t top = std::numeric_limits<std::uint64_t>::max();
  h.record(1000);
  h.record(huge);
  h.record(top);
  EXPECT_EQ(h.count(), 3u);
  EXPECT_EQ(h.max(), top);
  EXPECT_EQ(h.min(), 1000u);
  EXPECT_EQ(h.percentile(100), top);
  // The sum passes 2^64 but the mean does not wrap.
  EXPECT_DOUBLE_EQ(h.mean(), (1000.0 + static_cast<double>(huge) + static_cast<double>(top)) / 3);
  // The second value is in the top bucket, whose highest equivalent is the highest trackable value.
  EXPECT_EQ(h.percentile(50), LatencyHistogram::kHighestTrackable);
  const auto buckets = buckets_of(h);
  ASSERT_EQ(buckets.size(), 2u);
  EXPECT_EQ(std::get<2>(buckets[1]), 2u);
  EXPECT_EQ(std::get<1>(buckets[1]), top);  // every recorded value lies inside its bucket's reported range
  // 2^40 itself is still within the precise range.
  const std::uint64_t t40 = std::uint64_t{1} << 40;
  EXPECT_LE(LatencyHistogram::highest_equivalent(t40) - t40, t40 / 100);
}

TEST(Histogram, ForEachBucketIsAscendingAndSumsToCount) {
  LatencyHistogram h;
  for (std::uint64_t v : {5ull, 5ull, 300ull, 70000ull, 70001ull, 9000000000ull})
    h.record(v);
  const auto buckets = buckets_of(h);
  std::uint64_t total = 0;
  std::uint64_t prev_hi = 0;
  bool first = true;
  for (const auto& [lo, hi, n] : buckets) {
    EXPECT_LE(lo, hi);
    if (!first) {
      EXPECT_GT(lo, prev_hi);
    }
    first = false;
    prev_hi = hi;
    total += n;
  }
  EXPECT_EQ(total, h.count());
  ASSERT_EQ(buckets.size(), 4u);  // 70000 and 70001 share a bucket
  EXPECT_EQ(buckets[0], std::make_tuple(5ull, 5ull, 2ull));
}

TEST(Histogram, ConstructRecordAndQueryDoNotAllocate) {
  using moirai_test::g_allocations;
  std::uint64_t sink = 0;
  moirai_test::g_counting.store(true);
  const std::uint64_t before = g_allocations.load();
  {
    LatencyHistogram h;
    LatencyHistogram other;
    for (std::uint64_t v = 0; v < 100000; v += 7)
      h.record(v * 13);
    h.record(std::numeric_limits<std::uint64_t>::max());
    h.record_n(1234, 10);
    other.record(5);
    h.merge(other);
    sink = h.percentile(99.9) + h.min() + h.max();
    h.for_each_bucket([&](std::uint64_t lo, std::uint64_t, std::uint64_t) { sink += lo; });
    h.reset();
  }
  const std::uint64_t after = g_allocations.load();  // read before any assertion, which may allocate
  EXPECT_EQ(after, before);
  EXPECT_NE(sink, 0u);
  // The counter itself works, so the zero above means something.
  auto p = std::make_unique<int>(1);
  g_escape = p.get();  // a compiler may elide an allocation nobody observes
  EXPECT_GT(g_allocations.load(), before);
  moirai_test::g_counting.store(false);
}

}  // namespace
