// Errors the runtime reports: a code in moirai's own std::error_category, carried by moirai::Error (see
// <moirai/base/error.hpp>) with a message naming the cause and the fix. On the hot path, errors are values;
// these are for set-up, misuse and for what a task's awaiter must learn (cancellation, timeout, shutdown).
#pragma once

#include <string>
#include <system_error>

#include "moirai/base/error.hpp"

namespace moirai {

// Each code and the std::errc it compares equal to (error_category().default_error_condition):
//
//   invalid_cpu_set    invalid_argument
//   no_such_shard      invalid_argument
//   not_running        none: no std::errc says "not started yet"
//   stopped            none: no std::errc says "shut down" (ESHUTDOWN has none)
//   not_on_shard       none: the call is misplaced, not refused (operation_not_permitted means privilege)
//   cancelled          operation_canceled
//   timed_out          timed_out
//   setup_failed       none: it says only where; the cause (ring, memory, pinning) is nested, with its code
//   gate_closed        none: like stopped, for one gate
//   invalid_argument   invalid_argument
//   admission_refused  device_or_resource_busy (EBUSY, what sched_setattr says when the kernel's own
//                      SCHED_DEADLINE admission test fails)
enum class Errc {
  invalid_cpu_set =
      1,          // a CPU list that is empty, malformed, out of range, offline or outside the affinity mask
  no_such_shard,  // a shard index >= shard_count()
  not_running,    // a runtime that was never started
  stopped,        // a runtime that is stopping or has stopped
  not_on_shard,   // a shard-only call made from a thread that is not a shard
  cancelled,      // the task was cancelled; raised at its next suspension point
  timed_out,      // a timeout expired before the awaited operation finished
  setup_failed,   // a shard could not be set up (ring, memory, pinning); the cause is nested
  gate_closed,    // entering a gate that is closed
  invalid_argument,   // any other bad argument; the message names it
  admission_refused,  // a real-time task that would make its shard's task set unschedulable
};

// The category "moirai".
const std::error_category& error_category() noexcept;

inline std::error_code make_error_code(Errc e) noexcept {
  return {static_cast<int>(e), error_category()};
}

// Raised inside a cancelled task at its next suspension point; the task ends with status `cancelled`.
class TaskCancelled : public Error {
 public:
  TaskCancelled() : Error(make_error_code(Errc::cancelled), "task cancelled") {}
};

// Raised by with_timeout() and join_for() when the time runs out first.
class TimedOut : public Error {
 public:
  TimedOut() : Error(make_error_code(Errc::timed_out), "timed out") {}
};

}  // namespace moirai

template <>
struct std::is_error_code_enum<moirai::Errc> : std::true_type {};
