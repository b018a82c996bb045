// A shard: one thread pinned to one CPU, owning its io_uring ring, its frame memory, its run queue, its
// timers and the consuming side of one cross-core ring per peer. Everything here is touched by its own thread
// only, except `sleeping_`, the incoming rings' published indices and the external inbox, which are the
// cross-thread doors and say so.
//
// The loop (run_loop): run ready tasks up to a quota; publish outgoing messages (waking a peer only if it
// said it sleeps); consume incoming messages in batches; submit and reap io; fire expired timers; then, if
// nothing happened, follow the idle strategy.
//
// Pollers: a transport whose peer cannot post a completion into the ring (a shared-memory ring written by
// another process) registers a Poller while a task waits on it. Each lap calls every registered poller once,
// before the tasks run, so a message found resumes its task in the same lap; with none registered the lap
// costs one predictable branch. Before the shard sleeps, each poller is asked to arm its wake-up and look
// again (the same Dekker protocol the shard follows with `sleeping_`, see shard.cpp), and after the sleep it
// is told the sleep ended.
//
// Idle pollers (PollWhen::idle_spin) are called only in the laps a shard spends spinning in user space with
// nothing else to do (IdleStrategy::spin, and the spinning part of spin_then_sleep and busy_poll), in place
// of the pause, at most RuntimeOptions::idle_polls_per_lap of them per lap, in turn: a socket whose receive
// is armed in the ring anyway may then read itself with a non-blocking syscall, as a hand-rolled spin loop
// would, and skip the completion's round through the kernel's deferred work. They are never asked before a
// sleep: what they poll must wake the ring by itself.
#pragma once

#include <atomic>
#include <coroutine>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "moirai/core/clock.hpp"
#include "moirai/core/error.hpp"
#include "moirai/core/frame_allocator.hpp"
#include "moirai/core/metrics.hpp"
#include "moirai/core/run_queue.hpp"
#include "moirai/core/runtime_options.hpp"
#include "moirai/core/shard_memory.hpp"
#include "moirai/core/spsc_ring.hpp"
#include "moirai/core/task_control.hpp"
#include "moirai/core/timer_queue.hpp"
#include "moirai/io/ring.hpp"
#include "moirai/numa/node_pool.hpp"

namespace moirai {

namespace detail {
struct RuntimeState;
std::coroutine_handle<> on_root_complete(TaskControl* control) noexcept;

// A message waiting for room in a full cross-core ring. It lives in the sender's frame (an awaiter) or in the
// message it answers, so queueing it allocates nothing. `fill` writes the message into the slot once there is
// room.
struct Outbound {
  Outbound* next = nullptr;
  void (*fill)(Outbound* self, Message& slot) noexcept = nullptr;
};

// Work handed in by a thread that is not a shard (Runtime::submit from a service's main thread).
struct ExternalWork {
  ExternalWork* next = nullptr;
  // Runs on `here`; with `refuse`, or when `here` is stopping, fails the work with Errc::stopped instead.
  virtual void run(Shard& here, bool refuse) noexcept = 0;
  virtual ~ExternalWork() = default;
};
}  // namespace detail

// Something the shard looks at once per loop lap, registered with Shard::add_poller while it has a waiter.
// Every call comes on the shard's own thread. A poller must stay registered no longer than it lives.
class Poller {
 public:
  // One lap: look for work and act on it (resume a waiting task with Shard::schedule). Returns true when it
  // did something, which keeps the shard from idling in this lap. May remove this poller, and only this one.
  virtual bool poll() noexcept = 0;
  // The shard is about to sleep in its ring for at most `timeout_ns` (negative: no limit). Arm whatever will
  // wake the ring when work comes (an io_uring request), then look again: return true when work is already
  // there, and the shard does not sleep. A poller that cannot arm a wake-up lowers `timeout_ns` instead, so
  // the sleep is bounded by how often it must look.
  virtual bool prepare_sleep(long long& timeout_ns) noexcept = 0;
  // The sleep ended (or was abandoned): undo what prepare_sleep published, so a producer stops waking us.
  // Called on every registered poller, prepared or not.
  virtual void end_sleep() noexcept {}

 protected:
  virtual ~Poller() = default;

 private:
  friend class Shard;
  Poller* prev_ = nullptr;
  Poller* next_ = nullptr;
  Poller** list_ = nullptr;  // the shard's list it is on; null: not registered
};

enum class PollWhen : std::uint8_t {
  every_lap,  // each lap, and asked before each sleep
  idle_spin,  // only in laps the shard spins idle in user space (see above)
};

class Shard {
 public:
  Shard(detail::RuntimeState& rt, unsigned id, int cpu);
  ~Shard();
  Shard(const Shard&) = delete;
  Shard& operator=(const Shard&) = delete;

