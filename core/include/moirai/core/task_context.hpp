// What a spawned task is: its id, name, priority and real-time constraints (deadline, period, WCET and the
// policy that orders it in its shard's run queue).
#pragma once

#include <chrono>
#include <cstdint>
#include <string_view>

#include "moirai/rt/constraints.hpp"

namespace moirai {

enum class TaskStatus : std::uint8_t {
  queued,     // spawned, not yet started
  running,    // started and not finished (it may be suspended)
  completed,  // returned normally
  cancelled,  // ended by cancel() (or by shutdown) at a suspension point
  failed,     // ended by an exception
};

const char* to_string(TaskStatus s) noexcept;

inline bool is_finished(TaskStatus s) noexcept {
  return s >= TaskStatus::completed;
}

// How a task is ordered in its shard's run queue follows from these fields (see sched_params.hpp):
//   deadline-driven constraints          -> EDF by absolute deadline (release + relative deadline)
//   rate-monotonic (periodic) constraints -> by period, shorter first
//   round-robin constraints or priority > 0 -> by priority level, FIFO within a level (round-robin tasks
//   rotate
//                                           once their slice is used)
//   none, priority 0                     -> best effort, FIFO
// and the classes are served in that order.
struct TaskContext {
  std::uint64_t id = 0;             // 0: the shard assigns the next id
  std::string_view name = {};       // copied (up to 31 bytes) into the task's record; shown in stall reports
  std::uint8_t priority = 0;        // 0 is the default; higher runs first (the fixed-priority class)
  rt::RtConstraints constraints{};  // none by default
  // Spawning a task with a WCET under rate-monotonic or deadline-driven constraints runs the shard's
  // schedulability test first and throws Error(admission_refused) when it fails; false skips the test.
  bool admission_control = true;

  TaskContext& with_id(std::uint64_t v) noexcept {
    id = v;
    return *this;
  }
  TaskContext& with_name(std::string_view v) noexcept {
    name = v;
    return *this;
  }
  TaskContext& with_priority(std::uint8_t v) noexcept {
    priority = v;
    return *this;
  }
  // A one-shot job due `deadline` after its spawn, ordered earliest-deadline-first. With a WCET it takes part
  // in admission control (as a task recurring every `deadline`, its worst case). Throws rt::RtError on bad
  // values (negative, WCET over the deadline).
  TaskContext& with_deadline(std::chrono::nanoseconds deadline,
                             std::chrono::nanoseconds wcet = std::chrono::nanoseconds::zero()) {
    constraints = rt::RtConstraints::deadline(deadline, wcet);
    return *this;
  }
  // A periodic task (see every()): rate-monotonic by default, or deadline-driven; the deadline defaults to
  // the period. Throws rt::RtError on bad values.
  TaskContext& with_period(std::chrono::nanoseconds period, std::chrono::nanoseconds wcet,
                           std::chrono::nanoseconds deadline = std::chrono::nanoseconds::zero(),
                           rt::RtSchedulingPolicy policy = rt::RtSchedulingPolicy::RateMonotonic()) {
    constraints = rt::RtConstraints::periodic(period, wcet, deadline, policy);
    return *this;
  }
  // Round-robin within the task's priority level, rotating at a suspension point once `slice` is used.
  TaskContext& with_round_robin(std::chrono::nanoseconds slice) {
    constraints = rt::RtConstraints::round_robin(slice);
    return *this;
  }
  TaskContext& with_rt_constraints(const rt::RtConstraints& c) noexcept {
    constraints = c;
    return *this;
  }
  TaskContext& without_admission_control() noexcept {
    admission_control = false;
    return *this;
  }
};

}  // namespace moirai
