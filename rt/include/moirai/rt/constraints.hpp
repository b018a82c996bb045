// A task's real-time constraints: its policy, relative deadline, period and worst-case execution time (WCET).
// Created once per task through validated named constructors; read on the hot path, where the deadline check
// is one subtraction and one compare. Creating a valid RtConstraints never allocates: the rules are checked
// inline and only a violation leaves the header, to build its message and throw.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "moirai/rt/policy.hpp"

namespace moirai::rt {

// Which rule a set of values breaks; ok when none. Public so callers that must not throw can branch on it.
enum class ConstraintFault : std::uint8_t {
  ok,
  negative_deadline,
  negative_period,
  negative_wcet,
  negative_time_slice,
  time_slice_not_positive,  // round_robin needs a slice > 0
  time_slice_without_round_robin,
  period_not_positive,  // periodic() with a zero period
  rate_monotonic_without_period,
  deadline_driven_without_deadline,
  period_needs_rm_or_edf,  // a period is only meaningful for rate_monotonic or deadline_driven
  wcet_not_positive,       // periodic tasks need a WCET > 0 (it is what the analysis sums)
  wcet_exceeds_deadline,
  deadline_exceeds_period,
};

class RtConstraints {
 public:
  using Duration = std::chrono::nanoseconds;

  RtConstraints() = default;  // no constraints: fifo, everything zero

  // A one-shot job that must finish within `relative_deadline` of its release, ordered
  // earliest-deadline-first.
  static RtConstraints deadline(Duration relative_deadline, Duration wcet = Duration::zero());
  // A job released every `period`, running at most `wcet`, due `deadline` after release (zero: the period).
  static RtConstraints periodic(Duration period, Duration wcet, Duration deadline = Duration::zero(),
                                RtSchedulingPolicy policy = RtSchedulingPolicy::RateMonotonic());
  static RtConstraints round_robin(Duration time_slice);
  static RtConstraints fifo() noexcept { return RtConstraints(); }

  // The rules the named constructors enforce, without throwing: the first rule the values break, or ok. A
  // zero deadline with a period > 0 means an implicit deadline (= period).
  static constexpr ConstraintFault find_fault(RtSchedulingPolicy policy, Duration deadline, Duration period,
                                              Duration wcet) noexcept;
  // The message the named constructors throw `fault` with (RtError(EINVAL)), naming the values and the rule;
  // empty for ok.
  static std::string describe(ConstraintFault fault, RtSchedulingPolicy policy, Duration deadline,
                              Duration period, Duration wcet);

  RtSchedulingPolicy policy() const noexcept { return policy_; }
  Duration deadline() const noexcept { return deadline_; }  // the effective relative deadline; zero if none
  Duration period() const noexcept { return period_; }
  Duration wcet() const noexcept { return wcet_; }
  bool is_periodic() const noexcept { return period_.count() > 0; }
  bool has_deadline() const noexcept { return deadline_.count() > 0; }

  // wcet/period when periodic; wcet/deadline for a one-shot deadline task; 0 otherwise.
  double utilization() const noexcept {
    const std::int64_t base = period_.count() > 0 ? period_.count() : deadline_.count();
    return base > 0 ? static_cast<double>(wcet_.count()) / static_cast<double>(base) : 0.0;
  }

  // True when a job released at release_ns (CLOCK_MONOTONIC ns) is still unfinished past its deadline at
  // now_ns. Finishing exactly at the deadline is on time. Always false without a deadline.
  bool deadline_missed(std::int64_t release_ns, std::int64_t now_ns) const noexcept {
    return deadline_.count() > 0 && now_ns - release_ns > deadline_.count();
  }
  // True when a job has run longer than its declared WCET. Always false without a WCET.
  bool wcet_overrun(Duration executed) const noexcept { return wcet_.count() > 0 && executed > wcet_; }

  friend bool operator==(const RtConstraints&, const RtConstraints&) noexcept = default;

