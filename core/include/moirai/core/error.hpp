// Errors the runtime reports: a code in moirai's own std::error_category, and one exception type that carries
// it with a message naming the cause and the fix. On the hot path, errors are values; these are for set-up,
// misuse and for what a task's awaiter must learn (cancellation, timeout, shutdown).
#pragma once

#include <string>
#include <system_error>

namespace moirai {

enum class Errc {
  invalid_cpu_set =
      1,          // a CPU list that is empty, malformed, out of range, offline or outside the affinity mask
  no_such_shard,  // a shard index >= shard_count()
  not_running,    // a runtime that was never started
  stopped,        // a runtime that is stopping or has stopped
  not_on_shard,   // a shard-only call made from a thread that is not a shard
  cancelled,      // the task was cancelled; raised at its next suspension point
  timed_out,      // a timeout expired before the awaited operation finished
  setup_failed,   // a shard could not be set up (ring, memory, pinning)
  gate_closed,    // entering a gate that is closed
  invalid_argument,   // any other bad argument; the message names it
  admission_refused,  // a real-time task that would make its shard's task set unschedulable
};

const std::error_category& error_category() noexcept;

inline std::error_code make_error_code(Errc e) noexcept {
  return {static_cast<int>(e), error_category()};
}

class Error : public std::system_error {
 public:
  Error(Errc code, const std::string& what) : std::system_error(make_error_code(code), what) {}
  Errc errc() const noexcept { return static_cast<Errc>(code().value()); }
};

// Raised inside a cancelled task at its next suspension point; the task ends with status `cancelled`.
class TaskCancelled : public Error {
 public:
  TaskCancelled() : Error(Errc::cancelled, "task cancelled") {}
};

// Raised by with_timeout() and join_for() when the time runs out first.
class TimedOut : public Error {
 public:
  TimedOut() : Error(Errc::timed_out, "timed out") {}
};

}  // namespace moirai

template <>
struct std::is_error_code_enum<moirai::Errc> : std::true_type {};
