#include "moirai/core/shard.hpp"

#include "moirai/core/cpu_relax.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <new>

#include "moirai/core/task.hpp"
#include "moirai/numa/topology.hpp"
#include "moirai/rt/analysis.hpp"
#include "runtime_state.hpp"

namespace moirai {
namespace {

constexpr long long kBackpressureRecheckNs =
    50'000;  // a full peer ring does not wake us; look again this soon
constexpr long long kStoppingRecheckNs =
    1'000'000;  // while stopping, look at the shutdown timeout this often
constexpr unsigned kWatchLaps =
    1024;  // spin strategy: idle laps between two reads of the clock for the watch
// busy_poll: a shard leaves the kernel's spin this long before its next timer is due and spins the rest in
// user space, since a wait that runs to its timeout ends with a short sleep in the kernel (about 13 us here)
// that would make the timer that late.
constexpr long long kBusyPollTimerMarginNs = 50'000;

}  // namespace

const char* to_string(TaskStatus s) noexcept {
  switch (s) {
    case TaskStatus::queued:
      return "queued";
    case TaskStatus::running:
      return "running";
    case TaskStatus::completed:
      return "completed";
    case TaskStatus::cancelled:
      return "cancelled";
    case TaskStatus::failed:
      return "failed";
  }
  return "?";
}

Shard& this_shard() {
  if (detail::t_shard == nullptr) [[unlikely]] {
    throw Error(Errc::not_on_shard,
                "this call must be made on a shard thread (inside a task of Runtime::run() or started by "
                "Runtime::start()); from any other thread use Runtime::submit()");
  }
  return *detail::t_shard;
}

namespace {

int node_of(int cpu) {
  const int node = numa::Topology::system().node_of_cpu(cpu);
  return node >= 0 ? node : 0;
}

}  // namespace

Shard::Shard(detail::RuntimeState& rt, unsigned id, int cpu)
    : rt_(rt), id_(id), cpu_(cpu), shard_count_(static_cast<unsigned>(rt.cpus.size())), node_(node_of(cpu)) {
  memory_options_.huge_pages = rt.options.huge_pages ? numa::HugePages::prefer : numa::HugePages::off;
  memory_options_.lock = rt.options.lock_memory;
  memory_options_.prefault = true;
  inline_io_per_resume_ = rt.options.inline_io_per_resumption;
  idle_polls_per_lap_ = rt.options.idle_polls_per_lap;
  memory_.cpu = cpu;
  memory_.node = node_;
  // Message slots are small: huge pages would waste most of a 2 MiB page per ring.
  numa::AllocationOptions slot_options = memory_options_;
  slot_options.huge_pages = numa::HugePages::off;
  std::string lock_refused;
  const std::size_t n = shard_count_;
  incoming_.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    incoming_.push_back(std::make_unique<detail::SpscRing>(rt.options.queue_capacity, [&](std::size_t bytes) {
      return detail::map_shard_memory(node_, bytes, slot_options, lock_refused);
    }));
    memory_.message_bytes += incoming_.back()->memory().size();
  }
  if (rt.options.metrics) {
    constexpr std::size_t bytes = sizeof(SharedHistogram) * kShardHistogramCount;
    numa::AllocationOptions histogram_options = memory_options_;
    histogram_options.huge_pages = numa::HugePages::off;
    histogram_memory_ = detail::map_shard_memory(node_, bytes, histogram_options, lock_refused);
    histograms_ = new (histogram_memory_.data()) SharedHistogram[kShardHistogramCount];
    ns_per_tick_q32_ = static_cast<std::uint64_t>(1000.0 / ticks_per_us() * 4294967296.0);
  }
  if (!lock_refused.empty()) {
    memory_options_.lock = false;
    memory_.warning = "memory not locked: " + lock_refused;
  }
  outgoing_.assign(n, nullptr);
  pending_.assign(n, {});
  dirty_.reserve(n);
  is_dirty_.assign(n, 0);
}

Shard::~Shard() {
  if (eventfd_ >= 0) close(eventfd_);
}

ShardStats Shard::stats() const noexcept {
  auto r = [](const std::atomic<std::uint64_t>& c) { return c.load(std::memory_order_relaxed); };
  ShardStats s;
  s.tasks_spawned = r(stats_.tasks_spawned);
  s.tasks_run = r(stats_.tasks_run);
  s.tasks_completed = r(stats_.tasks_completed);
  s.tasks_failed = r(stats_.tasks_failed);
  s.tasks_cancelled = r(stats_.tasks_cancelled);
  s.messages_in = r(stats_.messages_in);
  s.messages_out = r(stats_.messages_out);
  s.completions = r(stats_.completions);
  s.timers_fired = r(stats_.timers_fired);
  s.wakeups_sent = r(stats_.wakeups_sent);
  s.sleeps = r(stats_.sleeps);
  s.busy_polls = r(stats_.busy_polls);
  s.inline_io = r(stats_.inline_io);
  s.idle_poll_hits = r(stats_.idle_poll_hits);
  s.stalls = r(stats_.stalls);
  s.deadline_misses = r(stats_.deadline_misses);
  s.wcet_overruns = r(stats_.wcet_overruns);
  return s;
}

