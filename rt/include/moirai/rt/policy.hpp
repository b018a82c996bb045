// How tasks inside one shard are ordered: the task-level policy a shard's run queue applies. This is not the
// kernel's thread policy (see thread_policy.hpp); a shard thread may run SCHED_OTHER and still order its
// tasks earliest-deadline-first.
#pragma once

#include <chrono>
#include <cstdint>

namespace moirai::rt {

enum class PolicyKind : std::uint8_t {
  fifo,         // by priority, first come first served within a priority
  round_robin,  // like fifo, but a task rotates once its time slice is used (checked at suspension points)
  deadline_driven,  // earliest absolute deadline first (EDF)
  rate_monotonic,   // fixed priority by period: the shorter the period, the higher the priority
};

// "fifo", "round-robin", "deadline-driven", "rate-monotonic".
const char* to_string(PolicyKind kind) noexcept;

struct RtSchedulingPolicy {
  PolicyKind kind = PolicyKind::fifo;
  std::chrono::nanoseconds time_slice{0};  // round_robin only

  static constexpr RtSchedulingPolicy Fifo() noexcept {
    return {PolicyKind::fifo, std::chrono::nanoseconds{0}};
  }
  static constexpr RtSchedulingPolicy RoundRobin(std::chrono::nanoseconds slice) noexcept {
    return {PolicyKind::round_robin, slice};
  }
  static constexpr RtSchedulingPolicy DeadlineDriven() noexcept {
    return {PolicyKind::deadline_driven, std::chrono::nanoseconds{0}};
  }
  static constexpr RtSchedulingPolicy RateMonotonic() noexcept {
    return {PolicyKind::rate_monotonic, std::chrono::nanoseconds{0}};
  }

  friend constexpr bool operator==(const RtSchedulingPolicy&, const RtSchedulingPolicy&) noexcept = default;
};

}  // namespace moirai::rt
