// Tasks: their records, their resumption in the run of tasks, and their end.
#include "moirai/core/detail/shard_core.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "moirai/core/spawn.hpp"
#include "moirai/core/task.hpp"
#include "runtime_state.hpp"

namespace moirai::detail {

TaskControl* ShardCore::new_task(std::coroutine_handle<> frame, PromiseBase* promise, const TaskContext& ctx,
                                 std::uint32_t refs) {
  void* mem = allocator_->allocate(sizeof(TaskControl));
  auto* t = new (mem) TaskControl{};
  t->frame = frame;
  t->promise = promise;
  t->shard = this;
  t->refs = refs;
  t->id = ctx.id != 0 ? ctx.id : next_task_id_++;
  t->sched.priority = ctx.priority;
  if (ctx.priority != 0 || ctx.constraints != rt::RtConstraints{}) [[unlikely]] {
    classify(t, ctx);
    admit(t, ctx);
  }
  const std::size_t len = std::min(ctx.name.size(), sizeof(t->name) - 1);
  if (len != 0) std::memcpy(t->name, ctx.name.data(), len);  // data() may be null for an empty name
  t->name[len] = '\0';
  t->next = live_head_;
  if (live_head_ != nullptr) live_head_->prev = t;
  live_head_ = t;
  ++live_count_;
  bump(stats_.tasks_spawned);
  return t;
}

void spawn_forwarder(Task<void> task) {
  spawn_control(std::move(task), TaskContext{}, 1, true)->must_start = true;
}

void ShardCore::release_task(TaskControl* t) noexcept {
  if (--t->refs != 0) return;
  // Destroying a frame destroys the TaskHandles it holds, which may release more tasks: a chain of 10,000
  // tasks each holding the next would recurse 10,000 frames deep. Queue the doomed ones and destroy them in a
  // loop instead. The task has completed, so it is off the live list and `next` is free to link the queue.
  ShardCore& s = core(*t->shard);
  t->next = s.doomed_;
  s.doomed_ = t;
  if (s.destroying_) return;
  s.destroying_ = true;
  while (TaskControl* d = s.doomed_) {
    s.doomed_ = d->next;
    d->frame.destroy();
    d->~TaskControl();
    FrameAllocator::deallocate(d);
  }
  s.destroying_ = false;
}

std::coroutine_handle<> on_root_complete(TaskControl* t) noexcept {
  ShardCore& s = core(*t->shard);
  PromiseBase& p = *t->promise;
  if (p.exception_) {
    try {
      std::rethrow_exception(p.exception_);
    } catch (const TaskCancelled&) {
      t->status = TaskStatus::cancelled;
    } catch (const std::exception& e) {
      t->status = TaskStatus::failed;
      if (t->detached && t->on_done == nullptr) {
        std::fprintf(stderr, "moirai: shard %u: detached task '%s' (id %llu) failed: %s\n", s.id(), t->name,
                     static_cast<unsigned long long>(t->id), e.what());
      }
    } catch (...) {
      t->status = TaskStatus::failed;
    }
  } else {
    t->status = TaskStatus::completed;
  }
  if (t->deadline_ns != 0 && !t->periodic && t->status == TaskStatus::completed) {
    s.end_job(t, t->release_ns, t->release_ns + t->deadline_ns, monotonic_ns(), s.exec_ticks(t));
  }
  if (t->admitted) s.remove_admitted(t);
  ShardCore::bump(t->status == TaskStatus::completed ? s.stats_.tasks_completed
                  : t->status == TaskStatus::failed  ? s.stats_.tasks_failed
                                                     : s.stats_.tasks_cancelled);
  // Unlink from the live list.
  if (t->prev != nullptr) t->prev->next = t->next;
  if (t->next != nullptr) t->next->prev = t->prev;
  if (s.live_head_ == t) s.live_head_ = t->next;
  t->prev = t->next = nullptr;
  --s.live_count_;
  t->hook = nullptr;

  std::coroutine_handle<> next = std::noop_coroutine();
  if (t->joiner) {
    next = t->joiner;
    if (t->joiner_task != nullptr) t->joiner_task->hook = nullptr;
    s.current_task_ = t->joiner_task;  // the joiner runs next, on this stack, as its own task
    t->joiner = {};
  }
  if (t->on_done != nullptr) t->on_done(t);
  // The task the loop resumed stays allocated until the loop has checked its running time (run_tasks).
  if (t == s.resumed_task_) {
    s.resumed_task_done_ = true;
  } else {
    ShardCore::release_task(
        t);  // may destroy the frame we are suspended in: allowed at the final suspend point
  }
  return next;
}

void ShardCore::finish_unstarted_cancelled(TaskControl* t) noexcept {
  try {
    t->promise->exception_ = std::make_exception_ptr(TaskCancelled());
  } catch (...) {
  }
  resumed_task_ = nullptr;
  std::coroutine_handle<> next = on_root_complete(t);
  if (next != std::noop_coroutine()) schedule(next, current_task_);
}

bool ShardCore::run_tasks() {
  if (runq_.empty()) return false;
  const unsigned quota = rt_.options.task_quota;
  const bool check_stalls = stall_ticks_ != 0;
  const bool measured = histograms_ != nullptr;
  // One clock read per resumption serves the stall check, the histograms and real-time accounting.
  const bool clocked = check_stalls || measured;
  std::uint64_t t0 = clocked ? ticks() : 0;
  unsigned n = 0;
  while (n < quota && !runq_.empty()) {
    Runnable r = runq_.pop();
    TaskControl* t = r.task;
    if (t != nullptr && t->status == TaskStatus::queued) {
      if (t->cancel_requested && !t->must_start) {
        finish_unstarted_cancelled(t);
        continue;
      }
      t->status = TaskStatus::running;
    }
    current_task_ = t;
    resumed_task_ = t;
    resumed_task_done_ = false;
    inline_io_left_ = inline_io_per_resume_;
    // Real-time tasks have their execution time accounted (WCET checks, round-robin slices); the others pay
    // for the clock only when the stall check is on.
    const bool timed = t != nullptr && t->sched.cls != SchedClass::best_effort;
    if (timed && !clocked) t0 = ticks();
    resume_start_ = t0;
    if (check_stalls) {
      running_task_id_.store(t != nullptr ? t->id : 0, std::memory_order_relaxed);
      running_since_.store(t0, std::memory_order_release);  // release: the id above goes with it
    }
    if (measured && t != nullptr)
      record(ShardHistogram::scheduling_delay, t0 > t->ready_ticks ? t0 - t->ready_ticks : 0);
    r.handle.resume();
    ++n;
    if (clocked || timed) {
      const std::uint64_t t1 = ticks();
      if (measured) record(ShardHistogram::task_run_time, t1 - t0);
      if (check_stalls && t1 - t0 > stall_ticks_ && t != nullptr && !t->stall_reported)
        report_stall(t, t1 - t0);
      if (timed) {
        t->exec_ticks += t1 - t0;
        t->sched.slice_used_ticks += t1 - t0;
      }
      t0 = t1;
    }
    if (resumed_task_done_) ShardCore::release_task(t);
    resumed_task_ = nullptr;
  }
  current_task_ = nullptr;
  if (check_stalls) running_since_.store(0, std::memory_order_relaxed);
  bump(stats_.tasks_run, n);
  return true;
}

void ShardCore::cancel_all_live() noexcept {
  for (TaskControl* t = live_head_; t != nullptr; t = t->next)
    t->request_cancel();
}

}  // namespace moirai::detail
