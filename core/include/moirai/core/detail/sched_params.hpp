// Where a task sits in its shard's run queue: its scheduling class and the key that orders it within the
// class. Filled from the task's TaskContext (priority, RtConstraints) when it is spawned; read by the
// RunQueue on every push, so it is plain data beside the rest of the task's record.
#pragma once

#include <cstdint>

namespace moirai::detail {

// Classes in the order the run queue serves them: every deadline task before any rate-monotonic task, and so
// on down to best effort. Within a class: earliest absolute deadline; shortest period; highest priority level
// (FIFO within a level, round-robin tasks rotate within theirs); arrival order.
enum class SchedClass : std::uint8_t {
  best_effort = 0,     // no constraints, priority 0: the cheap FIFO ring
  fixed_priority = 1,  // priority > 0, or round-robin: one FIFO per priority level, found by a bitmap
  rate_monotonic = 2,  // ordered by period (shorter first)
  deadline = 3,        // EDF: ordered by absolute deadline (earlier first)
};

struct SchedParams {
  SchedClass cls = SchedClass::best_effort;
  std::uint8_t priority = 0;  // the level for fixed_priority; informational otherwise
  bool round_robin = false;   // fixed_priority task that rotates once its slice is used
  // deadline: absolute deadline of the current job, in moirai::monotonic_ns() nanoseconds.
  // rate_monotonic: the period in nanoseconds. Unused for the other classes.
  std::int64_t key = 0;
  std::uint64_t slice_ticks = 0;       // round-robin time slice, in ticks()
  std::uint64_t slice_used_ticks = 0;  // how much of the slice the task has used since it last rotated
};

}  // namespace moirai::detail
