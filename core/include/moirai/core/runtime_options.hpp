// How a Runtime is set up: which CPUs, how idle shards wait, and the sizes of what each shard maps at start.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "moirai/io/setup_mode.hpp"
#include "moirai/rt/thread_policy.hpp"

namespace moirai {

enum class IdleStrategy : std::uint8_t {
  spin,             // never sleep: lowest latency, one busy CPU per shard
  spin_then_sleep,  // spin for `spin_before_sleep`, then sleep in the ring until work or a timer
  sleep,            // sleep as soon as there is nothing to do
  // Never sleep, but spin inside the kernel: an idle shard waits in its ring while io_uring busy-polls
  // (io::Ring::enable_busy_poll), so a socket's completion is run and returned by the entry already made,
  // where a user-space spinner must see it flagged and enter the kernel again (unless it reads the socket
  // itself, RecvOptions::poll_when_idle, which is lower still). It first spins in user space for
  // `busy_poll_after`, and comes back to user space at least every `busy_poll_window`, and before its next
  // timer is due. While it waits in the kernel, peers and IPC writers wake it as they wake a sleeping shard,
  // which costs them a system call: a cross-core message that comes then is slower than to a `spin` shard.
  // Where the kernel cannot busy-poll (before Linux 6.13, or without CONFIG_NET_RX_BUSY_POLL) the shard spins
  // in user space, as `spin`, and says so once on stderr.
  busy_poll,
};

const char* to_string(IdleStrategy s) noexcept;
// Parses "spin", "sleep", "spin-then-sleep" or "busy-poll"; throws moirai::Error(Errc::invalid_argument)
// naming the choices.
IdleStrategy parse_idle_strategy(const std::string& text);

// A task that ran past RuntimeOptions::stall_budget without suspending. Reported by its own shard when it
// finally suspends (`ongoing` false: `ran_for` is the whole run, `task_name` is set), and, while it still
// runs, by a peer shard that notices it when idle (`ongoing` true, `seen_by` that peer: `ran_for` so far;
// the name is not read across threads, so it is empty). A stall is reported at most once each way.
struct StallReport {
  unsigned shard = 0;
  std::uint64_t task_id = 0;
  std::string task_name;
  std::chrono::nanoseconds ran_for{0};
  std::chrono::nanoseconds budget{0};
  bool ongoing = false;
  unsigned seen_by = 0;  // the shard that made the report: `shard` itself unless ongoing
};

// A real-time job that finished past its deadline, or ran longer than its WCET. Given to the handler on the
// task's shard, at the job's end; `task_name` is valid during the call only.
struct DeadlineMissReport {
  enum class Kind : std::uint8_t { deadline_miss, wcet_overrun };
  Kind kind = Kind::deadline_miss;
  unsigned shard = 0;
  std::uint64_t task_id = 0;
  std::string_view task_name;
  std::int64_t release_ns = 0;           // monotonic_ns() time the job was released
  std::int64_t deadline_ns = 0;          // its absolute deadline
  std::int64_t finished_ns = 0;          // when it ended
  std::chrono::nanoseconds executed{0};  // its execution time
  std::chrono::nanoseconds wcet{0};      // the WCET it declared (0: none)
};

// Whether the runtime gives up the capabilities it no longer needs once its shards are set up.
enum class CapabilityDrop : std::uint8_t {
  automatic,  // drop what is held beyond the kept set; a refusal warns once and the runtime runs on
  on,         // the same, but a refusal fails the start
  off,        // keep every capability the process has
};

struct RuntimeOptions {
  std::vector<int> cpus;  // one shard per CPU, in this order; empty: every CPU of the process's affinity mask
  IdleStrategy idle = IdleStrategy::spin_then_sleep;
  std::chrono::nanoseconds spin_before_sleep = std::chrono::microseconds(100);
  // busy_poll: the longest the kernel spins before the shard looks at its own queues again (1 us to 1 s).
  // Each return costs a short sleep in the kernel (its timer, tens of microseconds), and for that long the
  // kernel does not yield the CPU to other work of the same CPU on a kernel without preemption.
  std::chrono::nanoseconds busy_poll_window = std::chrono::milliseconds(1);
  // busy_poll: how long an idle shard spins in user space before it waits in the kernel (0 to 1 s; 0: at
  // once). A cross-core message that comes within it is seen with no system call of its sender, as under
  // `spin`, but so is a socket's data (flagged, then one more enter), which makes socket round trips slower
  // (docs/performance.md gives both sides). Give it to a shard whose traffic is mostly cross-core; a
  // socket-serving shard keeps 0.
  std::chrono::nanoseconds busy_poll_after{0};
  bool pin_threads = true;
  unsigned ring_entries = 256;  // SQ entries per shard ring (CQ is four times larger)
  // The best io_uring set-up the shards' rings try (lower ones where the kernel refuses it; io::SetupMode):
  // to compare, or to run as a kernel without DEFER_TASKRUN would.
  io::SetupMode ring_mode = io::SetupMode::kDeferTaskrun;
  unsigned queue_capacity = 512;  // messages per cross-core ring (one per ordered pair of shards)
  unsigned task_quota = 64;       // task resumptions per loop before the shard looks at messages and io
  // Sends a task may make per resumption as non-blocking syscalls, each finishing at once where the socket
  // has room, without a ring request, a CQE or a suspension (Shard::take_inline_io); past them, and for a
  // send that finds no room, the ring. 0: every send through the ring.
  unsigned inline_io_per_resumption = 16;
  // Idle pollers (sockets with RecvOptions::poll_when_idle that a task waits on) a spinning shard calls
  // per idle lap, in turn: each is a syscall, so with many waiting sockets a lap still ends soon and a
  // message from a peer is seen soon. The sockets not polled in a lap get their bytes from the ring as
  // without the option. At least 1.
  unsigned idle_polls_per_lap = 4;
  // Memory each shard maps on its own NUMA node when it starts (mmap + mbind, pre-faulted), so the hot path
  // takes no page fault: coroutine frames and task records, plus the shard's incoming message slots and io
  // buffers. What was obtained is in Runtime::memory(shard).
  std::size_t memory_per_shard = 4u << 20;   // frame memory mapped at start
  std::size_t frame_chunk_bytes = 1u << 20;  // mapped (and pre-faulted) each time the frame memory runs out
  std::size_t io_buffer_size = 2048;         // bytes per io buffer
  std::size_t io_buffer_count = 256;         // io buffers per shard (0: none)
  bool huge_pages =
      false;  // back shard memory with huge pages: reserved hugetlb pages, else transparent ones
  bool lock_memory =
      false;  // mlock shard memory; if the kernel refuses, the shard runs unlocked and says why
  // Per-shard latency histograms (scheduling delay, task run time, timer lateness; see metrics.hpp), read
  // with Runtime::metrics(). Off by default: it costs a cycle-counter read each time a task becomes ready
  // (docs/performance.md gives its price on spawn and join), and three histograms (about 120 KB) on each
  // shard's node. The counters (ShardStats) are kept either way.
  bool metrics = false;
  // A task that runs longer than this without suspending is reported once (0 disables the check), and once
  // more while it still runs if an idle peer shard sees it (StallReport::ongoing).
  std::chrono::nanoseconds stall_budget = std::chrono::milliseconds(5);
  // Called on the reporting shard's thread (the task's own, or for an ongoing stall the peer that saw it), so
  // possibly on two threads at once. Default: one line on stderr.
  std::function<void(const StallReport&)> on_stall;
  // Called on a task's shard for each deadline miss and WCET overrun (both are counted in ShardStats and on
  // the task either way). Default: none.
  std::function<void(const DeadlineMissReport&)> on_deadline_miss;
  // The kernel policy of every shard thread, applied when the shard starts: other (nice), fifo:PRIO, rr:PRIO
  // or deadline:RUNTIME/DEADLINE/PERIOD (rt::ThreadPolicy::parse reads these). A policy the kernel or the
  // process's capabilities refuse leaves the shard running under its old policy, with one warning on stderr;
  // Runtime::thread_policy(shard) reports what was applied and how.
  rt::ThreadPolicy thread_policy{};
  // How SCHED_DEADLINE on a pinned shard may get past the kernel's admission check (exclusive cpuset, or
  // admission control off); routes that applied are undone when the runtime stops.
  rt::ApplyOptions thread_policy_options{};
  // Least privilege. Once every shard has applied its thread policy and mapped (and locked) its memory, each
  // shard thread drops the capabilities it holds beyond the kept set, at the end of its own set-up, and so
  // does the thread that started the runtime once every shard is up (capabilities are per thread;
  // rt/capability_drop.hpp says what is dropped: effective, permitted, inheritable, ambient and, with
  // CAP_SETPCAP, the bounding set). Threads the process made before are not touched; threads made after
  // from a dropped thread inherit its sets. A process without capabilities loses nothing: a no-op.
  // The kept set is `keep_capabilities` plus what the runtime itself still uses after start:
  //   - CAP_IPC_LOCK with lock_memory (frame memory that grows later is locked too);
  //   - on the thread that called run(), CAP_SYS_NICE when thread_policy is set (run() gives that thread its
  //     own policy back at the end);
  //   - on the thread that started the runtime, CAP_SYS_ADMIN and CAP_DAC_OVERRIDE when a shard took a
  //     SCHED_DEADLINE route (stop() removes the cpuset or restores the sysctl).
  // A later Runtime started from a dropped thread has only the kept set: keep what it needs, or turn the
  // drop off on the first one. What was dropped: Runtime::dropped_capabilities().
  CapabilityDrop drop_capabilities = CapabilityDrop::automatic;
  // Names as in capabilities(7), e.g. "CAP_NET_BIND_SERVICE" to listen on a port below 1024 after start.
  std::vector<std::string> keep_capabilities;
  // One line on stderr at start naming what was dropped and kept (silent by default).
  bool report_capabilities = false;
  // How long stop() lets cancelled tasks finish before it reports them and tears their frames down.
  std::chrono::nanoseconds shutdown_timeout = std::chrono::seconds(5);
};

}  // namespace moirai
