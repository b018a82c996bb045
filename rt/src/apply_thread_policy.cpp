// apply_thread_policy: sched_setattr, then for a pinned SCHED_DEADLINE thread that the kernel refuses, the
// routes around the root-domain check; always a read-back, and never a route left behind by a failed attempt.
#include <sched.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <optional>
#include <vector>

#include "failures.hpp"
#include "moirai/rt/capabilities.hpp"
#include "moirai/rt/error.hpp"
#include "moirai/rt/exclusive_cpuset.hpp"
#include "moirai/rt/thread_policy.hpp"
#include "sched_attr.hpp"
#include "sysfs.hpp"

namespace moirai::rt {
namespace {

constexpr const char* kRtRuntimeSysctl = "/proc/sys/kernel/sched_rt_runtime_us";

// Routes that succeeded stay in force while their threads run; release_deadline_routes() undoes them.
struct Routes {
  std::mutex mutex;
  std::vector<ExclusiveCpuset> cpusets;
  std::optional<std::string> saved_rt_runtime;  // kernel.sched_rt_runtime_us before we set it to -1
};

Routes& routes() {
  static Routes r;
  return r;
}

int set_policy(pid_t tid, const ThreadPolicy& p) noexcept {
  detail::SchedAttr attr;
  switch (p.kind) {
    case ThreadPolicy::Kind::other:
      attr.sched_policy = SCHED_OTHER;
      attr.sched_nice = p.nice;
      break;
    case ThreadPolicy::Kind::fifo:
    case ThreadPolicy::Kind::round_robin:
      attr.sched_policy = p.kind == ThreadPolicy::Kind::fifo ? SCHED_FIFO : SCHED_RR;
      attr.sched_priority = static_cast<std::uint32_t>(p.priority);
      break;
    case ThreadPolicy::Kind::deadline:
      attr.sched_policy = detail::kSchedDeadline;
      attr.sched_runtime = static_cast<std::uint64_t>(p.runtime.count());
      attr.sched_deadline = static_cast<std::uint64_t>(p.deadline.count());
      attr.sched_period = static_cast<std::uint64_t>(p.period.count());
      break;
  }
  return detail::sched_setattr(tid, attr) == 0 ? 0 : errno;
}

const char* kernel_name(ThreadPolicy::Kind kind) noexcept {
  switch (kind) {
    case ThreadPolicy::Kind::other:
      return "SCHED_OTHER";
    case ThreadPolicy::Kind::fifo:
      return "SCHED_FIFO";
    case ThreadPolicy::Kind::round_robin:
      return "SCHED_RR";
    case ThreadPolicy::Kind::deadline:
      return "SCHED_DEADLINE";
  }
  return "?";
}

// The one CPU the thread is pinned to, or -1 when its affinity has several.
int pinned_cpu(pid_t tid, std::string& affinity_text) {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(tid, sizeof set, &set) != 0) return -1;
  affinity_text = detail::format_cpu_list(set);
  if (CPU_COUNT(&set) != 1) return -1;
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (CPU_ISSET(c, &set)) return c;
  }
  return -1;
}

void append(std::string& to, const std::string& text) {
  if (text.empty()) return;
  if (!to.empty()) to += "; ";
  to += text;
}

// Route 1: the thread's CPU in an exclusive cpuset of its own. Returns the setattr errno (0: in force).
int try_exclusive_cpuset(const ThreadPolicy& policy, pid_t tid, int cpu, ApplyResult& result,
                         std::string& notes) {
  Routes& r = routes();
  std::lock_guard lock(r.mutex);
  ExclusiveCpuset* cpuset = nullptr;
  for (ExclusiveCpuset& c : r.cpusets) {
    if (c.cpu() == cpu) cpuset = &c;
  }
  std::optional<ExclusiveCpuset> created;
  if (cpuset == nullptr) {
    try {
      created.emplace(ExclusiveCpuset::create(cpu));
    } catch (const RtError& e) {
      if (e.code() != std::errc::file_exists) {
        append(notes, e.what());
        return EPERM;
      }
      // Prepared beforehand (scripts/rt-cpuset setup): use it as it is.
      try {
        created.emplace(ExclusiveCpuset::adopt(cpu));
      } catch (const RtError& again) {
        append(notes, again.what());
        return EPERM;
      }
    }
    cpuset = &*created;
  }
  try {
    cpuset->attach(tid);
  } catch (const RtError& e) {
    append(notes, e.what());
    return EPERM;  // `created`, if any, is released on return
  }
  const int err = set_policy(tid, policy);
  if (err != 0) {
    append(notes, "exclusive cpuset " + cpuset->path() +
                      " set up, but sched_setattr still failed: " + std::strerror(err));
    try {
      cpuset->detach(tid);
    } catch (const RtError& e) {
      append(notes, e.what());
    }
    return err;
  }
  result.route = DeadlineRoute::exclusive_cpuset;
  result.route_detail = cpuset->path();
  if (created) r.cpusets.push_back(std::move(*created));
  return 0;
}

