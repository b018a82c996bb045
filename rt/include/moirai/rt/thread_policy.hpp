// The kernel scheduling policy of one thread: SCHED_OTHER with a nice value, SCHED_FIFO / SCHED_RR at a
// priority, or SCHED_DEADLINE with runtime, deadline and period. Applied with sched_setattr and always read
// back with sched_getattr, so that what is reported is what the kernel holds. Without the capability the
// thread keeps its policy and the result says why, once, in words.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace moirai::rt {

struct ThreadPolicy {
  enum class Kind : std::uint8_t { other, fifo, round_robin, deadline };

  Kind kind = Kind::other;
  int nice = 0;                                                 // other: -20..19
  int priority = 0;                                             // fifo / round_robin: 1..99
  std::chrono::nanoseconds runtime{0}, deadline{0}, period{0};  // deadline

  static ThreadPolicy other(int nice = 0);
  static ThreadPolicy fifo(int priority);
  static ThreadPolicy round_robin(int priority);
  static ThreadPolicy deadline_policy(std::chrono::nanoseconds runtime, std::chrono::nanoseconds deadline,
                                      std::chrono::nanoseconds period);

  // "other", "other:NICE", "fifo:PRIO", "rr:PRIO", "deadline:RUNTIME/DEADLINE/PERIOD" with times in
  // microseconds, or with a unit suffix ns, us, ms or s on each. Throws RtError(EINVAL) naming the accepted
  // forms and the bad part. Does not range-check (validate() does).
  static ThreadPolicy parse(std::string_view text);
  // Round-trips through parse: times in microseconds when all three are whole microseconds, else in ns.
  std::string to_string() const;
  // The kernel's ranges: nice -20..19; priority sched_get_priority_min..max (1..99); for deadline
  // 1024 ns <= runtime <= deadline <= period and the period within
  // kernel.sched_deadline_period_{min,max}_us. Throws RtError(EINVAL) naming the field and the range.
  void validate() const;

  friend bool operator==(const ThreadPolicy&, const ThreadPolicy&) noexcept = default;
};

// "other", "fifo", "round-robin", "deadline".
const char* to_string(ThreadPolicy::Kind kind) noexcept;

// How SCHED_DEADLINE got past the kernel's admission check for a thread pinned to fewer CPUs than its root
// domain spans (the kernel refuses that with EPERM: it cannot account such a thread's bandwidth).
enum class DeadlineRoute : std::uint8_t {
  not_needed,             // not a deadline policy, or it was refused before any route applied
  direct,                 // sched_setattr succeeded as is
  exclusive_cpuset,       // the thread was moved into a per-CPU exclusive cpuset: its own root domain
  admission_control_off,  // kernel.sched_rt_runtime_us was set to -1
};
const char* to_string(DeadlineRoute route) noexcept;

struct ApplyOptions {
  // On EPERM for a SCHED_DEADLINE thread pinned to one CPU: move it into a per-CPU exclusive cpuset, when the
  // cpuset controller is mounted and we may create one.
  bool allow_exclusive_cpuset = true;
  // Else set kernel.sched_rt_runtime_us = -1. That disables SCHED_DEADLINE admission control and RT
  // throttling (the reserve that keeps a runaway SCHED_FIFO thread from starving the machine) for the whole
  // system.
  bool allow_admission_control_off = false;
};

struct ApplyResult {
  bool ok = false;                  // the requested policy is in force
  ThreadPolicy requested, applied;  // applied: read back with sched_getattr after the attempt
  DeadlineRoute route = DeadlineRoute::not_needed;
  std::string warning;  // empty when ok; else ONE line naming the missing capability or limit and the fix
  // The errno sched_setattr refused with (EPERM, EBUSY, ...), in rt_category(); empty when ok, and when the
  // kernel took the call but holds another policy.
  std::error_code error;
  std::string route_detail;  // the cpuset directory, or the sysctl's previous value; empty for other routes
};

// Applies `policy` to thread `tid` (0: the calling thread). Invalid parameters throw RtError(EINVAL) before
// anything is touched; a thread that does not exist throws RtError(ESRCH). A refusal by the kernel or a
// missing capability returns ok = false with the thread on its old policy (read back) and the warning set. A
// route (cpuset, sysctl) set up for an attempt that still failed is undone before returning; one that
// succeeded stays in force until release_deadline_routes().
ApplyResult apply_thread_policy(const ThreadPolicy& policy, pid_t tid = 0, const ApplyOptions& options = {});

// sched_getattr. SCHED_BATCH and SCHED_IDLE read as other. Throws RtError on failure (ESRCH: no such thread).
ThreadPolicy read_thread_policy(pid_t tid = 0);

// Undoes every route apply_thread_policy left in force in this process: threads still in a per-CPU cpuset go
// back to the cpuset they came from (with their old affinity when the kernel allows it), the cpusets are
// removed and the parent's sched_load_balance restored; kernel.sched_rt_runtime_us gets its old value back.
// Call it once the SCHED_DEADLINE threads have ended or returned to another policy. Goes on past a step that
// fails, then throws RtError naming every step that failed (its code: the errno of the first).
void release_deadline_routes();

}  // namespace moirai::rt
