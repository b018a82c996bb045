// Time on a shard: sleep_for, sleep_until, yield, and a timeout around any task. Timers live in the shard's
// heap (no syscall to arm one); a sleeping shard bounds its wait in the ring by the earliest deadline, and a
// spinning one checks the heap every lap.
#pragma once

#include <chrono>
#include <coroutine>
#include <cstdint>

#include "moirai/core/clock.hpp"
#include "moirai/core/detail/shard_core.hpp"
#include "moirai/core/detail/timer_queue.hpp"
#include "moirai/core/spawn.hpp"
#include "moirai/core/task.hpp"

namespace moirai {

class [[nodiscard]] SleepAwaiter : detail::CancelHook {
 public:
  explicit SleepAwaiter(std::int64_t deadline_ns) noexcept : deadline_(deadline_ns) {}

  bool await_ready() {
    shard_ = &this_shard();
    task_ = shard_->current_task();
    detail::throw_if_cancelled(task_);
    return deadline_ <= monotonic_ns();
  }
  void await_suspend(std::coroutine_handle<> h) {
    h_ = h;
    timer_.owner = this;
    timer_.deadline = deadline_;
    timer_.fire = [](detail::TimerEntry* e) noexcept {
      SleepAwaiter* a = detail::OwnedTimer<SleepAwaiter>::of(e);
      detail::disarm_cancel(a->task_, a);
      a->shard_->schedule(a->h_, a->task_);
    };
    shard_->timers().arm(&timer_);
    fn = [](detail::CancelHook* hook) noexcept {
      auto* a = static_cast<SleepAwaiter*>(hook);
      a->shard_->timers().cancel(&a->timer_);
      a->shard_->schedule(a->h_, a->task_);
    };
    detail::arm_cancel(task_, this);
  }
  void await_resume() {
    detail::disarm_cancel(task_, this);
    detail::throw_if_cancelled(task_);
  }

 private:
  std::int64_t deadline_;
  Shard* shard_ = nullptr;
  detail::TaskControl* task_ = nullptr;
  std::coroutine_handle<> h_{};
  detail::OwnedTimer<SleepAwaiter> timer_{};
};

// Suspends the calling task for at least `d` (CLOCK_MONOTONIC). A cancellation ends the sleep at once.
inline SleepAwaiter sleep_for(Duration d) noexcept {
  return SleepAwaiter(deadline_after(d));
}

// Suspends until `deadline` on the steady clock (CLOCK_MONOTONIC on Linux). Periodic loops that add their
// period to the previous deadline, not to "now", do not drift.
inline SleepAwaiter sleep_until(std::chrono::steady_clock::time_point deadline) noexcept {
  return SleepAwaiter(std::chrono::duration_cast<Duration>(deadline.time_since_epoch()).count());
}

// Lets every other ready task on this shard run once before the caller continues.
struct [[nodiscard]] YieldAwaiter {
  detail::TaskControl* task = nullptr;
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) {
    Shard& s = this_shard();
    task = s.current_task();
    s.schedule(h, task);
  }
  void await_resume() const { detail::throw_if_cancelled(task); }
};
inline YieldAwaiter yield() noexcept {
  return {};
}

// Runs `task` as its own task and returns its value, unless `timeout` passes first: then the task is
// cancelled, waited for (it ends at its next suspension point), and TimedOut is thrown.
template <class T>
Task<T> with_timeout(Duration timeout, Task<T> task) {
  TaskHandle<T> h = spawn(std::move(task));
  std::exception_ptr caller_error;  // the caller itself was cancelled while waiting
  try {
    if constexpr (std::is_void_v<T>) {
      co_await h.join_for(timeout);
      co_return;
    } else {
      co_return co_await h.join_for(timeout);
    }
  } catch (const TimedOut&) {
    // fall through: cancel the task and wait for it below (no co_await is allowed inside a handler)
  } catch (const TaskCancelled&) {
    caller_error = std::current_exception();
  }
  // A timeout, or the caller's own cancellation (the task's own exceptions propagated above): end the task.
  h.cancel();
  if (caller_error) std::rethrow_exception(caller_error);
  // One lap of the run queue lets a task cancelled at a timer, io or local wait end now. A task waiting for
  // another shard's answer cannot end before that answer comes: it is left to finish in the background (the
  // handle is dropped), so the timeout bounds the caller's wait in every case.
  if (!h.done()) co_await yield();
  throw TimedOut();
}

}  // namespace moirai
