// The shard's implementation behind its public face (moirai/core/shard.hpp): the loop, the run queue, the
// timers, the cross-core rings, the frame allocator, the pollers, the idle and wake-up state, the real-time
// accounting and the stall watch. Everything here is touched by the shard's own thread only, except
// `sleeping_`, the incoming rings' published indices, the external inbox and the stall-watch line, which are
// the cross-thread doors and say so.
//
// The loop (run_loop, shard_loop.cpp): drain incoming messages and external work; call the pollers; run
// ready tasks up to a quota; publish outgoing messages (waking a peer only if it said it sleeps); reap
// completions; fire expired timers; then, if nothing happened, follow the idle strategy (shard_idle.cpp).
//
// Headers that define awaitables include this one; applications do not need to.
#pragma once

#include <atomic>
#include <coroutine>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "moirai/base/cache_line.hpp"
#include "moirai/core/clock.hpp"
#include "moirai/core/detail/external_work.hpp"
#include "moirai/core/detail/frame_allocator.hpp"
#include "moirai/core/detail/run_queue.hpp"
#include "moirai/core/detail/spsc_ring.hpp"
#include "moirai/core/detail/task_control.hpp"
#include "moirai/core/detail/timer_queue.hpp"
#include "moirai/core/error.hpp"
#include "moirai/core/metrics.hpp"
#include "moirai/core/runtime_options.hpp"
#include "moirai/core/shard.hpp"
#include "moirai/core/shard_memory.hpp"
#include "moirai/io/ring.hpp"
#include "moirai/numa/node_pool.hpp"

namespace moirai::detail {

struct RuntimeState;
std::coroutine_handle<> on_root_complete(TaskControl* control) noexcept;

// A message waiting for room in a full cross-core ring. It lives in the sender's frame (an awaiter) or in the
// message it answers, so queueing it allocates nothing. `fill` writes the message into the slot once there is
// room.
struct Outbound {
  Outbound* next = nullptr;
  void (*fill)(Outbound* self, Message& slot) noexcept = nullptr;
};

class ShardCore final : public Shard {
 public:
  ShardCore(RuntimeState& rt, unsigned id, int cpu);
  ~ShardCore();

  // ---- Tasks (shard_tasks.cpp) ----

  // A task record for `frame`, linked into the live list, owned by `refs` references.
  TaskControl* new_task(std::coroutine_handle<> frame, PromiseBase* promise, const TaskContext& ctx,
                        std::uint32_t refs);
  static void release_task(TaskControl* t) noexcept;
  void schedule(std::coroutine_handle<> h, TaskControl* t) {
    if (t != nullptr && histograms_ != nullptr) t->ready_ticks = ticks();  // for the scheduling delay
    // A round-robin task that suspends and is at once ready again (a yield) keeps its turn while its slice
    // lasts.
    if (t != nullptr && t->sched.round_robin && t == current_task_) [[unlikely]] {
      schedule_round_robin(h, t);
      return;
    }
    runq_.push({h, t});
  }

  // ---- Real time (shard_realtime.cpp) ----

  // Throws Error(admission_refused), with the analysis as the reason, when a task spawned with `ctx` would
  // make this shard's task set unschedulable (see TaskContext::admission_control).
  void check_admission(const TaskContext& ctx);
  // Execution time of `t` so far in ticks(), the resumption running now included.
  std::uint64_t exec_ticks(const TaskControl* t) const noexcept {
    return t == current_task_ ? t->exec_ticks + (ticks() - resume_start_) : t->exec_ticks;
  }
  struct JobVerdict {
    bool missed = false;
    bool overran = false;
  };
  // The end of one job of `t`: counts a deadline miss (ended after `deadline_ns`) or a WCET overrun (ran more
  // than its WCET, `exec` ticks given) on the task and the shard, and calls RuntimeOptions::on_deadline_miss.
  JobVerdict end_job(TaskControl* t, std::int64_t release_ns, std::int64_t deadline_ns, std::int64_t end_ns,
                     std::uint64_t exec) noexcept;

  // ---- Cross-core messages (shard_messages.cpp) ----

  // Sends to shard `dest`: into its ring if there is room and nothing queued before it, else queued in order.
  void send(unsigned dest, Outbound* msg) noexcept;
  // Claims a slot to `dest` directly (nullptr when full or when earlier messages still wait).
  Message* try_claim(unsigned dest) noexcept;
  void commit(unsigned dest) noexcept;
  // From any thread: hands work to this shard and wakes it if it sleeps.
  void push_external(ExternalWork* w) noexcept;
  // After the shard's thread has ended, from any thread: fails external work that arrived too late to run.
  void refuse_external() noexcept { drain_external(/*refuse=*/true); }

  // ---- Life cycle (shard_setup.cpp, shard_loop.cpp) ----

