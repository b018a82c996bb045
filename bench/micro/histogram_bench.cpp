// The cost of LatencyHistogram's two operations: record(), which sits on every measured path and must be a
// few nanoseconds, and percentile(), which walks the buckets and is only for reports.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "moirai/core/histogram.hpp"

namespace {

// Latency-like values spread over several powers of two, so that the bucket index varies from call to call as
// it does in a real run (a constant value would let the branch predictor and the cache flatter record()).
std::vector<std::uint64_t> sample_values(std::size_t n) {
  std::vector<std::uint64_t> values(n);
  std::uint64_t x = 0x9e3779b97f4a7c15ull;
  for (auto& v : values) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    v = 100 + (x % 1000) * ((x >> 32) % 64 == 0 ? 1000 : 1);  // mostly 100 ns..1.1 µs, with a tail to 1 ms
  }
  return values;
}

void BM_Record(benchmark::State& state) {
  auto h = std::make_unique<moirai::LatencyHistogram>();
  const auto values = sample_values(4096);
  std::size_t i = 0;
  for (auto _ : state) {
    h->record(values[i]);
    i = (i + 1) & (values.size() - 1);
  }
  benchmark::DoNotOptimize(h->count());
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Record);

void BM_RecordConstant(benchmark::State& state) {
  auto h = std::make_unique<moirai::LatencyHistogram>();
  std::uint64_t v = 1234;
  for (auto _ : state) {
    benchmark::DoNotOptimize(v);
    h->record(v);
  }
  benchmark::DoNotOptimize(h->count());
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RecordConstant);

void BM_Percentile(benchmark::State& state) {
  auto h = std::make_unique<moirai::LatencyHistogram>();
  for (std::uint64_t v : sample_values(1 << 20))
    h->record(v);
  const double p = static_cast<double>(state.range(0)) / 1000.0;
  for (auto _ : state)
    benchmark::DoNotOptimize(h->percentile(p));
}
// p50, p99 and p99.99 (in thousandths of a percent): the walk is longer the higher the percentile.
BENCHMARK(BM_Percentile)->Arg(50000)->Arg(99000)->Arg(99990);

}  // namespace
