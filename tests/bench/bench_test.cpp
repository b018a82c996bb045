#include "bench.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "bench_support.hpp"
#include "moirai/core/error.hpp"

namespace {

using moirai::cli::BenchOptions;
using moirai::cli::latency_benches;
using moirai::cli::LatencyBench;
using moirai::cli::RunBudget;
using moirai::cli::detail::record_batches;
using moirai::cli::detail::share;
using moirai::cli::detail::TimedPasses;

TEST(LatencyBenches, AreListedInTheOrderMoiraiBenchRunsThem) {
  std::vector<std::string_view> names;
  for (const LatencyBench* b : latency_benches()) {
    names.push_back(b->name);
    EXPECT_FALSE(b->summary.empty()) << b->name;
    EXPECT_NE(b->run, nullptr) << b->name;
  }
  EXPECT_EQ(names, (std::vector<std::string_view>{"pingpong", "timer", "spawn", "alloc", "rt", "echo"}));
}

TEST(LatencyBenches, AnUnknownNameIsAnErrorListingTheBenches) {
  try {
    (void)moirai::cli::run_bench("nope", BenchOptions{});
    FAIL() << "no error";
  } catch (const moirai::Error& e) {
    EXPECT_NE(
        std::string(e.what()).find("unknown bench 'nope': use pingpong, timer, spawn, alloc, rt or echo"),
        std::string::npos)
        << e.what();
  }
}

TEST(TimedPasses, RunsAsManyPassesAsTheCountAllowsAndRecordsEach) {
  moirai::LatencyHistogram hist;
  TimedPasses passes(RunBudget{5, {}});
  std::uint64_t n = 0;
  for (std::uint64_t done = 0; passes.next(done); ++done) {
    ++n;
    passes.record(hist);
  }
  EXPECT_EQ(n, 5u);
  EXPECT_EQ(hist.count(), 5u);
}

TEST(TimedPasses, CountsOperationsNotPasses) {
  moirai::LatencyHistogram hist;
  TimedPasses passes(RunBudget{10, {}});
  std::uint64_t n = 0;
  for (std::uint64_t done = 0; passes.next(done); done += 4) {
    ++n;
    passes.record(hist, 4);
  }
  EXPECT_EQ(n, 3u);  // 0, 4 and 8 operations done before each pass
  EXPECT_EQ(hist.count(), 3u);
}

TEST(TimedPasses, AnEmptyBudgetRunsNoPass) {
  TimedPasses passes(RunBudget{});
  EXPECT_FALSE(passes.next(0));
}

TEST(RecordBatches, CallsTheOperationInWholeBatchesAndRecordsOneFigurePerBatch) {
  moirai::LatencyHistogram hist;
  std::uint64_t calls = 0;
  record_batches(RunBudget{100, {}}, 32, hist, [&calls] { ++calls; });
  EXPECT_EQ(calls, 128u);  // four batches: the fourth starts at 96, before the count is reached
  EXPECT_EQ(hist.count(), 4u);
}

TEST(Share, SplitsACountRoundingUpAndADurationEvenly) {
  const RunBudget b = share(RunBudget{10, std::chrono::milliseconds(100)}, 4);
  EXPECT_EQ(b.count, 3u);
  EXPECT_EQ(b.duration, std::chrono::milliseconds(25));
}

}  // namespace