 private:
  RtConstraints(RtSchedulingPolicy policy, Duration deadline, Duration period, Duration wcet) noexcept
      : policy_(policy), deadline_(deadline), period_(period), wcet_(wcet) {}

  // Out of line and cold: the only place a message is built.
  [[noreturn]] static void throw_fault(ConstraintFault fault, RtSchedulingPolicy policy, Duration deadline,
                                       Duration period, Duration wcet);

  RtSchedulingPolicy policy_{};
  Duration deadline_{0};  // effective: the period for an implicit deadline
  Duration period_{0};
  Duration wcet_{0};
};

constexpr ConstraintFault RtConstraints::find_fault(RtSchedulingPolicy policy, Duration deadline,
                                                    Duration period, Duration wcet) noexcept {
  if (deadline.count() < 0) return ConstraintFault::negative_deadline;
  if (period.count() < 0) return ConstraintFault::negative_period;
  if (wcet.count() < 0) return ConstraintFault::negative_wcet;
  if (policy.time_slice.count() < 0) return ConstraintFault::negative_time_slice;
  if (policy.kind == PolicyKind::round_robin) {
    if (policy.time_slice.count() == 0) return ConstraintFault::time_slice_not_positive;
  } else if (policy.time_slice.count() != 0) {
    return ConstraintFault::time_slice_without_round_robin;
  }
  if (policy.kind == PolicyKind::rate_monotonic && period.count() == 0)
    return ConstraintFault::rate_monotonic_without_period;
  if (policy.kind == PolicyKind::deadline_driven && period.count() == 0 && deadline.count() == 0)
    return ConstraintFault::deadline_driven_without_deadline;
  if (period.count() > 0) {
    if (policy.kind != PolicyKind::rate_monotonic && policy.kind != PolicyKind::deadline_driven)
      return ConstraintFault::period_needs_rm_or_edf;
    if (wcet.count() == 0) return ConstraintFault::wcet_not_positive;
  }
  const Duration effective = deadline.count() > 0 ? deadline : period;
  if (effective.count() > 0 && wcet > effective) return ConstraintFault::wcet_exceeds_deadline;
  if (period.count() > 0 && effective > period) return ConstraintFault::deadline_exceeds_period;
  return ConstraintFault::ok;
}

inline RtConstraints RtConstraints::deadline(Duration relative_deadline, Duration wcet) {
  const RtSchedulingPolicy policy = RtSchedulingPolicy::DeadlineDriven();
  const ConstraintFault fault = find_fault(policy, relative_deadline, Duration::zero(), wcet);
  if (fault != ConstraintFault::ok) [[unlikely]]
    throw_fault(fault, policy, relative_deadline, Duration::zero(), wcet);
  return RtConstraints(policy, relative_deadline, Duration::zero(), wcet);
}

inline RtConstraints RtConstraints::periodic(Duration period, Duration wcet, Duration deadline,
                                             RtSchedulingPolicy policy) {
  ConstraintFault fault = find_fault(policy, deadline, period, wcet);
  if (fault == ConstraintFault::ok && period.count() == 0) fault = ConstraintFault::period_not_positive;
  if (fault != ConstraintFault::ok) [[unlikely]]
    throw_fault(fault, policy, deadline, period, wcet);
  return RtConstraints(policy, deadline.count() > 0 ? deadline : period, period, wcet);
}

inline RtConstraints RtConstraints::round_robin(Duration time_slice) {
  const RtSchedulingPolicy policy = RtSchedulingPolicy::RoundRobin(time_slice);
  const ConstraintFault fault = find_fault(policy, Duration::zero(), Duration::zero(), Duration::zero());
  if (fault != ConstraintFault::ok) [[unlikely]]
    throw_fault(fault, policy, Duration::zero(), Duration::zero(), Duration::zero());
  return RtConstraints(policy, Duration::zero(), Duration::zero(), Duration::zero());
}

}  // namespace moirai::rt
