// The pacer: a wait never returns before its deadline, and the margin it wakes early by follows how late
// the sleeps woke: it grows to the worst lateness seen (capped, so that one long stall is not learned), and
// decays back when the wake-ups are prompt again.
#include "moirai/core/pacer.hpp"

#include <gtest/gtest.h>

#include <vector>

#include "core_test_support.hpp"
#include "moirai/core/runtime.hpp"

namespace {

using moirai::WakeMargin;

TEST(WakeMargin, GrowsToTheWorstLatenessSeenPlusItsPad) {
  WakeMargin m;
  EXPECT_EQ(m.ns(), WakeMargin::kInitialNs + WakeMargin::kPadNs);
  m.learn(1'000'000, 1'000'000 + 120'000);
  EXPECT_EQ(m.ns(), 120'000 + WakeMargin::kPadNs);
}

TEST(WakeMargin, ALongStallIsLearnedOnlyUpToTheCap) {
  WakeMargin m;
  m.learn(0, 50'000'000);  // a 50 ms hold-off by the host
  EXPECT_EQ(m.ns(), WakeMargin::kLearnCapNs + WakeMargin::kPadNs);
}

TEST(WakeMargin, DecaysWhenWakeUpsArePromptAndNeverGoesBelowItsPad) {
  WakeMargin m;
  m.learn(0, 100'000);
  const std::int64_t before = m.ns();
  m.learn(0, 0);  // woke on time
  EXPECT_LT(m.ns(), before);
  for (int i = 0; i < 5000; ++i)
    m.learn(0, -5);  // early wake-ups count as on time
  EXPECT_GE(m.ns(), WakeMargin::kPadNs);
  EXPECT_LT(m.ns(), WakeMargin::kPadNs + 100);
}

TEST(PaceUntil, NeverReturnsBeforeItsDeadlineAndKeepsASchedule) {
  moirai::Runtime rt(moirai_test::one_shard());
  std::vector<std::int64_t> early;
  rt.run([&]() -> moirai::Task<void> {
    WakeMargin margin;
    const std::int64_t start = moirai::monotonic_ns();
    for (int step = 1; step <= 200; ++step) {
      const std::int64_t deadline = start + step * 100'000;  // every 100 us
      co_await moirai::pace_until(deadline, margin);
      const std::int64_t now = moirai::monotonic_ns();
      if (now < deadline) early.push_back(deadline - now);
    }
    co_await moirai::pace_until(start, margin);  // a deadline already past returns at once
  });
  EXPECT_TRUE(early.empty()) << early.size() << " waits returned before their deadline";
}

}  // namespace
