// RtConstraints: every validation rule (and that its message names the field, the rule and the values), the
// derived figures, the hot-path checks, and that creating valid constraints allocates nothing.
#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <new>
#include <string>

#include "moirai/rt/constraints.hpp"
#include "moirai/rt/error.hpp"

namespace {
std::atomic<bool> g_counting{false};
std::atomic<int> g_allocations{0};
}  // namespace

void* operator new(std::size_t n) {
  if (g_counting.load(std::memory_order_relaxed)) g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}

namespace moirai::rt {
namespace {

using namespace std::chrono_literals;
using Duration = RtConstraints::Duration;

// Runs `make`, expects RtError(EINVAL) whose message contains every one of `parts`.
template <typename Make>
void expect_invalid(Make make, std::initializer_list<const char*> parts) {
  try {
    make();
    ADD_FAILURE() << "no exception";
  } catch (const RtError& e) {
    EXPECT_EQ(e.code(), std::errc::invalid_argument);
    for (const char* part : parts)
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
  }
}

TEST(RtConstraints, DefaultIsUnconstrainedFifo) {
  const RtConstraints c;
  EXPECT_EQ(c.policy().kind, PolicyKind::fifo);
  EXPECT_EQ(c.deadline(), Duration::zero());
  EXPECT_EQ(c.period(), Duration::zero());
  EXPECT_EQ(c.wcet(), Duration::zero());
  EXPECT_FALSE(c.is_periodic());
  EXPECT_FALSE(c.has_deadline());
  EXPECT_EQ(c.utilization(), 0.0);
  EXPECT_FALSE(c.deadline_missed(0, 1'000'000'000));
  EXPECT_FALSE(c.wcet_overrun(1h));
  EXPECT_EQ(RtConstraints::fifo(), c);
}

TEST(RtConstraints, PeriodicWithImplicitDeadline) {
  const RtConstraints c = RtConstraints::periodic(10ms, 2ms);
  EXPECT_EQ(c.policy().kind, PolicyKind::rate_monotonic);
  EXPECT_EQ(c.period(), 10ms);
  EXPECT_EQ(c.deadline(), 10ms);  // implicit: the period
  EXPECT_EQ(c.wcet(), 2ms);
  EXPECT_TRUE(c.is_periodic());
  EXPECT_TRUE(c.has_deadline());
  EXPECT_DOUBLE_EQ(c.utilization(), 0.2);
}

TEST(RtConstraints, PeriodicEdfWithConstrainedDeadline) {
  const RtConstraints c = RtConstraints::periodic(10ms, 1ms, 4ms, RtSchedulingPolicy::DeadlineDriven());
  EXPECT_EQ(c.policy().kind, PolicyKind::deadline_driven);
  EXPECT_EQ(c.deadline(), 4ms);
  EXPECT_DOUBLE_EQ(c.utilization(), 0.1);  // wcet / period, not wcet / deadline
}

TEST(RtConstraints, OneShotDeadline) {
  const RtConstraints c = RtConstraints::deadline(8ms, 2ms);
  EXPECT_EQ(c.policy().kind, PolicyKind::deadline_driven);
  EXPECT_FALSE(c.is_periodic());
  EXPECT_TRUE(c.has_deadline());
  EXPECT_DOUBLE_EQ(c.utilization(), 0.25);  // wcet / deadline
  EXPECT_DOUBLE_EQ(RtConstraints::deadline(8ms).utilization(), 0.0);
}

TEST(RtConstraints, RoundRobin) {
  const RtConstraints c = RtConstraints::round_robin(500us);
  EXPECT_EQ(c.policy(), RtSchedulingPolicy::RoundRobin(500us));
  EXPECT_FALSE(c.has_deadline());
  EXPECT_EQ(c.utilization(), 0.0);
}

TEST(RtConstraints, NegativeValuesAreRejected) {
  expect_invalid([] { RtConstraints::periodic(-1ms, 1ms); }, {"period", "negative", "-1000000 ns"});
  expect_invalid([] { RtConstraints::periodic(10ms, -1ms); }, {"wcet", "negative", "-1000000 ns"});
  expect_invalid([] { RtConstraints::periodic(10ms, 1ms, -2ms); }, {"deadline", "negative", "-2000000 ns"});
  expect_invalid([] { RtConstraints::deadline(-5ms); }, {"deadline", "negative"});
  expect_invalid([] { RtConstraints::round_robin(-1us); }, {"time_slice", "negative", "-1000 ns"});
}

TEST(RtConstraints, PeriodicNeedsPeriodAndWcet) {
  expect_invalid([] { RtConstraints::periodic(0ms, 1ms, 0ms, RtSchedulingPolicy::DeadlineDriven()); },
                 {"period", "> 0", "0 ns"});
  expect_invalid([] { RtConstraints::periodic(0ms, 1ms); }, {"period", "> 0", "rate-monotonic"});
  expect_invalid([] { RtConstraints::periodic(10ms, 0ms); }, {"wcet", "> 0", "periodic"});
}

TEST(RtConstraints, WcetDeadlinePeriodOrder) {
  expect_invalid([] { RtConstraints::periodic(10ms, 3ms, 2ms); },
                 {"wcet (3000000 ns)", "deadline (2000000 ns)", "wcet <= deadline <= period"});
  expect_invalid([] { RtConstraints::periodic(10ms, 11ms); }, {"wcet (11000000 ns)", "(10000000 ns)"});
  expect_invalid([] { RtConstraints::periodic(10ms, 1ms, 12ms); },
                 {"deadline (12000000 ns)", "period (10000000 ns)", "wcet <= deadline <= period"});
  expect_invalid([] { RtConstraints::deadline(2ms, 3ms); }, {"wcet (3000000 ns)", "deadline (2000000 ns)"});
  // Equal values are allowed: wcet == deadline == period.
  EXPECT_NO_THROW(RtConstraints::periodic(5ms, 5ms, 5ms));
}

TEST(RtConstraints, PolicyMustFitTheShape) {
  expect_invalid([] { RtConstraints::periodic(10ms, 1ms, 0ms, RtSchedulingPolicy::Fifo()); },
                 {"period", "rate-monotonic or deadline-driven"});
  expect_invalid([] { RtConstraints::periodic(10ms, 1ms, 0ms, RtSchedulingPolicy::RoundRobin(1ms)); },
                 {"round-robin"});
  expect_invalid([] { RtConstraints::deadline(0ms); }, {"deadline", "> 0"});
  expect_invalid([] { RtConstraints::round_robin(0ms); }, {"time_slice", "> 0", "round-robin"});
}

TEST(RtConstraints, FindFaultAndDescribeMatchTheConstructors) {
  EXPECT_EQ(RtConstraints::find_fault(RtSchedulingPolicy::RateMonotonic(), 0ms, 10ms, 2ms),
            ConstraintFault::ok);
  EXPECT_EQ(RtConstraints::find_fault(RtSchedulingPolicy::DeadlineDriven(), 5ms, 0ms, 1ms),
            ConstraintFault::ok);
  EXPECT_EQ(RtConstraints::describe(ConstraintFault::ok, RtSchedulingPolicy::Fifo(), 0ms, 0ms, 0ms), "");
  const ConstraintFault fault =
      RtConstraints::find_fault(RtSchedulingPolicy::RateMonotonic(), 2ms, 10ms, 3ms);
  EXPECT_EQ(fault, ConstraintFault::wcet_exceeds_deadline);
  const std::string message =
      RtConstraints::describe(fault, RtSchedulingPolicy::RateMonotonic(), 2ms, 10ms, 3ms);
  EXPECT_NE(message.find("wcet"), std::string::npos);
  try {
    RtConstraints::periodic(10ms, 3ms, 2ms);
    ADD_FAILURE();
  } catch (const RtError& e) {
    EXPECT_EQ(std::string(e.what()).rfind(message, 0), 0u)
        << e.what();  // system_error appends the errno text
  }
  EXPECT_EQ(RtConstraints::find_fault(RtSchedulingPolicy::RateMonotonic(), 0ms, 10ms, 0ms),
            ConstraintFault::wcet_not_positive);
  EXPECT_EQ(RtConstraints::find_fault(RtSchedulingPolicy::Fifo(), 0ms, 0ms, 0ms), ConstraintFault::ok);
}

TEST(RtConstraints, DeadlineMissedIsStrictlyAfterTheDeadline) {
  const RtConstraints c = RtConstraints::deadline(Duration(500));
  EXPECT_FALSE(c.deadline_missed(1000, 1000));
  EXPECT_FALSE(c.deadline_missed(1000, 1500));  // done exactly at the deadline: on time
  EXPECT_TRUE(c.deadline_missed(1000, 1501));
  const RtConstraints p = RtConstraints::periodic(10ms, 1ms, 4ms);
  EXPECT_FALSE(p.deadline_missed(0, 4'000'000));
  EXPECT_TRUE(p.deadline_missed(0, 4'000'001));
}

TEST(RtConstraints, WcetOverrun) {
  const RtConstraints c = RtConstraints::periodic(10ms, 2ms);
  EXPECT_FALSE(c.wcet_overrun(2ms));
  EXPECT_TRUE(c.wcet_overrun(2ms + Duration(1)));
}

TEST(RtConstraints, CreatingValidConstraintsDoesNotAllocate) {
  g_allocations = 0;
  g_counting = true;
  int periodic = 0;
  for (int i = 1; i <= 1000; ++i) {
    const RtConstraints c = RtConstraints::periodic(Duration(10'000 + i), Duration(i), Duration(5'000 + i));
    const RtConstraints d = RtConstraints::deadline(Duration(1'000 + i), Duration(i));
    const RtConstraints r = RtConstraints::round_robin(Duration(i));
    periodic += c.is_periodic() + d.has_deadline() + (r.policy().kind == PolicyKind::round_robin);
  }
  g_counting = false;
  EXPECT_EQ(periodic, 3000);
  EXPECT_EQ(g_allocations.load(), 0);
}

TEST(RtSchedulingPolicy, Names) {
  EXPECT_STREQ(to_string(PolicyKind::fifo), "fifo");
  EXPECT_STREQ(to_string(PolicyKind::round_robin), "round-robin");
  EXPECT_STREQ(to_string(PolicyKind::deadline_driven), "deadline-driven");
  EXPECT_STREQ(to_string(PolicyKind::rate_monotonic), "rate-monotonic");
  static_assert(RtSchedulingPolicy::RoundRobin(std::chrono::nanoseconds(5)).time_slice.count() == 5);
}

}  // namespace
}  // namespace moirai::rt