void Shard::metrics_into(ShardMetrics& out) const noexcept {
  out.shard = id_;
  out.cpu = cpu_;
  out.counters = stats();
  for (std::size_t i = 0; i < kShardHistogramCount; ++i) {
    if (histograms_ != nullptr) {
      histograms_[i].snapshot_into(out.histograms[i]);
    } else {
      out.histograms[i].reset();
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Set-up and tear-down, on the shard's own thread (the ring is single-issuer; memory is first touched here so
// that it lands on this CPU's node).

void Shard::init_on_thread() {
  detail::t_shard = this;
  apply_thread_policy();
  admitted_.reserve(64);
  admitted_tasks_.reserve(64);
  detail::FrameMemoryOptions fo;
  fo.node = node_;
  fo.initial_bytes = rt_.options.memory_per_shard;
  fo.chunk_bytes = rt_.options.frame_chunk_bytes;
  fo.memory = memory_options_;
  allocator_ = std::make_unique<detail::FrameAllocator>(fo);
  detail::t_frame_allocator = allocator_.get();
  if (!allocator_->lock_refused().empty()) {
    memory_options_.lock = false;
    if (memory_.warning.empty()) memory_.warning = "memory not locked: " + allocator_->lock_refused();
  }
  if (rt_.options.io_buffer_count != 0) {
    numa::AllocationOptions bo = memory_options_;
    bo.huge_pages = numa::HugePages::off;
    constexpr std::size_t kAlign = numa::NodePool::kAlignment;
    const std::size_t block = (rt_.options.io_buffer_size + kAlign - 1) / kAlign * kAlign;
    std::string refused;
    numa::NodeMemory m = detail::map_shard_memory(node_, block * rt_.options.io_buffer_count, bo, refused);
    io_buffers_.emplace(std::move(m), rt_.options.io_buffer_size, rt_.options.io_buffer_count, false);
    memory_.io_buffer_bytes = io_buffers_->memory().size();
    if (!refused.empty()) {
      memory_options_.lock = false;
      if (memory_.warning.empty()) memory_.warning = "memory not locked: " + refused;
    }
  }
  memory_.frame_bytes = allocator_->bytes_mapped();
  memory_.pages = allocator_->pages();
  memory_.bound = allocator_->bound();
  memory_.locked = allocator_->locked() && memory_options_.lock;
  // Running unlocked is allowed, silently it is not: one line per runtime, the reason and the fix with it.
  if (rt_.options.lock_memory && !memory_.locked && !rt_.memory_lock_warned.exchange(true)) {
    std::fprintf(stderr, "moirai: shard %u (cpu %d): %s\n", id_, cpu_, memory_.warning.c_str());
  }
  memory_.prefaulted = true;
  if (rt_.options.huge_pages && memory_.pages == numa::PageKind::normal) {
    if (!memory_.warning.empty()) memory_.warning += "; ";
    memory_.warning +=
        "huge pages not obtained (no hugetlb pages reserved and transparent huge pages off): reserve some "
        "with "
        "`sysctl vm.nr_hugepages=N` or enable THP (madvise)";
  }
  io::RingOptions ro;
  ro.sq_entries = rt_.options.ring_entries;
  ro.best_mode = rt_.options.ring_mode;
  ring_.emplace(ro);

  // A blocking eventfd on purpose: io_uring returns -EAGAIN for a read on a non-blocking fd instead of arming
  // a poll. Writes never block (the counter would have to reach 2^64-1).
  eventfd_ = eventfd(0, EFD_CLOEXEC);
  if (eventfd_ < 0) {
    throw Error(Errc::setup_failed, std::string("eventfd failed: ") + std::strerror(errno) +
                                        "; raise the file-descriptor limit (ulimit -n)");
  }
  msg_ring_wake_.shard = this;
  msg_ring_wake_.on_complete = [](io::Completion*, int, std::uint32_t) noexcept {};  // waking was the point
  eventfd_wake_.shard = this;
  eventfd_wake_.on_complete = [](io::Completion* c, int, std::uint32_t) noexcept {
    auto* self = static_cast<WakeCompletion*>(c)->shard;
    self->eventfd_armed_ = false;
    self->arm_eventfd_read();
  };
  arm_eventfd_read();
  ring_->submit();
  if (rt_.options.idle == IdleStrategy::busy_poll) {
    const std::string refused = ring_->enable_busy_poll(
        std::chrono::duration_cast<std::chrono::microseconds>(rt_.options.busy_poll_window));
    kernel_busy_poll_ = refused.empty();
    if (!kernel_busy_poll_ && !rt_.busy_poll_warned.exchange(true)) {
      std::fprintf(stderr, "moirai: idle strategy busy-poll: %s\n", refused.c_str());
    }
  }

  const double tpu = ticks_per_us();
  const auto to_ticks = [tpu](std::chrono::nanoseconds d) {
    return static_cast<std::uint64_t>(static_cast<double>(d.count()) / 1000.0 * tpu);
  };
  spin_ticks_ = to_ticks(rt_.options.idle == IdleStrategy::busy_poll ? rt_.options.busy_poll_after
                                                                     : rt_.options.spin_before_sleep);
  stall_ticks_ = to_ticks(rt_.options.stall_budget);
}

void Shard::arm_eventfd_read() noexcept {
  if (eventfd_armed_ || !ring_) return;
  io_uring_sqe* sqe = ring_->get_sqe();
  if (sqe == nullptr) return;  // retried at the next completion; external wakers also trip the sleeping check
  io_uring_prep_read(sqe, eventfd_, &eventfd_value_, sizeof(eventfd_value_), 0);
  io::Ring::set_completion(sqe, &eventfd_wake_);
  eventfd_armed_ = true;
}

void Shard::fini_on_thread() noexcept {
  // Tasks still live here overran the shutdown timeout (or set-up failed half-way). Close the ring first: the
  // kernel cancels their io before their frames, which io buffers may live in, are freed.
  ring_.reset();
  while (live_head_ != nullptr) {
    detail::TaskControl* t = live_head_;
    live_head_ = t->next;
    t->frame.destroy();
    t->~TaskControl();
    detail::FrameAllocator::deallocate(t);
  }
  live_count_ = 0;
  io_buffers_.reset();
  if (allocator_) allocator_->drain_remote();
  allocator_.reset();
  detail::t_frame_allocator = nullptr;
  detail::t_shard = nullptr;
}

// ---------------------------------------------------------------------------------------------------------------
// Tasks.

detail::TaskControl* Shard::new_task(std::coroutine_handle<> frame, detail::PromiseBase* promise,
                                     const TaskContext& ctx, std::uint32_t refs) {
  void* mem = allocator_->allocate(sizeof(detail::TaskControl));
  auto* t = new (mem) detail::TaskControl{};
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

void Shard::release_task(detail::TaskControl* t) noexcept {
  if (--t->refs != 0) return;
  // Destroying a frame destroys the TaskHandles it holds, which may release more tasks: a chain of 10,000
  // tasks each holding the next would recurse 10,000 frames deep. Queue the doomed ones and destroy them in a
  // loop instead. The task has completed, so it is off the live list and `next` is free to link the queue.
  Shard& s = *t->shard;
  t->next = s.doomed_;
  s.doomed_ = t;
  if (s.destroying_) return;
  s.destroying_ = true;
  while (detail::TaskControl* d = s.doomed_) {
    s.doomed_ = d->next;
    d->frame.destroy();
    d->~TaskControl();
    detail::FrameAllocator::deallocate(d);
  }
  s.destroying_ = false;
}

namespace detail {

std::coroutine_handle<> on_root_complete(TaskControl* t) noexcept {
  Shard& s = *t->shard;
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
  Shard::bump(t->status == TaskStatus::completed ? s.stats_.tasks_completed
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
    Shard::release_task(t);  // may destroy the frame we are suspended in: allowed at the final suspend point
  }
  return next;
}

}  // namespace detail

void Shard::finish_unstarted_cancelled(detail::TaskControl* t) noexcept {
  try {
    t->promise->exception_ = std::make_exception_ptr(TaskCancelled());
  } catch (...) {
  }
  resumed_task_ = nullptr;
  std::coroutine_handle<> next = detail::on_root_complete(t);
  if (next != std::noop_coroutine()) schedule(next, current_task_);
}

bool Shard::run_tasks() {
  if (runq_.empty()) return false;
  const unsigned quota = rt_.options.task_quota;
  const bool check_stalls = stall_ticks_ != 0;
  const bool measured = histograms_ != nullptr;
  // One clock read per resumption serves the stall check, the histograms and real-time accounting.
  const bool clocked = check_stalls || measured;
  std::uint64_t t0 = clocked ? ticks() : 0;
  unsigned n = 0;
  while (n < quota && !runq_.empty()) {
    detail::Runnable r = runq_.pop();
    detail::TaskControl* t = r.task;
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
    const bool timed = t != nullptr && t->sched.cls != detail::SchedClass::best_effort;
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
    if (resumed_task_done_) Shard::release_task(t);
    resumed_task_ = nullptr;
  }
  current_task_ = nullptr;
  if (check_stalls) running_since_.store(0, std::memory_order_relaxed);
  bump(stats_.tasks_run, n);
  return true;
}

// ---------------------------------------------------------------------------------------------------------------
// Real time.

namespace {

std::uint64_t ns_to_ticks(std::int64_t ns) noexcept {
  return ns <= 0 ? 0 : static_cast<std::uint64_t>(static_cast<double>(ns) * ticks_per_us() / 1000.0);
}

std::int64_t ticks_to_ns(std::uint64_t t) noexcept {
  return static_cast<std::int64_t>(static_cast<double>(t) / ticks_per_us() * 1000.0);
}

bool takes_part_in_admission(const rt::RtConstraints& c) noexcept {
  return c.wcet().count() > 0 && (c.policy().kind == rt::PolicyKind::rate_monotonic ||
                                  c.policy().kind == rt::PolicyKind::deadline_driven);
}

}  // namespace

void Shard::classify(detail::TaskControl* t, const TaskContext& ctx) noexcept {
  const rt::RtConstraints& c = ctx.constraints;
  detail::SchedParams& p = t->sched;
  switch (c.policy().kind) {
    case rt::PolicyKind::deadline_driven:
      p.cls = detail::SchedClass::deadline;
      break;
    case rt::PolicyKind::rate_monotonic:
      p.cls = detail::SchedClass::rate_monotonic;
      p.key = c.period().count();
      break;
    case rt::PolicyKind::round_robin:
      p.cls = detail::SchedClass::fixed_priority;
      p.round_robin = true;
      p.slice_ticks = ns_to_ticks(c.policy().time_slice.count());
      break;
    case rt::PolicyKind::fifo:
      p.cls = ctx.priority != 0 ? detail::SchedClass::fixed_priority : detail::SchedClass::best_effort;
      break;
  }
  if (c.has_deadline() || c.wcet().count() > 0) {
    t->release_ns = monotonic_ns();
    t->deadline_ns = c.deadline().count();
    t->wcet_ns = c.wcet().count();
    t->wcet_ticks = ns_to_ticks(t->wcet_ns);
    if (p.cls == detail::SchedClass::deadline) p.key = t->release_ns + t->deadline_ns;
  }
}

void Shard::check_admission(const TaskContext& ctx) {
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

void Shard::admit(detail::TaskControl* t, const TaskContext& ctx) {
  if (!takes_part_in_admission(ctx.constraints)) return;
  admitted_.push_back(ctx.constraints);
  admitted_tasks_.push_back(t);
  t->admitted = true;
}

void Shard::remove_admitted(detail::TaskControl* t) noexcept {
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

void Shard::schedule_round_robin(std::coroutine_handle<> h, detail::TaskControl* t) {
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

Shard::JobVerdict Shard::end_job(detail::TaskControl* t, std::int64_t release_ns, std::int64_t deadline_ns,
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

void Shard::apply_thread_policy() {
  const rt::ThreadPolicy& want = rt_.options.thread_policy;
  if (want == rt::ThreadPolicy{}) {
    thread_policy_.ok = true;
    thread_policy_.requested = thread_policy_.applied = want;
    return;
  }
  thread_policy_ = rt::apply_thread_policy(want, 0, rt_.options.thread_policy_options);
  if (!thread_policy_.ok && !rt_.thread_policy_warned.exchange(true)) {
    std::fprintf(stderr, "moirai: shard %u (cpu %d) runs %s instead of %s: %s\n", id_, cpu_,
                 thread_policy_.applied.to_string().c_str(), want.to_string().c_str(),
                 thread_policy_.warning.c_str());
  }
}

void Shard::report_stall(detail::TaskControl* t, std::uint64_t ran_ticks) {
  t->stall_reported = true;
  bump(stats_.stalls);
  StallReport report;
  report.shard = id_;
  report.task_id = t->id;
  report.task_name = t->name;
  report.ran_for = std::chrono::nanoseconds(
      static_cast<long long>(static_cast<double>(ran_ticks) / ticks_per_us() * 1000.0));
  report.budget = rt_.options.stall_budget;
  report.seen_by = id_;
  if (rt_.options.on_stall) {
    rt_.options.on_stall(report);
  } else {
    std::fprintf(
        stderr,
        "moirai: shard %u (cpu %d): task '%s' (id %llu) ran %lld us without suspending (stall budget %lld "
        "us); other tasks on this shard waited\n",
        id_, cpu_, t->name, static_cast<unsigned long long>(t->id),
        static_cast<long long>(report.ran_for.count() / 1000),
        static_cast<long long>(report.budget.count() / 1000));
  }
}

// An idle shard looks at its peers once per stall budget: a peer whose current resumption began longer ago
// than the budget is stuck in a task that does not suspend, and cannot say so itself until it ends.
void Shard::watch_peers() noexcept {
  const std::uint64_t now = ticks();
  if (now - last_watch_ < stall_ticks_) return;
  last_watch_ = now;
  for (const auto& p : rt_.shards) {
    Shard& peer = *p;
    if (&peer == this) continue;
    const std::uint64_t since = peer.running_since_.load(std::memory_order_acquire);
    // `since` after `now`: another CPU's counter a little ahead, or a run that began after our read.
    if (since == 0 || since > now || now - since <= stall_ticks_) continue;
    const std::uint64_t id = peer.running_task_id_.load(std::memory_order_relaxed);
    // The id is that run's only if no other run began in between (an acquire-release pair per store; a run
    // that began since is not late yet, so it is skipped and looked at next time).
    std::atomic_thread_fence(std::memory_order_acquire);
    if (peer.running_since_.load(std::memory_order_relaxed) != since) continue;
    std::uint64_t reported = peer.ongoing_reported_.load(std::memory_order_relaxed);
    if (reported == since) continue;
    if (!peer.ongoing_reported_.compare_exchange_strong(reported, since, std::memory_order_relaxed)) continue;
    report_ongoing_stall(peer, id, now - since);
  }
}

// Whether a peer is inside a run of tasks that no watch has reported: a sleeping shard then wakes within a
// stall budget to look again, so an idle runtime's watch needs no thread of its own.
bool Shard::peer_in_unreported_run() const noexcept {
  for (const auto& p : rt_.shards) {
    if (p.get() == this) continue;
    const std::uint64_t since = p->running_since_.load(std::memory_order_relaxed);
    if (since != 0 && since != p->ongoing_reported_.load(std::memory_order_relaxed)) return true;
  }
  return false;
}

void Shard::report_ongoing_stall(const Shard& peer, std::uint64_t task_id, std::uint64_t ran_ticks) noexcept {
  try {
    StallReport report;
    report.shard = peer.id_;
    report.task_id = task_id;
    report.ran_for = std::chrono::nanoseconds(
        static_cast<long long>(static_cast<double>(ran_ticks) / ticks_per_us() * 1000.0));
    report.budget = rt_.options.stall_budget;
    report.ongoing = true;
    report.seen_by = id_;
    if (rt_.options.on_stall) {
      rt_.options.on_stall(report);
      return;
    }
    std::fprintf(stderr,
                 "moirai: shard %u (cpu %d): task id %llu has been running %lld us without suspending (stall "
                 "budget %lld us), seen from shard %u; nothing else runs on shard %u until it suspends\n",
                 peer.id_, peer.cpu_, static_cast<unsigned long long>(task_id),
                 static_cast<long long>(report.ran_for.count() / 1000),
                 static_cast<long long>(report.budget.count() / 1000), id_, peer.id_);
  } catch (...) {
    // A handler that throws cannot be allowed to take the watching shard down; the stall is reported again
    // by its own shard when the task suspends.
  }
}

void Shard::cancel_all_live() noexcept {
  for (detail::TaskControl* t = live_head_; t != nullptr; t = t->next)
    t->request_cancel();
}

// ---------------------------------------------------------------------------------------------------------------
// Cross-core messages.

detail::Message* Shard::try_claim(unsigned dest) noexcept {
  if (pending_[dest].head != nullptr) return nullptr;  // keep order behind what already waits
  return outgoing_[dest]->try_claim();
}

void Shard::commit(unsigned dest) noexcept {
  outgoing_[dest]->commit();
  bump(stats_.messages_out);
  if (!is_dirty_[dest]) {
    is_dirty_[dest] = 1;
    dirty_.push_back(dest);
  }
}

void Shard::send(unsigned dest, detail::Outbound* msg) noexcept {
  if (detail::Message* slot = try_claim(dest)) {
    msg->fill(msg, *slot);
    commit(dest);
    return;
  }
  msg->next = nullptr;
  PendingList& pl = pending_[dest];
  if (pl.tail != nullptr) {
    pl.tail->next = msg;
  } else {
    pl.head = msg;
  }
  pl.tail = msg;
  if (!is_dirty_[dest]) {
    is_dirty_[dest] = 1;
    dirty_.push_back(dest);
  }
}

bool Shard::flush_outgoing() noexcept {
  if (dirty_.empty()) return false;
  bool moved = false;
  for (std::size_t k = 0; k < dirty_.size();) {
    const unsigned d = dirty_[k];
    detail::SpscRing& ring = *outgoing_[d];
    PendingList& pl = pending_[d];
    while (pl.head != nullptr) {
      detail::Message* slot = ring.try_claim();
      if (slot == nullptr) break;
      detail::Outbound* o = pl.head;
      pl.head = o->next;
      if (pl.head == nullptr) pl.tail = nullptr;
      o->fill(o, *slot);
      ring.commit();
      bump(stats_.messages_out);
      moved = true;
    }
    if (ring.take_new_since_notify() && d != id_) wake_peer(*rt_.shards[d]);
    if (pl.head == nullptr) {
      is_dirty_[d] = 0;
      dirty_[k] = dirty_.back();
      dirty_.pop_back();
    } else {
      ++k;
    }
  }
  return moved;
}

bool Shard::drain_incoming() noexcept {
  std::size_t total = 0;
  for (auto& ring : incoming_)
    total += ring->consume(*this, 256);
  if (total == 0) return false;
  bump(stats_.messages_in, total);
  return true;
}

void Shard::push_external(detail::ExternalWork* w) noexcept {
  detail::ExternalWork* head = external_.load(std::memory_order_relaxed);
  do {
    w->next = head;
    // release: the work's contents are visible to the shard's acquire exchange in drain_external.
  } while (!external_.compare_exchange_weak(head, w, std::memory_order_release, std::memory_order_relaxed));
  wake_from_outside();
}

bool Shard::drain_external(bool refuse) noexcept {
  if (external_.load(std::memory_order_relaxed) == nullptr) return false;
  detail::ExternalWork* w = external_.exchange(nullptr, std::memory_order_acquire);
  // The stack is newest-first; reverse it so external work runs in the order it was handed in.
  detail::ExternalWork* fifo = nullptr;
  while (w != nullptr) {
    detail::ExternalWork* next = w->next;
    w->next = fifo;
    fifo = w;
    w = next;
  }
  while (fifo != nullptr) {
    detail::ExternalWork* next = fifo->next;
    fifo->run(*this, refuse);  // deletes itself when done
    fifo = next;
  }
  return true;
}

// ---------------------------------------------------------------------------------------------------------------
// Sleeping and waking.
//
// The protocol is Dekker's: the sleeper stores `sleeping_ = true`, fences, then looks at its queues; a sender
// publishes its message, fences, then looks at `sleeping_`. With both fences seq_cst, at least one of them
// sees the other's write, so a message is never left unseen by a sleeping shard, and a busy shard costs its
// senders one load and no syscall.

void Shard::wake_peer(Shard& peer) noexcept {
  // Kept even under the spin strategy, where nobody sleeps: measured here, dropping it made the cross-core
  // round trip slower (about 720 against 690 ns), since it also drains the store buffer that holds the new
  // message.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (!peer.sleeping_.load(std::memory_order_relaxed)) return;
  if (!peer.sleeping_.exchange(false, std::memory_order_relaxed)) return;  // another sender already woke it
  bump(stats_.wakeups_sent);
  if (ring_ && peer.ring_ && ring_->prep_msg_ring(peer.ring_->fd(), &peer.msg_ring_wake_)) {
    ring_->submit();
    return;
  }
  const std::uint64_t one = 1;
  [[maybe_unused]] ssize_t rc = ::write(peer.eventfd_, &one, sizeof(one));
}

void Shard::wake_from_outside() noexcept {
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (!sleeping_.load(std::memory_order_relaxed)) return;
  if (!sleeping_.exchange(false, std::memory_order_relaxed)) return;
  if (eventfd_ < 0) return;
  const std::uint64_t one = 1;
  [[maybe_unused]] ssize_t rc = ::write(eventfd_, &one, sizeof(one));
}

// ---------------------------------------------------------------------------------------------------------------
// Pollers. The list is walked with the next pointer saved first, since a poller may remove itself when it
// resumes its waiter.

void Shard::add_poller(Poller* p, PollWhen when) noexcept {
  if (p->list_ != nullptr) return;
  Poller*& head = when == PollWhen::every_lap ? pollers_ : idle_pollers_;
  if (&head == &idle_pollers_) ++idle_poller_count_;
  p->list_ = &head;
  p->prev_ = nullptr;
  p->next_ = head;
  if (head != nullptr) head->prev_ = p;
  head = p;
}

void Shard::remove_poller(Poller* p) noexcept {
  if (p->list_ == nullptr) return;
  if (p->list_ == &idle_pollers_) --idle_poller_count_;
  if (idle_cursor_ == p) idle_cursor_ = p->next_;
  if (p->prev_ != nullptr) p->prev_->next_ = p->next_;
  if (p->next_ != nullptr) p->next_->prev_ = p->prev_;
  if (*p->list_ == p) *p->list_ = p->next_;
  p->prev_ = p->next_ = nullptr;
  p->list_ = nullptr;
}

bool Shard::run_pollers(Poller* head) noexcept {
  bool busy = false;
  for (Poller* p = head; p != nullptr;) {
    Poller* next = p->next_;
    busy |= p->poll();
    p = next;
  }
  return busy;
}

// Up to idle_polls_per_lap_ idle pollers, from the one whose turn it is, wrapping round the list; the next
// lap goes on from where this one stopped.
bool Shard::run_idle_pollers() noexcept {
  bool busy = false;
  const unsigned n = std::min(idle_polls_per_lap_, idle_poller_count_);
  Poller* p = idle_cursor_ != nullptr ? idle_cursor_ : idle_pollers_;
  for (unsigned i = 0; i < n && p != nullptr; ++i) {
    Poller* next = p->next_;  // saved first: the poller may remove itself
    busy |= p->poll();
    p = next != nullptr ? next : idle_pollers_;
  }
  idle_cursor_ = p;
  return busy;
}

// One idle lap spent spinning in user space: idle pollers in place of the pause (their syscalls pace the lap
// well enough), or the pause.
void Shard::spin_lap() noexcept {
  if (idle_pollers_ == nullptr) {
    cpu_relax();
    return;
  }
  if (run_idle_pollers()) {
    bump(stats_.idle_poll_hits);
    idle_since_ = 0;
  }
}

// Each poller publishes its own "sleeping" word and looks again after the shard's own `sleeping_` fence, the
// same Dekker protocol: its producer publishes, fences, then reads that word.
bool Shard::prepare_pollers_for_sleep(long long& timeout_ns) noexcept {
  for (Poller* p = pollers_; p != nullptr; p = p->next_) {
    if (p->prepare_sleep(timeout_ns)) return true;
  }
  return false;
}

void Shard::end_pollers_sleep() noexcept {
  for (Poller* p = pollers_; p != nullptr;) {
    Poller* next = p->next_;
    p->end_sleep();
    p = next;
  }
}

bool Shard::has_work_for_sleep_check() const noexcept {
  if (!runq_.empty()) return true;
  for (const auto& ring : incoming_) {
    if (ring->readable()) return true;
  }
  if (external_.load(std::memory_order_relaxed) != nullptr) return true;
  if (rt_.stopping.load(std::memory_order_relaxed) && !stop_seen_) return true;
  // The last shard to quiesce wakes the others after its count; a shard going to sleep must look at the
  // count after raising `sleeping_`, or that wake-up can pass it by and it sleeps forever.
  if (quiesced_ && rt_.quiesced.load(std::memory_order_relaxed) == shard_count_) return true;
  io_uring* r = const_cast<io::Ring&>(*ring_).native();
  return io_uring_cq_ready(r) != 0 || ring_->needs_enter();
}

void Shard::sleep_in_ring(bool busy_poll) {
  sleeping_.store(true, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (has_work_for_sleep_check()) {
    sleeping_.store(false, std::memory_order_relaxed);
    return;
  }
  long long timeout = -1;
  auto cap = [&timeout](long long limit) { timeout = timeout < 0 ? limit : std::min(timeout, limit); };
  const long long early = busy_poll ? kBusyPollTimerMarginNs : 0;
  if (!timers_.empty()) cap(std::max<long long>(0, timers_.next_deadline() - monotonic_ns() - early));
  if (busy_poll) cap(rt_.options.busy_poll_window.count());
  if (!dirty_.empty()) cap(kBackpressureRecheckNs);
  if (stop_seen_ && !quiesced_) cap(kStoppingRecheckNs);
  // Watch a peer inside a run. Its line (which it writes at each resumption) is read only when the cap
  // would shorten the wait, so not by a busy-polling shard whose window is under the budget.
  const long long budget = rt_.options.stall_budget.count();
  if (stall_ticks_ != 0 && (timeout < 0 || timeout > budget) && peer_in_unreported_run()) cap(budget);
  if (pollers_ != nullptr && prepare_pollers_for_sleep(timeout)) {
    end_pollers_sleep();
    sleeping_.store(false, std::memory_order_relaxed);
    return;
  }
  bump(busy_poll ? stats_.busy_polls : stats_.sleeps);
  const unsigned n = ring_->wait(timeout);
  if (n != 0) bump(stats_.completions, n);
  sleeping_.store(false, std::memory_order_relaxed);
  if (pollers_ != nullptr) end_pollers_sleep();
}

// Whether the shard has been idle for spin_ticks_ (spin_before_sleep, or busy_poll_after), counting from its
// first idle lap since it last had work.
bool Shard::spun_long_enough() noexcept {
  const std::uint64_t now = ticks();
  if (idle_since_ == 0) idle_since_ = now;
  return now - idle_since_ >= spin_ticks_;
}

void Shard::idle() {
  if (stall_ticks_ != 0 && shard_count_ > 1) {
    if (rt_.options.idle != IdleStrategy::spin || ++idle_laps_ % kWatchLaps == 0) watch_peers();
  }
  switch (rt_.options.idle) {
    case IdleStrategy::spin:
      // The pause stays: without it the round trip measured slower here, as back-to-back polls of the
      // incoming slot contend with the producer's write of it.
      spin_lap();
      return;
    case IdleStrategy::sleep:
      sleep_in_ring();
      return;
    case IdleStrategy::spin_then_sleep:
      if (spun_long_enough()) {
        sleep_in_ring();
        idle_since_ = 0;
        return;
      }
      spin_lap();
      return;
    case IdleStrategy::busy_poll:
      // Spin in user space first (busy_poll_after), for the last stretch before a timer, and where the kernel
      // cannot busy-poll. A wait that ends with nothing to do leaves `idle_since_` as it is, so the shard
      // goes straight back into the kernel; any work (run_loop) restarts the spin.
      if (kernel_busy_poll_ && spun_long_enough() &&
          (timers_.empty() || timers_.next_deadline() - monotonic_ns() > kBusyPollTimerMarginNs)) {
        sleep_in_ring(true);
      } else {
        spin_lap();
      }
      return;
  }
}

bool Shard::fire_timers() noexcept {
  if (timers_.empty()) return false;
  SharedHistogram* lateness = histograms_ != nullptr
                                  ? &histograms_[static_cast<std::size_t>(ShardHistogram::timer_lateness)]
                                  : nullptr;
  const unsigned n = timers_.fire_expired(monotonic_ns(), lateness);
  if (n == 0) return false;
  bump(stats_.timers_fired, n);
  return true;
}

// ---------------------------------------------------------------------------------------------------------------
// Shutdown: on seeing `stopping`, cancel every live task (each observes it at its next suspension point),
// keep looping (answering requests from peers with `stopped`) until none is left, then wait for every shard
// to reach the same point, so no shard leaves while a peer may still answer one of its requests.

bool Shard::stop_step() {
  if (!stop_seen_) {
    stop_seen_ = true;
    stop_started_ = ticks();
    cancel_all_live();
  }
  if (!quiesced_) {
    if (live_count_ == 0 && dirty_.empty()) {
      quiesce();
    } else if (static_cast<double>(ticks() - stop_started_) / ticks_per_us() * 1000.0 >
               static_cast<double>(rt_.options.shutdown_timeout.count())) {
      for (detail::TaskControl* t = live_head_; t != nullptr; t = t->next) {
        std::fprintf(
            stderr,
            "moirai: shard %u: task '%s' (id %llu) did not finish within the shutdown timeout (%lld ms) "
            "after cancellation; its frame is destroyed\n",
            id_, t->name, static_cast<unsigned long long>(t->id),
            static_cast<long long>(rt_.options.shutdown_timeout.count() / 1'000'000));
      }
      quiesce();  // fini_on_thread destroys what is left, after the ring is closed
    }
  }
  return quiesced_ && rt_.quiesced.load(std::memory_order_acquire) == shard_count_;
}

// This shard has nothing left to run; the last shard to get here wakes the others so they see it too.
void Shard::quiesce() noexcept {
  quiesced_ = true;
  if (rt_.quiesced.fetch_add(1, std::memory_order_acq_rel) + 1 != shard_count_) return;
  for (auto& s : rt_.shards) {
    if (s.get() != this) s->wake_from_outside();
  }
}

void Shard::run_loop() {
  for (;;) {
    // Messages first, then the tasks they woke, in the same lap: a reply resumes its awaiter without waiting
    // for an io poll and a timer check in between. Replies made while draining go out before the tasks run.
    bool busy = drain_incoming();
    busy |= drain_external();
    // Before the tasks, so that a waiter a poller resumes runs in this lap. One branch when none is there.
    if (pollers_ != nullptr) busy |= run_pollers(pollers_);
    flush_outgoing();
    busy |= run_tasks();
    busy |= flush_outgoing();
    if (const unsigned c = ring_->poll(); c != 0) {
      bump(stats_.completions, c);
      busy = true;
      if (ring_->take_msg_ring_failures() != 0) [[unlikely]] {
        // A MSG_RING wake-up was lost (the kernel refused it): wake every peer the slow, sure way.
        for (auto& peer : rt_.shards) {
          if (peer.get() != this) {
            const std::uint64_t one = 1;
            [[maybe_unused]] ssize_t rc = ::write(peer->eventfd_, &one, sizeof(one));
          }
        }
      }
    }
    busy |= fire_timers();
    allocator_->drain_remote();
    if (rt_.stopping.load(std::memory_order_relaxed)) [[unlikely]] {
      if (stop_step()) break;
    }
    if (busy) {
      idle_since_ = 0;
      continue;
    }
    idle();
  }
  // Every shard is quiet. Deliver what is still in flight (one-way messages) before leaving.
  drain_incoming();
  drain_external();
  run_tasks();
}

}  // namespace moirai