// Route 2: kernel.sched_rt_runtime_us = -1, which switches SCHED_DEADLINE admission control off.
int try_admission_control_off(const ThreadPolicy& policy, pid_t tid, ApplyResult& result,
                              std::string& notes) {
  Routes& r = routes();
  std::lock_guard lock(r.mutex);
  const auto old = detail::read_line(kRtRuntimeSysctl);
  if (!old) {
    append(notes, std::string("cannot read ") + kRtRuntimeSysctl + ": " + std::strerror(errno));
    return EPERM;
  }
  if (*old != "-1") {
    if (const int err = detail::write_value(kRtRuntimeSysctl, "-1"); err != 0) {
      append(notes,
             std::string("cannot write -1 to ") + kRtRuntimeSysctl + ": " + std::strerror(err) +
                 (err == EACCES || err == EPERM || err == EROFS ? " (needs root and a writable /proc/sys)"
                                                                : ""));
      return EPERM;
    }
  }
  const int err = set_policy(tid, policy);
  if (err != 0) {
    append(notes,
           std::string("admission control off, but sched_setattr still failed: ") + std::strerror(err));
    if (*old != "-1") {
      if (const int restore = detail::write_value(kRtRuntimeSysctl, *old); restore != 0)
        append(notes, std::string("could not restore kernel.sched_rt_runtime_us = ") + *old + ": " +
                          std::strerror(restore));
    }
    return err;
  }
  if (*old != "-1" && !r.saved_rt_runtime) r.saved_rt_runtime = *old;
  result.route = DeadlineRoute::admission_control_off;
  result.route_detail = "kernel.sched_rt_runtime_us set to -1 (was " + *old +
                        "): SCHED_DEADLINE admission control and RT throttling are off system-wide until "
                        "release_deadline_routes()";
  return 0;
}

bool same_policy(const ThreadPolicy& a, const ThreadPolicy& b) noexcept {
  return a == b;
}

}  // namespace

ApplyResult apply_thread_policy(const ThreadPolicy& policy, pid_t tid, const ApplyOptions& options) {
  policy.validate();
  const pid_t target = tid == 0 ? detail::gettid() : tid;
  ApplyResult result;
  result.requested = policy;
  const ThreadPolicy before = read_thread_policy(target);  // throws ESRCH for a thread that does not exist
  const Capabilities caps = Capabilities::current();

  int err = set_policy(target, policy);
  std::string notes;
  std::string affinity;
  int cpu = -1;
  if (policy.kind == ThreadPolicy::Kind::deadline) {
    if (err == 0) result.route = DeadlineRoute::direct;
    // EPERM with the capability present is the root-domain check: the thread's affinity does not cover its
    // root domain. Only a thread pinned to one CPU has a per-CPU route.
    if (err == EPERM && caps.sys_nice) {
      cpu = pinned_cpu(target, affinity);
      if (cpu >= 0 && options.allow_exclusive_cpuset)
        err = try_exclusive_cpuset(policy, target, cpu, result, notes);
      if (err != 0 && options.allow_admission_control_off)
        err = try_admission_control_off(policy, target, result, notes);
    }
  }

  result.applied = read_thread_policy(target);
  result.ok = err == 0 && same_policy(result.applied, policy);
  if (result.ok) return result;
  if (err == 0) {
    result.warning = "the kernel holds " + result.applied.to_string() + " for thread " +
                     std::to_string(target) + " after setting " + policy.to_string();
    return result;
  }

  result.error = std::error_code(err, rt_category());
  const std::string keeps = "; thread " + std::to_string(target) + " keeps " + result.applied.to_string();
  const std::string missing = caps.missing_for(policy);
  if (!missing.empty() && (err == EPERM || err == EACCES)) {
    result.warning = missing + keeps;
  } else if (policy.kind == ThreadPolicy::Kind::deadline && err == EPERM) {
    if (affinity.empty()) pinned_cpu(target, affinity);
    result.warning =
        "SCHED_DEADLINE refused (EPERM): thread " + std::to_string(target) + " is pinned to CPU(s) " +
        affinity +
        ", fewer than its root domain spans; give the CPU its own root domain (scripts/rt-cpuset setup " +
        (cpu >= 0 ? std::to_string(cpu) : std::string("CPU")) +
        ", or ApplyOptions::allow_exclusive_cpuset) or allow admission control off "
        "(ApplyOptions::allow_admission_control_off, kernel.sched_rt_runtime_us=-1)" +
        (notes.empty() ? "" : " [" + notes + "]") + keeps;
  } else if (policy.kind == ThreadPolicy::Kind::deadline && err == EBUSY) {
    result.warning =
        "SCHED_DEADLINE refused (EBUSY): runtime/period " + policy.to_string() +
        " exceeds the bandwidth left on its root domain (kernel.sched_rt_runtime_us / "
        "sched_rt_period_us, less the other deadline threads); lower the runtime or lengthen the period" +
        (notes.empty() ? "" : " [" + notes + "]") + keeps;
  } else {
    result.warning = std::string("sched_setattr(") + kernel_name(policy.kind) + ", " + policy.to_string() +
                     ") on thread " + std::to_string(target) + " failed: " + std::strerror(err) +
                     (notes.empty() ? "" : " [" + notes + "]") + keeps;
  }
  if (!same_policy(result.applied, before)) {
    result.warning += " (it was " + before.to_string() + " before the attempt)";
  }
  return result;
}

void release_deadline_routes() {
  Routes& r = routes();
  std::lock_guard lock(r.mutex);
  detail::Failures failures;
  for (ExclusiveCpuset& c : r.cpusets)
    c.release(failures);
  r.cpusets.clear();
  if (r.saved_rt_runtime) {
    if (const int err = detail::write_value(kRtRuntimeSysctl, *r.saved_rt_runtime); err != 0) {
      failures.add(
          err, "restoring kernel.sched_rt_runtime_us = " + *r.saved_rt_runtime + ": " + std::strerror(err) +
                   (err == EBUSY ? " (deadline threads still hold more bandwidth than that allows)" : ""));
    } else {
      r.saved_rt_runtime.reset();
    }
  }
  failures.throw_if_any("undoing the SCHED_DEADLINE set-up");
}

}  // namespace moirai::rt