  // On the shard's own thread: map memory, create the ring, arm wake-ups. Throws on failure.
  void init_on_thread();
  // Runs the loop until the runtime stops (or, for run(), until its main task ends and shutdown completes).
  void run_loop();
  // On the shard's own thread, after the loop: release what init_on_thread made.
  void fini_on_thread() noexcept;
  // Called from any thread to make this shard look at its state (stop, external work).
  void wake_from_outside() noexcept;

 private:
  friend class moirai::Shard;
  friend struct RuntimeState;
  friend std::coroutine_handle<> on_root_complete(TaskControl*) noexcept;
  struct WakeCompletion : io::Completion {
    ShardCore* shard;
  };

  // shard_setup.cpp
  void map_frame_memory();
  void map_io_buffers();
  void settle_memory_report();
  void open_ring();
  void apply_thread_policy();
  void arm_eventfd_read() noexcept;
  // shard_tasks.cpp
  bool run_tasks();
  void finish_unstarted_cancelled(TaskControl* t) noexcept;
  void cancel_all_live() noexcept;
  // shard_realtime.cpp
  void schedule_round_robin(std::coroutine_handle<> h, TaskControl* t);
  void classify(TaskControl* t, const TaskContext& ctx) noexcept;
  void admit(TaskControl* t, const TaskContext& ctx);
  void remove_admitted(TaskControl* t) noexcept;
  // shard_stall_watch.cpp
  void report_stall(TaskControl* t, std::uint64_t ran_ticks);
  void watch_peers() noexcept;
  bool peer_in_unreported_run() const noexcept;
  void report_ongoing_stall(const ShardCore& peer, std::uint64_t task_id, std::uint64_t ran_ticks) noexcept;
  // shard_messages.cpp
  bool flush_outgoing() noexcept;
  bool drain_incoming() noexcept;
  bool drain_external(bool refuse = false) noexcept;
  // shard_idle.cpp
  bool run_pollers(Poller* head) noexcept;
  bool run_idle_pollers() noexcept;
  void spin_lap() noexcept;
  bool prepare_pollers_for_sleep(long long& timeout_ns) noexcept;
  void end_pollers_sleep() noexcept;
  void add_poller(Poller* p, PollWhen when) noexcept;
  void remove_poller(Poller* p) noexcept;
  void idle();
  // Waits in the ring until work comes: sleeping, or (busy_poll) spinning in the kernel for at most the
  // busy-poll window and returning before the next timer is due.
  void sleep_in_ring(bool busy_poll = false);
  bool spun_long_enough() noexcept;
  bool has_work_for_sleep_check() const noexcept;
  void wake_peer(ShardCore& peer) noexcept;
  void wake_all_peers_by_eventfd() noexcept;
  // shard_loop.cpp
  bool reap_completions() noexcept;
  bool fire_timers() noexcept;
  bool stop_step();
  void quiesce() noexcept;

  bool others_waiting(std::int64_t now_ns) const noexcept {
    return has_work_for_sleep_check() || !dirty_.empty() || ring_->has_unsubmitted() ||
           (!timers_.empty() && timers_.next_deadline() <= now_ns);
  }

  RuntimeState& rt_;
  numa::AllocationOptions memory_options_;  // the lock is dropped here once the kernel refuses it
  ShardMemory memory_;

  std::optional<io::Ring> ring_;
  std::unique_ptr<FrameAllocator> allocator_;
  std::optional<numa::NodePool> io_buffers_;
  RunQueue runq_;
  TimerQueue timers_;
  TaskControl* resumed_task_ = nullptr;  // the task run_tasks resumed; released by it, not by completion
  bool resumed_task_done_ = false;
  std::uint64_t resume_start_ = 0;  // ticks() when the running resumption of a real-time task began
  TaskControl* live_head_ = nullptr;
  TaskControl* doomed_ = nullptr;  // released tasks waiting to be destroyed (see release_task)
  bool destroying_ = false;
  std::size_t live_count_ = 0;
  std::uint64_t next_task_id_ = 1;

  // Incoming rings, indexed by sending shard; this shard is their consumer.
  std::vector<std::unique_ptr<SpscRing>> incoming_;
  // Outgoing rings (peers' incoming_[id_]) and messages waiting for room in them, by destination.
  std::vector<SpscRing*> outgoing_;
  struct PendingList {
    Outbound* head = nullptr;
    Outbound* tail = nullptr;
  };
  std::vector<PendingList> pending_;
  std::vector<unsigned> dirty_;  // destinations with unpublished or pending messages
  std::vector<std::uint8_t> is_dirty_;
  Poller* pollers_ = nullptr;       // registered pollers, an intrusive list (see Poller)
  Poller* idle_pollers_ = nullptr;  // PollWhen::idle_spin pollers
  Poller* idle_cursor_ = nullptr;   // the idle poller whose turn is next (null: the list's head)
  unsigned idle_poller_count_ = 0;
  unsigned idle_polls_per_lap_ = 0;  // RuntimeOptions::idle_polls_per_lap