  unsigned id() const noexcept { return id_; }
  int cpu() const noexcept { return cpu_; }
  // The NUMA node of the shard's CPU, where all of its memory is mapped.
  int node() const noexcept { return node_; }
  // What the shard's memory obtained (complete once the shard has started).
  const ShardMemory& memory() const noexcept { return memory_; }
  // Fixed-size io buffers on the shard's node (RuntimeOptions::io_buffer_size and io_buffer_count); null when
  // the count is 0. Allocate on this shard; free from anywhere.
  numa::NodePool* io_buffers() noexcept { return io_buffers_ ? &*io_buffers_ : nullptr; }
  unsigned shard_count() const noexcept { return shard_count_; }
  ShardStats stats() const noexcept;
  // A snapshot of this shard's counters and histograms, from any thread (metrics.hpp).
  void metrics_into(ShardMetrics& out) const noexcept;
  io::Ring& ring() noexcept { return *ring_; }
  // Whether this shard's idle waits busy-poll in the kernel (IdleStrategy::busy_poll, and the kernel took
  // it).
  bool kernel_busy_poll() const noexcept { return kernel_busy_poll_; }
  // The task whose code is running now (null inside a plain message handler).
  detail::TaskControl* current_task() const noexcept { return current_task_; }
  // True once this shard has begun shutting down: new spawns and incoming requests are refused.
  bool stopping() const noexcept { return stop_seen_; }

  // ---- internal: used by Moirai's awaitables; stable for them, not meant for applications ----

  // Inline io: an operation that a non-blocking syscall can finish at once (a send with room in the socket's
  // buffer) may make that syscall in place of a ring request: the same one kernel entry, but no CQE to reap
  // and no suspension. Each resumption of a task has RuntimeOptions::inline_io_per_resumption of them; past
  // that the operation goes through the ring and the task suspends, so a task that only sends still lets
  // the others run.
  bool take_inline_io() noexcept {
    if (inline_io_left_ == 0) return false;
    --inline_io_left_;
    return true;
  }
  void count_inline_io() noexcept { bump(stats_.inline_io); }

  void schedule(std::coroutine_handle<> h, detail::TaskControl* t) {
    if (t != nullptr && histograms_ != nullptr) t->ready_ticks = ticks();  // for the scheduling delay
    // A round-robin task that suspends and is at once ready again (a yield) keeps its turn while its slice
    // lasts.
    if (t != nullptr && t->sched.round_robin && t == current_task_) [[unlikely]] {
      schedule_round_robin(h, t);
      return;
    }
    runq_.push({h, t});
  }
  detail::TimerQueue& timers() noexcept { return timers_; }

  // A task record for `frame`, linked into the live list, owned by `refs` references.
  detail::TaskControl* new_task(std::coroutine_handle<> frame, detail::PromiseBase* promise,
                                const TaskContext& ctx, std::uint32_t refs);
  static void release_task(detail::TaskControl* t) noexcept;

  // ---- real time ----

  // Throws Error(admission_refused), with the analysis as the reason, when a task spawned with `ctx` would
  // make this shard's task set unschedulable (see TaskContext::admission_control).
  void check_admission(const TaskContext& ctx);
  // Execution time of `t` so far in ticks(), the resumption running now included.
  std::uint64_t exec_ticks(const detail::TaskControl* t) const noexcept {
    return t == current_task_ ? t->exec_ticks + (ticks() - resume_start_) : t->exec_ticks;
  }
  struct JobVerdict {
    bool missed = false;
    bool overran = false;
  };
  // The end of one job of `t`: counts a deadline miss (ended after `deadline_ns`) or a WCET overrun (ran more
  // than its WCET, `exec` ticks given) on the task and the shard, and calls RuntimeOptions::on_deadline_miss.
  JobVerdict end_job(detail::TaskControl* t, std::int64_t release_ns, std::int64_t deadline_ns,
                     std::int64_t end_ns, std::uint64_t exec) noexcept;
  // What applying RuntimeOptions::thread_policy to this shard's thread gave (complete once it has started).
  const rt::ApplyResult& thread_policy() const noexcept { return thread_policy_; }

  // Sends to shard `dest`: into its ring if there is room and nothing queued before it, else queued in order.
  void send(unsigned dest, detail::Outbound* msg) noexcept;
  // Claims a slot to `dest` directly (nullptr when full or when earlier messages still wait).
  detail::Message* try_claim(unsigned dest) noexcept;
  void commit(unsigned dest) noexcept;

  // True when anything besides the running task wants this shard: a ready task, a message from another
  // shard, external work, a completion or deferred io, SQEs or messages not yet handed over, a stop, or a
  // timer due at `now_ns`. A waiter that spins briefly before it suspends (IpcOptions::busy_poll) stops as
  // soon as this turns true. On this shard's thread.
  bool others_waiting(std::int64_t now_ns) const noexcept {
    return has_work_for_sleep_check() || !dirty_.empty() || ring_->has_unsubmitted() ||
           (!timers_.empty() && timers_.next_deadline() <= now_ns);
  }

  // Registers `p` to be polled once per lap (and asked before each sleep), or only in idle spinning laps,
  // until remove_poller. O(1), no allocation; registering twice, or removing one not registered, does
  // nothing. On this shard's thread.
  void add_poller(Poller* p, PollWhen when = PollWhen::every_lap) noexcept;
  void remove_poller(Poller* p) noexcept;

