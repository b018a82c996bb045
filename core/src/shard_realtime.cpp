// Real time: a task's scheduling class, admission control, round-robin slices and the end of each job.
#include "moirai/core/detail/shard_core.hpp"

#include <string>

#include "moirai/rt/analysis.hpp"
#include "runtime_state.hpp"

namespace moirai::detail {

namespace {

bool takes_part_in_admission(const rt::RtConstraints& c) noexcept {
  return c.wcet().count() > 0 && (c.policy().kind == rt::PolicyKind::rate_monotonic ||
                                  c.policy().kind == rt::PolicyKind::deadline_driven);
}

}  // namespace

void ShardCore::classify(TaskControl* t, const TaskContext& ctx) noexcept {
  const rt::RtConstraints& c = ctx.constraints;
  SchedParams& p = t->sched;
  switch (c.policy().kind) {
    case rt::PolicyKind::deadline_driven:
      p.cls = SchedClass::deadline;
      break;
    case rt::PolicyKind::rate_monotonic:
      p.cls = SchedClass::rate_monotonic;
      p.key = c.period().count();
      break;
    case rt::PolicyKind::round_robin:
      p.cls = SchedClass::fixed_priority;
      p.round_robin = true;
      p.slice_ticks = ns_to_ticks(c.policy().time_slice.count());
      break;
    case rt::PolicyKind::fifo:
      p.cls = ctx.priority != 0 ? SchedClass::fixed_priority : SchedClass::best_effort;
      break;
  }
  if (c.has_deadline() || c.wcet().count() > 0) {
    t->release_ns = monotonic_ns();
    t->deadline_ns = c.deadline().count();
    t->wcet_ns = c.wcet().count();
    t->wcet_ticks = ns_to_ticks(t->wcet_ns);
    if (p.cls == SchedClass::deadline) p.key = t->release_ns + t->deadline_ns;
  }
}

void ShardCore::check_admission(const TaskContext& ctx) {
  const rt::RtConstraints& c = ctx.constraints;
  if (!ctx.admission_control || !takes_part_in_admission(c)) return;
  const rt::PolicyKind kind = c.policy().kind;
  for (const rt::RtConstraints& a : admitted_) {
    if (a.policy().kind != kind) {
      throw Error(Errc::admission_refused,
                  std::string("spawn of '") + std::string(ctx.name) + "' refused on shard " +
                      std::to_string(id_) + ": this shard already runs " + rt::to_string(a.policy().kind) +
                      " tasks, and a shard's task set is analysed under one policy; put " +
                      rt::to_string(kind) +
                      " tasks on another shard, or spawn with TaskContext::without_admission_control()");
    }
  }
  admitted_.push_back(c);
  const rt::AnalysisResult result = rt::analyze(admitted_, kind);
  admitted_.pop_back();
  if (!result.schedulable) {
    throw Error(Errc::admission_refused,
                std::string("spawn of '") + std::string(ctx.name) + "' refused on shard " +
                    std::to_string(id_) + ": with it the shard's " + rt::to_string(kind) +
                    " task set is unschedulable (" + result.explanation +
                    "); lower its WCET, lengthen its period, run it on another shard, or spawn with "
                    "TaskContext::without_admission_control()");
  }
}

void ShardCore::admit(TaskControl* t, const TaskContext& ctx) {
  if (!takes_part_in_admission(ctx.constraints)) return;
  admitted_.push_back(ctx.constraints);
  admitted_tasks_.push_back(t);
  t->admitted = true;
}

void ShardCore::remove_admitted(TaskControl* t) noexcept {
  for (std::size_t i = 0; i < admitted_tasks_.size(); ++i) {
    if (admitted_tasks_[i] != t) continue;
    admitted_tasks_[i] = admitted_tasks_.back();
    admitted_tasks_.pop_back();
    admitted_[i] = admitted_.back();
    admitted_.pop_back();
    break;
  }
  t->admitted = false;
}

void ShardCore::schedule_round_robin(std::coroutine_handle<> h, TaskControl* t) {
  const std::uint64_t ran_now = ticks() - resume_start_;
  if (t->sched.slice_used_ticks + ran_now < t->sched.slice_ticks) {
    runq_.push_front({h, t});
    return;
  }
  // Slice used: to the back of its level, with a fresh slice. run_tasks adds this whole resumption when it
  // ends; start the count at minus what has run so far, so only the time after the rotation stays counted.
  t->sched.slice_used_ticks = std::uint64_t{0} - ran_now;
  runq_.push({h, t});
}

ShardCore::JobVerdict ShardCore::end_job(TaskControl* t, std::int64_t release_ns, std::int64_t deadline_ns,
                                         std::int64_t end_ns, std::uint64_t exec) noexcept {
  JobVerdict v;
  v.missed = end_ns > deadline_ns;
  v.overran = t->wcet_ticks != 0 && exec > t->wcet_ticks;
  if (!v.missed && !v.overran) [[likely]]
    return v;
  DeadlineMissReport report;
  report.shard = id_;
  report.task_id = t->id;
  report.task_name = t->name;
  report.release_ns = release_ns;
  report.deadline_ns = deadline_ns;
  report.finished_ns = end_ns;
  report.executed = std::chrono::nanoseconds(ticks_to_ns(exec));
  report.wcet = std::chrono::nanoseconds(t->wcet_ns);
  if (v.missed) {
    ++t->deadline_misses;
    bump(stats_.deadline_misses);
    report.kind = DeadlineMissReport::Kind::deadline_miss;
    if (rt_.options.on_deadline_miss) rt_.options.on_deadline_miss(report);
  }
  if (v.overran) {
    ++t->wcet_overruns;
    bump(stats_.wcet_overruns);
    report.kind = DeadlineMissReport::Kind::wcet_overrun;
    if (rt_.options.on_deadline_miss) rt_.options.on_deadline_miss(report);
  }
  return v;
}

}  // namespace moirai::detail
