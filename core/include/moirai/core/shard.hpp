// A shard: one thread pinned to one CPU, with its own io_uring ring, its own node-local memory, its own run
// queue and timers. A task reaches the shard it runs on through this_shard().
//
// This is the shard's public face: what it is (id, CPU, node), what it has measured (stats, metrics, what its
// memory and thread policy obtained), and what an awaitable needs from it (the ring, the running task, making
// a task ready again, timers, pollers). The loop, the run queue, the cross-core rings and the allocator live
// in detail::ShardCore (moirai/core/detail/shard_core.hpp), which the headers that define awaitables include.
#pragma once

#include <coroutine>
#include <cstdint>

namespace moirai {

namespace io {
class Ring;
}
namespace numa {
class NodePool;
}
namespace rt {
struct ApplyResult;
}
namespace detail {
struct TaskControl;
class TimerQueue;
class ShardCore;
}  // namespace detail

struct ShardStats;
struct ShardMetrics;
struct ShardMemory;

// Something the shard looks at once per loop lap, registered with Shard::add_poller while it has a waiter.
// Every call comes on the shard's own thread. A poller must stay registered no longer than it lives.
//
// Idle pollers (PollWhen::idle_spin) are called only in the laps a shard spends spinning in user space with
// nothing else to do (IdleStrategy::spin, and the spinning part of spin_then_sleep and busy_poll), in place
// of the pause, at most RuntimeOptions::idle_polls_per_lap of them per lap, in turn. They are never asked
// before a sleep: what they poll must wake the ring by itself.
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
  friend class detail::ShardCore;
  Poller* prev_ = nullptr;
  Poller* next_ = nullptr;
  Poller** list_ = nullptr;  // the shard's list it is on; null: not registered
};

enum class PollWhen : std::uint8_t {
  every_lap,  // each lap, and asked before each sleep
  idle_spin,  // only in laps the shard spins idle in user space (see Poller)
};

class Shard {
 public:
  Shard(const Shard&) = delete;
  Shard& operator=(const Shard&) = delete;

  unsigned id() const noexcept { return id_; }
  int cpu() const noexcept { return cpu_; }
  // The NUMA node of the shard's CPU, where all of its memory is mapped.
  int node() const noexcept { return node_; }
  unsigned shard_count() const noexcept { return shard_count_; }
  // True once this shard has begun shutting down: new spawns and incoming requests are refused.
  bool stopping() const noexcept { return stop_seen_; }

  // What the shard's memory obtained (complete once the shard has started).
  const ShardMemory& memory() const noexcept;
  // Fixed-size io buffers on the shard's node (RuntimeOptions::io_buffer_size and io_buffer_count); null when
  // the count is 0. Allocate on this shard; free from anywhere.
  numa::NodePool* io_buffers() noexcept;
  ShardStats stats() const noexcept;
  // A snapshot of this shard's counters and histograms, from any thread (metrics.hpp).
  void metrics_into(ShardMetrics& out) const noexcept;
  // What applying RuntimeOptions::thread_policy to this shard's thread gave (complete once it has started).
  const rt::ApplyResult& thread_policy() const noexcept;
  // Whether this shard's idle waits busy-poll in the kernel (IdleStrategy::busy_poll, and the kernel took
  // it).
  bool kernel_busy_poll() const noexcept;

  // ---- For awaitables: what Moirai's io and transport (and an application's own awaitables) use. On the
  // shard's own thread. Defined inline in moirai/core/detail/shard_core.hpp, which such headers include.

  io::Ring& ring() noexcept;
  // The task whose code is running now (null inside a plain message handler).
  detail::TaskControl* current_task() const noexcept { return current_task_; }
  // Makes the coroutine `h` of task `t` ready: it runs in the shard's next run of tasks, in policy order.
  void schedule(std::coroutine_handle<> h, detail::TaskControl* t);
  detail::TimerQueue& timers() noexcept;
  // Inline io: an operation that a non-blocking syscall can finish at once (a send with room in the socket's
  // buffer) may make that syscall in place of a ring request: the same one kernel entry, but no CQE to reap
  // and no suspension. Each resumption of a task has RuntimeOptions::inline_io_per_resumption of them; past
  // that the operation goes through the ring and the task suspends, so a task that only sends still lets the
  // others run.
  bool take_inline_io() noexcept;
  void count_inline_io() noexcept;
  // True when anything besides the running task wants this shard: a ready task, a message from another
  // shard, external work, a completion or deferred io, SQEs or messages not yet handed over, a stop, or a
  // timer due at `now_ns`. A waiter that spins briefly before it suspends stops as soon as this turns true.
  bool others_waiting(std::int64_t now_ns) const noexcept;
  // Registers `p` to be polled once per lap (and asked before each sleep), or only in idle spinning laps,
  // until remove_poller. O(1), no allocation; registering twice, or removing one not registered, does
  // nothing.
  void add_poller(Poller* p, PollWhen when = PollWhen::every_lap) noexcept;
  void remove_poller(Poller* p) noexcept;

 protected:
  // Only detail::ShardCore, the implementation, is ever made.
  Shard(unsigned id, int cpu, int node, unsigned shard_count) noexcept
      : id_(id), cpu_(cpu), shard_count_(shard_count), node_(node) {}
  ~Shard() = default;

  const unsigned id_;
  const int cpu_;
  const unsigned shard_count_;  // read on every cross-core send to check the destination
  const int node_;
  detail::TaskControl* current_task_ = nullptr;
  bool stop_seen_ = false;
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
