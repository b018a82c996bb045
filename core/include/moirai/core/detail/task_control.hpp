// The record of one spawned task: status, cancellation, who joins it, and its place in the shard's live list.
// Allocated from the shard's FrameAllocator beside the coroutine frame; shard-local, so no field is atomic.
#pragma once

#include <coroutine>
#include <cstdint>

#include "moirai/core/detail/sched_params.hpp"
#include "moirai/core/error.hpp"
#include "moirai/core/task_context.hpp"

namespace moirai {

class Shard;

namespace detail {

class PromiseBase;

// What a suspended task waits on, if that wait can be cut short: cancel() calls `fn`, which must arrange for
// the task to be resumed soon (removing a timer, cancelling an io) so it can observe the cancellation.
struct CancelHook {
  void (*fn)(CancelHook* self) noexcept = nullptr;
};

struct TaskControl {
  std::coroutine_handle<> frame;  // the task's outermost coroutine
  PromiseBase* promise = nullptr;
  Shard* shard = nullptr;
  TaskControl* prev = nullptr;  // the shard's list of live tasks, for shutdown and stall reports
  TaskControl* next = nullptr;
  CancelHook* hook = nullptr;                        // set while suspended on something cancellable
  std::coroutine_handle<> joiner;                    // the coroutine in join(), if any
  TaskControl* joiner_task = nullptr;                // and the task it belongs to
  void (*on_done)(TaskControl*) noexcept = nullptr;  // internal completion callback (run(), remote submit)
  void* on_done_arg = nullptr;
  std::uint64_t id = 0;
  std::uint32_t refs = 0;  // one for the running task, one per TaskHandle
  TaskStatus status = TaskStatus::queued;
  SchedParams sched;  // class and ordering key in the run queue
  bool cancel_requested = false;
  bool stall_reported = false;
  bool detached = false;
  // Runtime-internal tasks that forward an answer (a submit_to from another shard, Runtime::submit) start
  // even if cancelled first, so the inner code sees the cancellation and the answer still goes back.
  bool must_start = false;
  char name[31] = {};
  // Real time, for tasks with constraints only: the current job's release, its relative deadline and WCET,
  // the execution time accounted to it, and what went wrong so far.
  std::int64_t release_ns = 0;
  std::int64_t deadline_ns = 0;   // relative; 0: none
  std::int64_t wcet_ns = 0;       // 0: none
  std::uint64_t wcet_ticks = 0;   // the same in ticks(), what execution is compared with
  std::uint64_t exec_ticks = 0;   // time spent running, summed over its resumptions
  std::uint64_t ready_ticks = 0;  // ticks() when last made ready (RuntimeOptions::metrics)
  std::uint32_t deadline_misses = 0;
  std::uint32_t wcet_overruns = 0;
  bool admitted = false;  // counted in its shard's admitted task set until it ends
  bool periodic = false;  // its jobs end at Shard::end_job (every()), not when the task completes

  void request_cancel() noexcept {
    if (is_finished(status) || cancel_requested) return;
    cancel_requested = true;
    if (CancelHook* h = hook) {
      hook = nullptr;
      h->fn(h);
    }
  }
};

// The suspension-point protocol every cancellable awaiter follows: arm before suspending, disarm on resume,
// and check on both sides so a cancelled task never suspends again and never continues past a wait.
inline void arm_cancel(TaskControl* t, CancelHook* h) noexcept {
  if (t != nullptr) t->hook = h;
}
inline void disarm_cancel(TaskControl* t, CancelHook* h) noexcept {
  if (t != nullptr && t->hook == h) t->hook = nullptr;
}
inline bool cancel_requested(const TaskControl* t) noexcept {
  return t != nullptr && t->cancel_requested;
}
inline void throw_if_cancelled(const TaskControl* t) {
  if (cancel_requested(t)) throw TaskCancelled();
}

}  // namespace detail
}  // namespace moirai
