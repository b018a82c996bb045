// Schedulability of a task set on one processor: the classic tests, each answering with its numbers so that
// admission control can refuse a set and say why. Periodic tasks are analysed as given; a one-shot deadline
// task is treated as sporadic with a minimum inter-arrival time equal to its deadline (the worst case it can
// present); tasks without a deadline or period (plain fifo / round-robin) place no demand the tests can bound
// and are left out. All arithmetic on times is exact integer nanoseconds; only utilizations are doubles.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "moirai/rt/constraints.hpp"
#include "moirai/rt/policy.hpp"

namespace moirai::rt {

struct AnalysisResult {
  bool schedulable = false;
  std::string test;  // "liu-layland", "hyperbolic", "response-time", "edf-utilization", "processor-demand"
  double utilization = 0;  // total
  // The bound compared against: Liu-Layland n(2^(1/n)-1); hyperbolic 2 (against the product of U_i+1);
  // EDF and response-time 1 (the necessary U <= 1).
  double bound = 0;
  // Response-time analysis: per task, in input order; Duration::max() when it grew past the task's deadline.
  std::vector<std::chrono::nanoseconds> response_times;
  // Response-time analysis: the input index of the highest-priority task that misses its deadline.
  std::optional<std::size_t> first_failing_task;
  // Processor demand: the first absolute deadline t (from a synchronous release) with h(t) > t, and h(t).
  std::optional<std::chrono::nanoseconds> first_failing_interval;
  std::chrono::nanoseconds demand_at_failure{0};
  std::string explanation;  // one human-readable line with the numbers
};

double total_utilization(std::span<const RtConstraints> tasks) noexcept;

// Liu & Layland (1973): sufficient for rate-monotonic with implicit deadlines, U <= n(2^(1/n)-1).
AnalysisResult liu_layland_test(std::span<const RtConstraints> tasks);
// Bini, Buttazzo & Buttazzo (2003): sufficient for rate-monotonic with implicit deadlines, prod(U_i+1) <= 2.
AnalysisResult hyperbolic_test(std::span<const RtConstraints> tasks);

enum class FixedPriorityOrder : std::uint8_t { rate_monotonic, deadline_monotonic };
// Joseph & Pandya / Audsley et al.: exact for fixed priorities with constrained deadlines (D <= T).
// R_i = C_i + sum over higher-priority j of ceil(R_i / T_j) C_j, iterated to a fixed point. Ties in period
// (or deadline) are broken by input order: the earlier task has the higher priority.
AnalysisResult response_time_analysis(std::span<const RtConstraints> tasks,
                                      FixedPriorityOrder order = FixedPriorityOrder::rate_monotonic);

// Liu & Layland: exact for EDF with implicit deadlines, U <= 1. With a constrained deadline in the set it
// falls back to the (sufficient) density test, sum C_i / D_i <= 1, and says so.
AnalysisResult edf_utilization_test(std::span<const RtConstraints> tasks);
// Baruah, Rosier & Howell (1990): exact for EDF with constrained deadlines. h(t) = sum over tasks of
// max(0, floor((t - D_i) / T_i) + 1) C_i must not exceed t at any absolute deadline t up to
// min(hyperperiod, max(D_max, L*)), L* = sum (T_i - D_i) U_i / (1 - U). U > 1 fails at once.
AnalysisResult processor_demand_test(std::span<const RtConstraints> tasks);

// What admission control calls. rate_monotonic: response_time_analysis, with the Liu-Layland and hyperbolic
// figures in the explanation. deadline_driven: edf_utilization_test when every deadline equals its period,
// else processor_demand_test. fifo and round_robin have no test: the set is admitted, test "none".
AnalysisResult analyze(std::span<const RtConstraints> tasks, PolicyKind kind);

}  // namespace moirai::rt
