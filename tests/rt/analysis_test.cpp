// Schedulability tests against task sets whose answers are known. Every expected number is worked out by hand
// in the comment beside it; the sets are the classic textbook ones (G. Buttazzo, "Hard Real-Time Computing
// Systems", 3rd ed., chapter 4: the RM/EDF pair (2,5),(4,7) and the response-time example (1,4),(2,6),(3,10))
// plus small sets built to sit on one side of each bound.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "moirai/rt/analysis.hpp"

namespace moirai::rt {
namespace {

using std::chrono::nanoseconds;

// Times in abstract units (1 unit = 1 ns here; the tests are scale-free).
RtConstraints rm(std::int64_t c, std::int64_t t) {
  return RtConstraints::periodic(nanoseconds(t), nanoseconds(c));
}
RtConstraints edf(std::int64_t c, std::int64_t d, std::int64_t t) {
  return RtConstraints::periodic(nanoseconds(t), nanoseconds(c), nanoseconds(d),
                                 RtSchedulingPolicy::DeadlineDriven());
}
RtConstraints fp(std::int64_t c, std::int64_t d, std::int64_t t) {
  return RtConstraints::periodic(nanoseconds(t), nanoseconds(c), nanoseconds(d));
}

TEST(Analysis, LiuLaylandBoundValues) {
  // n(2^(1/n) - 1): 1 -> 1, 2 -> 0.828427, 3 -> 0.779763.
  const std::vector<RtConstraints> one{rm(1, 2)};
  EXPECT_DOUBLE_EQ(liu_layland_test(one).bound, 1.0);
  const std::vector<RtConstraints> two{rm(1, 4), rm(1, 5)};
  EXPECT_NEAR(liu_layland_test(two).bound, 0.828427, 1e-6);
  const std::vector<RtConstraints> three{rm(1, 4), rm(1, 5), rm(1, 10)};
  const AnalysisResult r = liu_layland_test(three);
  EXPECT_NEAR(r.bound, 0.779763, 1e-6);
  // U = 0.25 + 0.2 + 0.1 = 0.55 <= 0.7798.
  EXPECT_TRUE(r.schedulable);
  EXPECT_DOUBLE_EQ(r.utilization, 0.55);
  EXPECT_EQ(r.test, "liu-layland");
}

TEST(Analysis, ButtazzoResponseTimeExample) {
  // (C,T) = (1,4), (2,6), (3,10). U = 0.25 + 0.3333 + 0.3 = 0.8833: above the LL bound 0.7798, and
  // prod(U_i + 1) = 1.25 * 1.3333 * 1.3 = 2.1667 > 2, so both sufficient tests fail. RTA:
  //   R1 = 1
  //   R2: 3 -> 2 + ceil(3/4)*1 = 3                          => R2 = 3
  //   R3: 6 -> 3 + 2*1 + 1*2 = 7 -> 3 + 2 + 4 = 9 -> 3 + 3 + 4 = 10 -> 10  => R3 = 10 = D3, schedulable.
  const std::vector<RtConstraints> set{rm(1, 4), rm(2, 6), rm(3, 10)};
  EXPECT_NEAR(total_utilization(set), 0.883333, 1e-6);
  EXPECT_FALSE(liu_layland_test(set).schedulable);
  const AnalysisResult hyp = hyperbolic_test(set);
  EXPECT_FALSE(hyp.schedulable);
  EXPECT_NE(hyp.explanation.find("2.1667"), std::string::npos) << hyp.explanation;
  const AnalysisResult r = response_time_analysis(set);
  EXPECT_TRUE(r.schedulable) << r.explanation;
  EXPECT_EQ(r.test, "response-time");
  ASSERT_EQ(r.response_times.size(), 3u);
  EXPECT_EQ(r.response_times[0].count(), 1);
  EXPECT_EQ(r.response_times[1].count(), 3);
  EXPECT_EQ(r.response_times[2].count(), 10);
  EXPECT_FALSE(r.first_failing_task.has_value());
}

TEST(Analysis, LiuLaylandFailsHyperbolicPasses) {
  // (C,T) = (7,10), (17,100): U = 0.7 + 0.17 = 0.87 > 0.8284 (LL, n = 2), but prod = 1.7 * 1.17 = 1.989 <= 2.
  // RTA: R1 = 7; R2: 24 -> 17 + 3*7 = 38 -> 17 + 28 = 45 -> 52 -> 59 -> 17 + ceil(59/10)*7 = 59 => R2 = 59.
  const std::vector<RtConstraints> set{rm(7, 10), rm(17, 100)};
  EXPECT_FALSE(liu_layland_test(set).schedulable);
  const AnalysisResult hyp = hyperbolic_test(set);
  EXPECT_TRUE(hyp.schedulable);
  EXPECT_DOUBLE_EQ(hyp.bound, 2.0);
  const AnalysisResult r = response_time_analysis(set);
  EXPECT_TRUE(r.schedulable);
  EXPECT_EQ(r.response_times[0].count(), 7);
  EXPECT_EQ(r.response_times[1].count(), 59);
}

TEST(Analysis, HarmonicFullUtilizationPassesOnlyRta) {
  // (C,T) = (1,2), (1,4), (2,8): U = 0.5 + 0.25 + 0.25 = 1 exactly. LL (0.7798) and hyperbolic
  // (1.5 * 1.25 * 1.25 = 2.34) fail; RM on harmonic periods is exact up to U = 1:
  //   R1 = 1; R2: 2 -> 1 + 1 = 2; R3: 4 -> 2 + 2 + 1 = 5 -> 2 + 3 + 2 = 7 -> 2 + 4 + 2 = 8 -> 8 = D3.
  const std::vector<RtConstraints> set{rm(1, 2), rm(1, 4), rm(2, 8)};
  EXPECT_FALSE(liu_layland_test(set).schedulable);
  EXPECT_FALSE(hyperbolic_test(set).schedulable);
  const AnalysisResult r = response_time_analysis(set);
  EXPECT_TRUE(r.schedulable);
  EXPECT_EQ(r.response_times[0].count(), 1);
  EXPECT_EQ(r.response_times[1].count(), 2);
  EXPECT_EQ(r.response_times[2].count(), 8);
  const AnalysisResult a = analyze(set, PolicyKind::rate_monotonic);
  EXPECT_TRUE(a.schedulable);
  EXPECT_EQ(a.test, "response-time");
  EXPECT_NE(a.explanation.find("liu-layland"), std::string::npos) << a.explanation;
  EXPECT_NE(a.explanation.find("hyperbolic"), std::string::npos) << a.explanation;
}

TEST(Analysis, RateMonotonicFailsWhereEdfSucceeds) {
  // Buttazzo's pair (C,T) = (2,5), (4,7): U = 0.4 + 0.5714 = 0.9714.
  // RM: R1 = 2; R2: 6 -> 4 + ceil(6/5)*2 = 8 > D2 = 7: the second task misses (at t = 7 in the schedule).
  // EDF: U <= 1, schedulable.
  const std::vector<RtConstraints> set{rm(2, 5), rm(4, 7)};
  const AnalysisResult r = response_time_analysis(set);
  EXPECT_FALSE(r.schedulable);
  EXPECT_EQ(r.response_times[0].count(), 2);
  EXPECT_EQ(r.response_times[1], nanoseconds::max());
  ASSERT_TRUE(r.first_failing_task.has_value());
  EXPECT_EQ(*r.first_failing_task, 1u);
  EXPECT_NE(r.explanation.find("task 1"), std::string::npos) << r.explanation;

  const std::vector<RtConstraints> as_edf{edf(2, 5, 5), edf(4, 7, 7)};
  const AnalysisResult e = edf_utilization_test(as_edf);
  EXPECT_TRUE(e.schedulable);
  EXPECT_NEAR(e.utilization, 0.971429, 1e-6);
  EXPECT_DOUBLE_EQ(e.bound, 1.0);
  EXPECT_EQ(analyze(as_edf, PolicyKind::deadline_driven).test, "edf-utilization");
  // The demand test agrees: h(5) = 2, h(7) = 6 up to max(D_max, L*) = 7 (L* = 0 for implicit deadlines).
  EXPECT_TRUE(processor_demand_test(as_edf).schedulable);
}

TEST(Analysis, EdfUtilizationIsExactAtOne) {
  // (1,2), (1,3), (1,6): U = 1/2 + 1/3 + 1/6 = 1 exactly, which a sum of doubles may miss by one ulp.
  const std::vector<RtConstraints> set{edf(1, 2, 2), edf(1, 3, 3), edf(1, 6, 6)};
  EXPECT_TRUE(edf_utilization_test(set).schedulable);
  EXPECT_TRUE(processor_demand_test(set).schedulable);
  // One unit more: U = 1 + 1/6.
  const std::vector<RtConstraints> over{edf(1, 2, 2), edf(1, 3, 3), edf(2, 6, 6)};
  EXPECT_FALSE(edf_utilization_test(over).schedulable);
  const AnalysisResult pd = processor_demand_test(over);
  EXPECT_FALSE(pd.schedulable);
  EXPECT_FALSE(pd.first_failing_interval.has_value());  // U > 1 fails at once, no interval needed
  EXPECT_NE(pd.explanation.find("U = 1.1667 > 1"), std::string::npos) << pd.explanation;
}

TEST(Analysis, ProcessorDemandFailsAtKnownInterval) {
  // (C,D,T) = (3,4,8), (3,5,10): U = 0.375 + 0.3 = 0.675 <= 1, yet
  //   h(4) = 3 <= 4, h(5) = 3 + 3 = 6 > 5: both jobs are due by t = 5 and need 6.
  const std::vector<RtConstraints> set{edf(3, 4, 8), edf(3, 5, 10)};
  const AnalysisResult r = processor_demand_test(set);
  EXPECT_FALSE(r.schedulable);
  EXPECT_EQ(r.test, "processor-demand");
  ASSERT_TRUE(r.first_failing_interval.has_value());
  EXPECT_EQ(r.first_failing_interval->count(), 5);
  EXPECT_EQ(r.demand_at_failure.count(), 6);
  EXPECT_NE(r.explanation.find("h(t) = 6 ns > t = 5 ns"), std::string::npos) << r.explanation;
  EXPECT_EQ(analyze(set, PolicyKind::deadline_driven).test, "processor-demand");
  EXPECT_FALSE(analyze(set, PolicyKind::deadline_driven).schedulable);
}

TEST(Analysis, ProcessorDemandPassesWhereDensityFails) {
  // (C,D,T) = (1,2,4), (2,5,6), (2,8,10): density 1/2 + 2/5 + 2/8 = 1.15 > 1, so the sufficient density test
  // cannot decide; U = 0.7833. L* = (2*0.25 + 1*0.3333 + 2*0.2) / (1 - 0.7833) = 5.69, so max(D_max, L*) = 8;
  // the busy period is 6 (5 -> 2 + 2 + 2 = 6 -> 6). Deadlines up to 6: h(2) = 1, h(5) = 3, h(6) = 4: all
  // hold.
  const std::vector<RtConstraints> set{edf(1, 2, 4), edf(2, 5, 6), edf(2, 8, 10)};
  EXPECT_FALSE(edf_utilization_test(set).schedulable);
  const AnalysisResult r = processor_demand_test(set);
  EXPECT_TRUE(r.schedulable) << r.explanation;
  EXPECT_NE(r.explanation.find("all 3 deadlines up to 6 ns"), std::string::npos) << r.explanation;
  // Fixed priorities by deadline also make it: R = 1, 3, 6 against D = 2, 5, 8.
  const AnalysisResult dm = response_time_analysis(set, FixedPriorityOrder::deadline_monotonic);
  EXPECT_TRUE(dm.schedulable);
  EXPECT_EQ(dm.response_times[0].count(), 1);
  EXPECT_EQ(dm.response_times[1].count(), 3);
  EXPECT_EQ(dm.response_times[2].count(), 6);
}

TEST(Analysis, DeadlineMonotonicBeatsRateMonotonicWithConstrainedDeadlines) {
  // (C,D,T) = (2,5,5), (1,2,10). RM puts task 0 first: R1 = 1 + 2 = 3 > 2, task 1 misses.
  // DM puts task 1 first: R1 = 1; R0: 3 -> 2 + ceil(3/10)*1 = 3 <= 5.
  const std::vector<RtConstraints> set{fp(2, 5, 5), fp(1, 2, 10)};
  const AnalysisResult by_rate = response_time_analysis(set, FixedPriorityOrder::rate_monotonic);
  EXPECT_FALSE(by_rate.schedulable);
  EXPECT_EQ(by_rate.first_failing_task, std::optional<std::size_t>(1));
  const AnalysisResult by_deadline = response_time_analysis(set, FixedPriorityOrder::deadline_monotonic);
  EXPECT_TRUE(by_deadline.schedulable);
  EXPECT_EQ(by_deadline.response_times[0].count(), 3);
  EXPECT_EQ(by_deadline.response_times[1].count(), 1);
  // LL and hyperbolic do not apply to constrained deadlines and say so.
  EXPECT_FALSE(liu_layland_test(set).schedulable);
  EXPECT_NE(liu_layland_test(set).explanation.find("not applicable"), std::string::npos);
}

TEST(Analysis, EqualPeriodsAreOrderedByInput) {
  // Same period: the earlier task has the higher priority. (1,4),(2,4): R = 1, 3. Swapped: R = 2, 3.
  const std::vector<RtConstraints> a{rm(1, 4), rm(2, 4)};
  const AnalysisResult ra = response_time_analysis(a);
  EXPECT_EQ(ra.response_times[0].count(), 1);
  EXPECT_EQ(ra.response_times[1].count(), 3);
  const std::vector<RtConstraints> b{rm(2, 4), rm(1, 4)};
  const AnalysisResult rb = response_time_analysis(b);
  EXPECT_EQ(rb.response_times[0].count(), 2);
  EXPECT_EQ(rb.response_times[1].count(), 3);
}

TEST(Analysis, TasksWithoutDeadlineAreLeftOutAndOneShotsAreSporadic) {
  // The fifo and round-robin entries place no bounded demand; the one-shot (C=1, D=4) counts as (1,4,4).
  const std::vector<RtConstraints> set{RtConstraints::fifo(), rm(2, 8),
                                       RtConstraints::round_robin(nanoseconds(5)),
                                       RtConstraints::deadline(nanoseconds(4), nanoseconds(1))};
  const AnalysisResult r = response_time_analysis(set);
  EXPECT_TRUE(r.schedulable);
  ASSERT_EQ(r.response_times.size(), 4u);
  EXPECT_EQ(r.response_times[0].count(), 0);
  EXPECT_EQ(r.response_times[3].count(), 1);  // period 4 < 8: higher priority
  EXPECT_EQ(r.response_times[1].count(), 3);  // 2 + ceil(3/4)*1
  EXPECT_DOUBLE_EQ(total_utilization(set), 0.5);
}

TEST(Analysis, EmptySetAndPoliciesWithoutATest) {
  const std::vector<RtConstraints> none;
  EXPECT_TRUE(response_time_analysis(none).schedulable);
  EXPECT_TRUE(edf_utilization_test(none).schedulable);
  EXPECT_TRUE(processor_demand_test(none).schedulable);
  const std::vector<RtConstraints> set{rm(3, 4), rm(3, 4)};
  const AnalysisResult fifo = analyze(set, PolicyKind::fifo);
  EXPECT_TRUE(fifo.schedulable);
  EXPECT_EQ(fifo.test, "none");
  EXPECT_FALSE(analyze(set, PolicyKind::rate_monotonic).schedulable);  // U = 1.5
}

}  // namespace
}  // namespace moirai::rt
