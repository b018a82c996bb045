// What a spawned task is: its id, name and priority. The real-time constraints (deadline, period, WCET) join
// this record with the real-time issue.
#pragma once

#include <cstdint>
#include <string_view>

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

struct TaskContext {
  std::uint64_t id = 0;        // 0: the shard assigns the next id
  std::string_view name = {};  // copied (up to 31 bytes) into the task's record; shown in stall reports
  std::uint8_t priority = 0;   // 0 is the default; higher runs first once the priority run queue lands

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
};

}  // namespace moirai