  // From any thread: hands work to this shard and wakes it if it sleeps.
  void push_external(detail::ExternalWork* w) noexcept;

  // Runs the loop until the runtime stops (or, for run(), until its main task ends and shutdown completes).
  void run_loop();
  // On the shard's own thread: map memory, create the ring, arm wake-ups. Throws on failure.
  void init_on_thread();
  // On the shard's own thread, after the loop: release what init_on_thread made.
  void fini_on_thread() noexcept;
  // Called from any thread to make this shard look at its state (stop, external work).
  void wake_from_outside() noexcept;
  // After the shard's thread has ended, from any thread: fails external work that arrived too late to run.
  void refuse_external() noexcept { drain_external(/*refuse=*/true); }

 private:
  friend std::coroutine_handle<> detail::on_root_complete(detail::TaskControl*) noexcept;
  struct WakeCompletion : io::Completion {
    Shard* shard;
  };

  bool run_tasks();
  bool flush_outgoing() noexcept;
  bool drain_incoming() noexcept;
  bool drain_external(bool refuse = false) noexcept;
  bool fire_timers() noexcept;
  bool run_pollers(Poller* head) noexcept;
  bool run_idle_pollers() noexcept;
  void spin_lap() noexcept;
  bool prepare_pollers_for_sleep(long long& timeout_ns) noexcept;
  void end_pollers_sleep() noexcept;
  void idle();
  // Waits in the ring until work comes: sleeping, or (busy_poll) spinning in the kernel for at most the
  // busy-poll window and returning before the next timer is due.
  void sleep_in_ring(bool busy_poll = false);
  bool spun_long_enough() noexcept;
  bool has_work_for_sleep_check() const noexcept;
  void wake_peer(Shard& peer) noexcept;
  bool stop_step();
  void quiesce() noexcept;
  void cancel_all_live() noexcept;
  void report_stall(detail::TaskControl* t, std::uint64_t ran_ticks);
  void watch_peers() noexcept;
  bool peer_in_unreported_run() const noexcept;
  void report_ongoing_stall(const Shard& peer, std::uint64_t task_id, std::uint64_t ran_ticks) noexcept;
  void finish_unstarted_cancelled(detail::TaskControl* t) noexcept;
  void arm_eventfd_read() noexcept;
  void force_teardown() noexcept;
  void schedule_round_robin(std::coroutine_handle<> h, detail::TaskControl* t);
  void classify(detail::TaskControl* t, const TaskContext& ctx) noexcept;
  void admit(detail::TaskControl* t, const TaskContext& ctx);
  void remove_admitted(detail::TaskControl* t) noexcept;
  void apply_thread_policy();

  detail::RuntimeState& rt_;
  const unsigned id_;
  const int cpu_;
  const unsigned shard_count_;  // read on every cross-core send to check the destination
  const int node_;
  numa::AllocationOptions memory_options_;  // the lock is dropped here once the kernel refuses it
  ShardMemory memory_;

  std::optional<io::Ring> ring_;
  std::unique_ptr<detail::FrameAllocator> allocator_;
  std::optional<numa::NodePool> io_buffers_;
  detail::RunQueue runq_;
  detail::TimerQueue timers_;
  detail::TaskControl* current_task_ = nullptr;
  detail::TaskControl* resumed_task_ =
      nullptr;  // the task run_tasks resumed; released by it, not by completion
  bool resumed_task_done_ = false;
  std::uint64_t resume_start_ = 0;  // ticks() when the running resumption of a real-time task began
  detail::TaskControl* live_head_ = nullptr;
  detail::TaskControl* doomed_ = nullptr;  // released tasks waiting to be destroyed (see release_task)
  bool destroying_ = false;
  std::size_t live_count_ = 0;
  std::uint64_t next_task_id_ = 1;

  // Incoming rings, indexed by sending shard; this shard is their consumer.
  std::vector<std::unique_ptr<detail::SpscRing>> incoming_;
  // Outgoing rings (peers' incoming_[id_]) and messages waiting for room in them, by destination.
  std::vector<detail::SpscRing*> outgoing_;
  struct PendingList {
    detail::Outbound* head = nullptr;
    detail::Outbound* tail = nullptr;
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
  std::vector<detail::TaskControl*> admitted_tasks_;
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
  bool stop_seen_ = false;
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
  alignas(kCacheLine) std::atomic<detail::ExternalWork*> external_{nullptr};

  friend struct detail::RuntimeState;
};

namespace detail {
inline thread_local Shard* t_shard = nullptr;
}

// The shard the calling thread runs; throws Error(Errc::not_on_shard) on any other thread.
Shard& this_shard();
inline Shard* this_shard_or_null() noexcept {
  return detail::t_shard;
}
inline unsigned this_shard_id() {
  return this_shard().id();
}
inline unsigned shard_count() {
  return this_shard().shard_count();
}

}  // namespace moirai
