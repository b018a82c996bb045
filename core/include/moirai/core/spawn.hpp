// Spawning tasks on the local shard, and the handle that joins, cancels and watches one.
#pragma once

#include <concepts>
#include <coroutine>
#include <type_traits>
#include <utility>

#include "moirai/core/clock.hpp"
#include "moirai/core/detail/shard_core.hpp"
#include "moirai/core/detail/timer_queue.hpp"
#include "moirai/core/error.hpp"
#include "moirai/core/task.hpp"
#include "moirai/core/task_context.hpp"

namespace moirai {

// A reference to a spawned task. Move-only and shard-local. Dropping it detaches the task, which runs on.
template <class T = void>
class TaskHandle {
 public:
  TaskHandle() noexcept = default;
  explicit TaskHandle(detail::TaskControl* c) noexcept : c_(c) {}
  TaskHandle(TaskHandle&& o) noexcept : c_(std::exchange(o.c_, nullptr)) {}
  TaskHandle& operator=(TaskHandle&& o) noexcept {
    if (this != &o) {
      reset();
      c_ = std::exchange(o.c_, nullptr);
    }
    return *this;
  }
  TaskHandle(const TaskHandle&) = delete;
  TaskHandle& operator=(const TaskHandle&) = delete;
  ~TaskHandle() { reset(); }

  bool valid() const noexcept { return c_ != nullptr; }
  std::uint64_t id() const noexcept { return c_->id; }
  const char* name() const noexcept { return c_->name; }
  TaskStatus status() const noexcept { return c_->status; }
  std::uint8_t priority() const noexcept { return c_->sched.priority; }
  bool done() const noexcept { return is_finished(c_->status); }
  // Real-time tasks: jobs that ended past their deadline, and jobs that ran longer than their WCET.
  std::uint32_t deadline_misses() const noexcept { return c_->deadline_misses; }
  std::uint32_t wcet_overruns() const noexcept { return c_->wcet_overruns; }

  // Cooperative: the task sees TaskCancelled at its next suspension point; a timer or io it waits on now is
  // cancelled so that point comes at once. A task not yet started ends without running.
  void cancel() noexcept { c_->request_cancel(); }

  // co_await join(): the task's value, or its exception (TaskCancelled if it was cancelled).
  auto join() noexcept { return JoinAwaiter{c_, 0}; }
  // Like join(), but throws TimedOut if the task has not finished within `timeout`; the task runs on.
  auto join_for(Duration timeout) noexcept {
    return JoinAwaiter{c_, timeout.count() <= 0 ? -1 : timeout.count()};
  }

 private:
  struct JoinAwaiter : detail::CancelHook {
    detail::TaskControl* c;
    long long timeout_ns;  // 0: none; -1: already expired
    std::coroutine_handle<> h{};
    detail::TaskControl* self = nullptr;
    detail::OwnedTimer<JoinAwaiter> timer{};
    bool timed_out = false;

    JoinAwaiter(detail::TaskControl* control, long long t) noexcept : c(control), timeout_ns(t) {}

    bool await_ready() const noexcept { return is_finished(c->status); }
    bool await_suspend(std::coroutine_handle<> handle) {
      Shard& s = *c->shard;
      self = s.current_task();
      if (detail::cancel_requested(self)) return false;
      if (timeout_ns < 0) {
        timed_out = true;
        return false;
      }
      h = handle;
      c->joiner = handle;
      c->joiner_task = self;
      fn = [](detail::CancelHook* hook) noexcept {  // the joiner itself is cancelled: stop waiting
        auto* a = static_cast<JoinAwaiter*>(hook);
        a->c->joiner = {};
        a->c->shard->timers().cancel(&a->timer);
        a->c->shard->schedule(a->h, a->self);
      };
      detail::arm_cancel(self, this);
      if (timeout_ns > 0) {
        timer.owner = this;
        timer.deadline = deadline_after(Duration(timeout_ns));
        timer.fire = [](detail::TimerEntry* e) noexcept {
          auto* a = detail::OwnedTimer<JoinAwaiter>::of(e);
          a->timed_out = true;
          a->c->joiner = {};
          detail::disarm_cancel(a->self, a);
          a->c->shard->schedule(a->h, a->self);
        };
        s.timers().arm(&timer);
      }
      return true;
    }
    T await_resume() {
      if (timer.armed()) c->shard->timers().cancel(&timer);
      detail::disarm_cancel(self, this);
      detail::throw_if_cancelled(self);
      if (timed_out) throw TimedOut();
      using H = std::coroutine_handle<detail::Promise<T>>;
      return H::from_address(c->frame.address()).promise().take();
    }
  };

  void reset() noexcept {
    if (c_ != nullptr) detail::ShardCore::release_task(std::exchange(c_, nullptr));
  }
  detail::TaskControl* c_ = nullptr;
};

namespace detail {

template <class T>
TaskControl* spawn_control(Task<T>&& task, const TaskContext& ctx, std::uint32_t refs, bool detached) {
  ShardCore& s = this_core();
  if (s.stopping()) throw Error(Errc::stopped, "spawn refused: this shard is shutting down");
  if (!task.valid())
    throw Error(Errc::invalid_argument, "spawn of an empty Task (moved-from or default-made)");
  // Before the frame changes hands: a refused spawn leaves `task` to destroy it.
  if (ctx.constraints.wcet().count() != 0) [[unlikely]]
    s.check_admission(ctx);
  auto h = task.release();
  TaskControl* c = s.new_task(h, &h.promise(), ctx, refs);
  c->detached = detached;
  h.promise().control_ = c;
  s.schedule(h, c);
  return c;
}

template <class F>
using task_of_t = std::invoke_result_t<F&>;

// Calls `f` and awaits its task inside a coroutine that owns `f`: a lambda coroutine reads its captures
// through `this`, so the lambda must live as long as the task it made, not as long as the expression that
// spawned it.
template <class F>
task_of_t<F> run_owned(F f) {
  co_return co_await f();
}

}  // namespace detail

// Queues `task` on the calling shard and returns its handle. The task starts at the shard's next run of
// tasks.
template <class T>
TaskHandle<T> spawn(Task<T> task, const TaskContext& ctx = {}) {
  return TaskHandle<T>(detail::spawn_control(std::move(task), ctx, 2, false));
}

// Spawns a callable returning a Task; the frame is made here, from this shard's memory, and the callable
// (with its captures) lives as long as the task.
template <class F>
requires is_task_v<detail::task_of_t<std::decay_t<F>>>
auto spawn(F&& fn, const TaskContext& ctx = {}) {
  return spawn(detail::run_owned(std::decay_t<F>(std::forward<F>(fn))), ctx);
}

// Spawns with no handle: the task runs to its end on its own; a failure is counted and reported on stderr.
template <class T>
void spawn_detached(Task<T> task, const TaskContext& ctx = {}) {
  detail::spawn_control(std::move(task), ctx, 1, true);
}

}  // namespace moirai