  // The real-time tasks admitted on this shard (with a WCET, under rate-monotonic or deadline-driven
  // constraints): what admission control tests a new one against. `admitted_` and `admitted_tasks_` are
  // parallel; reserved at start so that admitting allocates nothing in practice.
  std::vector<rt::RtConstraints> admitted_;
  std::vector<TaskControl*> admitted_tasks_;
  rt::ApplyResult thread_policy_;

  // Idle and wake-up state.
  std::uint64_t idle_since_ = 0;   // ticks() at the first idle lap since the last work; 0: not idle
  std::uint64_t spin_ticks_ = 0;   // spin_before_sleep, or busy_poll_after, in ticks
  bool kernel_busy_poll_ = false;  // idle busy_poll, and the ring took it (otherwise the shard spins)
  std::uint64_t stall_ticks_ = 0;
  std::uint64_t last_watch_ = 0;  // ticks() when this shard last looked at its peers for ongoing stalls
  unsigned idle_laps_ = 0;  // under the spin strategy, the clock is read once every kWatchLaps idle laps
  // Latency histograms (RuntimeOptions::metrics; null when off), indexed by ShardHistogram, in memory mapped
  // on the shard's node; and the ticks() -> ns factor, in 32.32 fixed point.
  numa::NodeMemory histogram_memory_;
  SharedHistogram* histograms_ = nullptr;
  std::uint64_t ns_per_tick_q32_ = 0;
  void record(ShardHistogram h, std::uint64_t ticks_elapsed) noexcept {
    __extension__ using U128 = unsigned __int128;
    histograms_[static_cast<std::size_t>(h)].record(
        static_cast<std::uint64_t>((static_cast<U128>(ticks_elapsed) * ns_per_tick_q32_) >> 32));
  }
  int eventfd_ = -1;
  std::uint64_t eventfd_value_ = 0;
  WakeCompletion msg_ring_wake_{};  // target of peers' MSG_RING
  WakeCompletion eventfd_wake_{};   // completion of the armed eventfd read
  bool eventfd_armed_ = false;

  // Shutdown state.
  bool quiesced_ = false;
  unsigned inline_io_left_ = 0;        // take_inline_io(); refilled at each resumption
  unsigned inline_io_per_resume_ = 0;  // RuntimeOptions::inline_io_per_resumption
  std::uint64_t stop_started_ = 0;

  // Counters, readable from other threads.
  struct AtomicStats {
    std::atomic<std::uint64_t> tasks_spawned{0}, tasks_run{0}, tasks_completed{0}, tasks_failed{0},
        tasks_cancelled{0}, messages_in{0}, messages_out{0}, completions{0}, timers_fired{0}, wakeups_sent{0},
        sleeps{0}, busy_polls{0}, inline_io{0}, idle_poll_hits{0}, stalls{0}, deadline_misses{0},
        wcet_overruns{0};
  };
  static void bump(std::atomic<std::uint64_t>& c, std::uint64_t n = 1) noexcept {
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  AtomicStats stats_;

  // What a peer's watch reads (only while the stall check is on): ticks() when the running resumption
  // began, 0 between batches of resumptions, and that task's id. Stored relaxed by this shard at each
  // resumption and read relaxed by peers once per stall budget at most, so the line seldom moves; a stale
  // read only delays a report or makes a peer see a task that has just ended (it then checks the id).
  // `ongoing_reported_` is the start of the last run a peer reported, so that one report is made per stall
  // however many peers look (compare-exchange).
  alignas(kCacheLine) std::atomic<std::uint64_t> running_since_{0};
  std::atomic<std::uint64_t> running_task_id_{0};
  std::atomic<std::uint64_t> ongoing_reported_{0};

  // The cross-thread doors, each on its own cache line.
  alignas(kCacheLine) std::atomic<bool> sleeping_{false};
  alignas(kCacheLine) std::atomic<ExternalWork*> external_{nullptr};
};

// The implementation behind a public Shard (every Shard is one).
inline ShardCore& core(Shard& s) noexcept {
  return static_cast<ShardCore&>(s);
}
inline const ShardCore& core(const Shard& s) noexcept {
  return static_cast<const ShardCore&>(s);
}
// The calling thread's shard; throws Error(Errc::not_on_shard) on any other thread.
inline ShardCore& this_core() {
  return core(this_shard());
}

}  // namespace moirai::detail

namespace moirai {

inline io::Ring& Shard::ring() noexcept {
  return *detail::core(*this).ring_;
}
inline void Shard::schedule(std::coroutine_handle<> h, detail::TaskControl* t) {
  detail::core(*this).schedule(h, t);
}
inline detail::TimerQueue& Shard::timers() noexcept {
  return detail::core(*this).timers_;
}
inline bool Shard::take_inline_io() noexcept {
  unsigned& left = detail::core(*this).inline_io_left_;
  if (left == 0) return false;
  --left;
  return true;
}
inline void Shard::count_inline_io() noexcept {
  detail::ShardCore::bump(detail::core(*this).stats_.inline_io);
}
inline bool Shard::others_waiting(std::int64_t now_ns) const noexcept {
  return detail::core(*this).others_waiting(now_ns);
}

}  // namespace moirai
