#include "moirai/rt/constraints.hpp"

#include <cerrno>
#include <string>

#include "moirai/rt/error.hpp"

namespace moirai::rt {
namespace {

std::string ns(std::chrono::nanoseconds d) {
  return std::to_string(d.count()) + " ns";
}

}  // namespace

std::string RtConstraints::describe(ConstraintFault fault, RtSchedulingPolicy policy, Duration deadline,
                                    Duration period, Duration wcet) {
  const std::string prefix = std::string("RtConstraints (") + to_string(policy.kind) + "): ";
  switch (fault) {
    case ConstraintFault::ok:
      return {};
    case ConstraintFault::negative_deadline:
      return prefix + "deadline must not be negative (got " + ns(deadline) + ")";
    case ConstraintFault::negative_period:
      return prefix + "period must not be negative (got " + ns(period) + ")";
    case ConstraintFault::negative_wcet:
      return prefix + "wcet must not be negative (got " + ns(wcet) + ")";
    case ConstraintFault::negative_time_slice:
      return prefix + "time_slice must not be negative (got " + ns(policy.time_slice) + ")";
    case ConstraintFault::time_slice_not_positive:
      return prefix + "time_slice must be > 0 for round-robin (got " + ns(policy.time_slice) + ")";
    case ConstraintFault::time_slice_without_round_robin:
      return prefix + "time_slice is for round-robin only; set it to 0 (got " + ns(policy.time_slice) + ")";
    case ConstraintFault::period_not_positive:
      return prefix + "period must be > 0 for a periodic task (got " + ns(period) +
             "); use RtConstraints::deadline() for a one-shot job";
    case ConstraintFault::rate_monotonic_without_period:
      return prefix + "period must be > 0: rate-monotonic orders tasks by period (got " + ns(period) + ")";
    case ConstraintFault::deadline_driven_without_deadline:
      return prefix +
             "deadline must be > 0 (or a period given): deadline-driven orders tasks by deadline (got " +
             ns(deadline) + ")";
    case ConstraintFault::period_needs_rm_or_edf:
      return prefix + "period (" + ns(period) +
             ") needs policy rate-monotonic or deadline-driven; fifo and round-robin do not use one";
    case ConstraintFault::wcet_not_positive:
      return prefix + "wcet must be > 0 for a periodic task (got " + ns(wcet) +
             "); the schedulability tests sum it";
    case ConstraintFault::wcet_exceeds_deadline:
      return prefix + "wcet (" + ns(wcet) + ") must not exceed the deadline (" +
             ns(deadline.count() > 0 ? deadline : period) + "): wcet <= deadline <= period";
    case ConstraintFault::deadline_exceeds_period:
      return prefix + "deadline (" + ns(deadline) + ") must not exceed the period (" + ns(period) +
             "): wcet <= deadline <= period";
  }
  return prefix + "invalid constraints";
}

void RtConstraints::throw_fault(ConstraintFault fault, RtSchedulingPolicy policy, Duration deadline,
                                Duration period, Duration wcet) {
  throw RtError(EINVAL, describe(fault, policy, deadline, period, wcet));
}

}  // namespace moirai::rt
