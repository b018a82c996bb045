#include "baselines.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>

namespace {

using moirai::LatencyHistogram;
using moirai::cli::RunBudget;
using namespace std::chrono_literals;

// The machines this runs on have CPUs 0 and 1; no machine has CPU 4095 online.
constexpr int kNoSuchCpu = 4095;

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

// The process's mapped bytes (VmSize in /proc/self/status, in KiB): adjacent mappings merge, sizes add up.
std::size_t mapped_kib() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmSize:", 0) == 0) return std::stoul(line.substr(7));
  }
  return 0;
}

TEST(Baseline, PingPongRecordsOneRoundTripPerIteration) {
  auto h = std::make_unique<LatencyHistogram>();
  moirai::cli::cacheline_pingpong(0, 1, RunBudget{.count = 3000}, *h);
  EXPECT_EQ(h->count(), 3000u);
  EXPECT_GT(h->min(), 0u);
  EXPECT_GT(h->percentile(50), 0u);
  EXPECT_GE(h->max(), h->percentile(50));
}

TEST(Baseline, PingPongStopsOnADurationBudget) {
  auto h = std::make_unique<LatencyHistogram>();
  moirai::cli::cacheline_pingpong(1, 0, RunBudget{.count = 0, .duration = 1ms}, *h);
  EXPECT_GT(h->count(), 0u);
}

TEST(Baseline, PingPongWithAnEmptyBudgetRecordsNothing) {
  auto h = std::make_unique<LatencyHistogram>();
  moirai::cli::cacheline_pingpong(0, 1, RunBudget{}, *h);
  EXPECT_EQ(h->count(), 0u);
}

TEST(Baseline, PingPongRefusesOneCpuForBothThreads) {
  auto h = std::make_unique<LatencyHistogram>();
  EXPECT_THROW(moirai::cli::cacheline_pingpong(0, 0, RunBudget{.count = 10}, *h), std::invalid_argument);
}

TEST(Baseline, PingPongPinFailureNamesTheCpu) {
  auto h = std::make_unique<LatencyHistogram>();
  // Either thread's CPU may be the bad one; the other thread must be wound down cleanly in both cases.
  const std::string as_a =
      message_of([&] { moirai::cli::cacheline_pingpong(kNoSuchCpu, 0, RunBudget{.count = 10}, *h); });
  EXPECT_NE(as_a.find("4095"), std::string::npos) << as_a;
  const std::string as_b =
      message_of([&] { moirai::cli::cacheline_pingpong(0, kNoSuchCpu, RunBudget{.count = 10}, *h); });
  EXPECT_NE(as_b.find("4095"), std::string::npos) << as_b;
  const std::string negative =
      message_of([&] { moirai::cli::cacheline_pingpong(0, -1, RunBudget{.count = 10}, *h); });
  EXPECT_NE(negative.find("-1"), std::string::npos) << negative;
  EXPECT_EQ(h->count(), 0u);
}

// The two-line variant shares the ping-pong: one round trip recorded per iteration, on either pair of CPUs,
// and the same refusals.
TEST(Baseline, TwoLinesRecordsOneRoundTripPerIterationAndRefusesWhatThePingPongRefuses) {
  auto h = std::make_unique<LatencyHistogram>();
  moirai::cli::two_lines_pingpong(0, 1, RunBudget{.count = 3000}, *h);
  moirai::cli::two_lines_pingpong(1, 0, RunBudget{.count = 1000}, *h);
  EXPECT_EQ(h->count(), 4000u);
  EXPECT_GT(h->min(), 0u);
  EXPECT_THROW(moirai::cli::two_lines_pingpong(1, 1, RunBudget{.count = 10}, *h), std::invalid_argument);
  const std::string why =
      message_of([&] { moirai::cli::two_lines_pingpong(kNoSuchCpu, 0, RunBudget{.count = 10}, *h); });
  EXPECT_NE(why.find("4095"), std::string::npos) << why;
  EXPECT_EQ(h->count(), 4000u);
}

// 3000 round trips wrap each 1024-slot ring twice: a slot taken before it was written again would stall the
// ping-pong, and one written over before it was read would desynchronise it; both end in a hang, not a count.
TEST(Baseline, SlotRingRecordsOneRoundTripPerIterationAcrossWraps) {
  for (std::size_t payload : {std::size_t{48}, std::size_t{200}}) {
    auto h = std::make_unique<LatencyHistogram>();
    moirai::cli::shm_ring_pingpong(0, 1, payload, RunBudget{.count = 3000}, *h);
    EXPECT_EQ(h->count(), 3000u) << payload << "-byte payload";
    EXPECT_GT(h->min(), 0u);
  }
}

TEST(Baseline, SlotRingRefusesOneCpuForBothThreads) {
  auto h = std::make_unique<LatencyHistogram>();
  EXPECT_THROW(moirai::cli::shm_ring_pingpong(1, 1, 48, RunBudget{.count = 10}, *h), std::invalid_argument);
  EXPECT_EQ(h->count(), 0u);
}

// The rings are mapped before the threads are pinned: a CPU that cannot be had throws, naming it, and leaves
// no mapping behind. The first try warms up what stays mapped on purpose (the thread stacks the C library
// keeps for reuse); three more leave the process's mapped size as it was (each ring pair is 128 KiB).
TEST(Baseline, SlotRingUnmapsItsRingsWhenAThreadCannotBePinned) {
  auto h = std::make_unique<LatencyHistogram>();
  auto refused = [&] {
    return message_of([&] { moirai::cli::shm_ring_pingpong(0, kNoSuchCpu, 48, RunBudget{.count = 10}, *h); });
  };
  (void)refused();
  const std::size_t before = mapped_kib();
  ASSERT_GT(before, 0u);
  for (int i = 0; i < 3; ++i) {
    const std::string why = refused();
    EXPECT_NE(why.find("4095"), std::string::npos) << why;
  }
  EXPECT_EQ(mapped_kib(), before);
  EXPECT_EQ(h->count(), 0u);
}

TEST(Baseline, LatenessRecordsOneValuePerIteration) {
  auto h = std::make_unique<LatencyHistogram>();
  moirai::cli::clock_nanosleep_lateness(0, 100us, RunBudget{.count = 500}, *h);
  EXPECT_EQ(h->count(), 500u);
  // A wake-up is never early, and the kernel's wake-up path costs something: some lateness is always seen.
  EXPECT_GT(h->max(), 0u);
  EXPECT_GE(h->max(), h->percentile(50));
}

TEST(Baseline, LatenessStopsOnADurationBudget) {
  auto h = std::make_unique<LatencyHistogram>();
  moirai::cli::clock_nanosleep_lateness(1, 100us, RunBudget{.duration = 2ms}, *h);
  EXPECT_GT(h->count(), 0u);
}

TEST(Baseline, LatenessPinFailureNamesTheCpu) {
  auto h = std::make_unique<LatencyHistogram>();
  const std::string msg = message_of(
      [&] { moirai::cli::clock_nanosleep_lateness(kNoSuchCpu, 100us, RunBudget{.count = 10}, *h); });
  EXPECT_NE(msg.find("4095"), std::string::npos) << msg;
  EXPECT_EQ(h->count(), 0u);
}

TEST(Baseline, LatenessRefusesANonPositiveInterval) {
  auto h = std::make_unique<LatencyHistogram>();
  EXPECT_THROW(moirai::cli::clock_nanosleep_lateness(0, 0ns, RunBudget{.count = 10}, *h),
               std::invalid_argument);
}

}  // namespace
