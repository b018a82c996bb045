// Periodic tasks: a job released every `period` at absolute times (first + k * period), so the releases keep
// their phase for hours instead of drifting by the loop's own running time. Each release's jitter (start -
// release) and response time (finish - release) are recorded; a job that finishes past its deadline, or runs
// longer than its WCET, is counted on the task and on the shard and reported to the runtime's handler.
#pragma once

#include <chrono>
#include <concepts>
#include <cstdint>
#include <memory>
#include <type_traits>
#include <utility>

#include "moirai/core/clock.hpp"
#include "moirai/core/detail/shard_core.hpp"
#include "moirai/core/histogram.hpp"
#include "moirai/core/spawn.hpp"
#include "moirai/core/task.hpp"
#include "moirai/core/task_context.hpp"
#include "moirai/core/timer.hpp"

namespace moirai {

// What a job of a periodic task is told about itself.
struct JobInfo {
  std::uint64_t index = 0;       // 0 for the first release
  std::int64_t release_ns = 0;   // monotonic_ns() time of this release: first + index * period
  std::int64_t deadline_ns = 0;  // absolute deadline of this job
};

// Written by the periodic task's shard; read it there, or anywhere after the task has been joined.
struct PeriodicStats {
  std::uint64_t releases = 0;
  std::uint64_t deadline_misses = 0;
  std::uint64_t wcet_overruns = 0;
  LatencyHistogram jitter_ns;    // start of the job - its release
  LatencyHistogram response_ns;  // end of the job - its release
};

class PeriodicTask {
 public:
  PeriodicTask(TaskHandle<void> handle, std::shared_ptr<PeriodicStats> stats) noexcept
      : handle_(std::move(handle)), stats_(std::move(stats)) {}
  TaskHandle<void>& handle() noexcept { return handle_; }
  const PeriodicStats& stats() const noexcept { return *stats_; }
  // Stops the releases: the job running now (if any) sees TaskCancelled at its next suspension point.
  void cancel() noexcept { handle_.cancel(); }
  // Ends when the task does: cancelled (throws TaskCancelled), a job returned false (returns), or a job
  // threw.
  auto join() noexcept { return handle_.join(); }

 private:
  TaskHandle<void> handle_;
  std::shared_ptr<PeriodicStats> stats_;
};

namespace detail {

// A job is a callable taking (const JobInfo&) or nothing, returning void, bool (false: stop releasing), or a
// Task<void>/Task<bool> to await.
template <class Fn>
Task<bool> run_job(Fn& fn, const JobInfo& job) {
  using R = std::conditional_t<std::is_invocable_v<Fn&, const JobInfo&>,
                               std::invoke_result<Fn&, const JobInfo&>, std::invoke_result<Fn&>>;
  using Result = typename R::type;
  auto call = [&]() -> decltype(auto) {
    if constexpr (std::is_invocable_v<Fn&, const JobInfo&>) {
      return fn(job);
    } else {
      return fn();
    }
  };
  if constexpr (is_task_v<Result>) {
    if constexpr (std::is_same_v<Result, Task<bool>>) {
      co_return co_await call();
    } else {
      co_await call();
      co_return true;
    }
  } else if constexpr (std::is_same_v<Result, bool>) {
    co_return call();
  } else {
    call();
    co_return true;
  }
}

template <class Fn>
Task<void> periodic_loop(Fn fn, std::shared_ptr<PeriodicStats> stats, std::int64_t first, std::int64_t period,
                         std::int64_t deadline) {
  detail::ShardCore& shard = detail::this_core();
  TaskControl* self = shard.current_task();
  self->periodic = true;  // its jobs end here, not when the task does
  for (std::uint64_t k = 0;; ++k) {
    const std::int64_t release = first + static_cast<std::int64_t>(k) * period;
    // EDF orders by the absolute deadline of the job about to be released: set it before the timer's wake-up
    // puts the task back in the run queue.
    if (self->sched.cls == SchedClass::deadline) self->sched.key = release + deadline;
    co_await SleepAwaiter(release);
    const std::int64_t start = monotonic_ns();
    const std::uint64_t exec_before = shard.exec_ticks(self);
    ++stats->releases;
    stats->jitter_ns.record(static_cast<std::uint64_t>(start > release ? start - release : 0));
    const JobInfo job{k, release, release + deadline};
    const bool again = co_await run_job(fn, job);
    const std::int64_t end = monotonic_ns();
    stats->response_ns.record(static_cast<std::uint64_t>(end - release));
    const detail::ShardCore::JobVerdict v =
        shard.end_job(self, release, release + deadline, end, shard.exec_ticks(self) - exec_before);
    stats->deadline_misses += v.missed ? 1 : 0;
    stats->wcet_overruns += v.overran ? 1 : 0;
    if (!again) co_return;
  }
}

}  // namespace detail

// Spawns a task on the calling shard that runs `fn` at first_release + k * period for k = 0, 1, ... until it
// is cancelled or `fn` returns false. `ctx` may carry the task's constraints (with_period with the same
// period, a WCET and a deadline, under rate-monotonic or EDF ordering): then admission control checks the
// shard's periodic set first and throws Error(admission_refused) with the analysis when it would be
// unschedulable. Without constraints the task is released the same way, ordered as best effort, and its
// deadline is the period. Throws Error(invalid_argument) for a period <= 0 or constraints with another
// period.
template <class Fn>
PeriodicTask every(Duration period, Fn fn, TaskContext ctx = {}, std::int64_t first_release_ns = 0) {
  if (period.count() <= 0) {
    throw Error(Errc::invalid_argument,
                "every(): the period must be positive (got " + std::to_string(period.count()) + " ns)");
  }
  if (ctx.constraints.is_periodic() && ctx.constraints.period() != period) {
    throw Error(Errc::invalid_argument, "every(): the period (" + std::to_string(period.count()) +
                                            " ns) differs from the task's constraints (" +
                                            std::to_string(ctx.constraints.period().count()) +
                                            " ns); give the same period to both");
  }
  const std::int64_t deadline =
      ctx.constraints.has_deadline() ? ctx.constraints.deadline().count() : period.count();
  const std::int64_t first = first_release_ns != 0 ? first_release_ns : monotonic_ns();
  auto stats = std::make_shared<PeriodicStats>();
  TaskHandle<void> h =
      spawn(detail::periodic_loop(std::move(fn), stats, first, period.count(), deadline), ctx);
  return PeriodicTask(std::move(h), std::move(stats));
}

}  // namespace moirai
