#include "moirai/rt/capabilities.hpp"

#include <sys/capability.h>
#include <sys/resource.h>

#include "moirai/rt/thread_policy.hpp"

namespace moirai::rt {
namespace {

bool has_effective(cap_t caps, cap_value_t cap) noexcept {
  cap_flag_value_t value = CAP_CLEAR;
  return caps != nullptr && cap_get_flag(caps, cap, CAP_EFFECTIVE, &value) == 0 && value == CAP_SET;
}

std::uint64_t soft_limit(int resource) noexcept {
  rlimit lim{};
  if (getrlimit(resource, &lim) != 0) return 0;
  return lim.rlim_cur == RLIM_INFINITY ? Capabilities::kUnlimited : static_cast<std::uint64_t>(lim.rlim_cur);
}

std::string limit_text(std::uint64_t v) {
  return v == Capabilities::kUnlimited ? "unlimited" : std::to_string(v);
}

}  // namespace

Capabilities Capabilities::current() {
  Capabilities c;
  if (cap_t caps = cap_get_proc(); caps != nullptr) {
    c.sys_nice = has_effective(caps, CAP_SYS_NICE);
    c.ipc_lock = has_effective(caps, CAP_IPC_LOCK);
    c.net_admin = has_effective(caps, CAP_NET_ADMIN);
    cap_free(caps);
  }
  c.rtprio_limit = soft_limit(RLIMIT_RTPRIO);
  c.memlock_limit = soft_limit(RLIMIT_MEMLOCK);
  c.nice_limit = soft_limit(RLIMIT_NICE);
  return c;
}

std::string Capabilities::missing_for(const ThreadPolicy& policy) const {
  if (sys_nice) return {};
  switch (policy.kind) {
    case ThreadPolicy::Kind::other: {
      // Raising priority (nice below 0 here) needs RLIMIT_NICE >= 20 - nice without the capability.
      if (policy.nice >= 0) return {};
      const std::uint64_t needed = static_cast<std::uint64_t>(20 - policy.nice);
      if (nice_limit >= needed) return {};
      return "nice " + std::to_string(policy.nice) +
             " needs CAP_SYS_NICE or RLIMIT_NICE >= " + std::to_string(needed) + " (now " +
             limit_text(nice_limit) +
             "): run `setcap cap_sys_nice+ep <binary>`, or raise the limit (`ulimit -e " +
             std::to_string(needed) + "`, or '<user> - nice " + std::to_string(policy.nice) +
             "' in /etc/security/limits.conf)";
    }
    case ThreadPolicy::Kind::fifo:
    case ThreadPolicy::Kind::round_robin: {
      const std::uint64_t needed = static_cast<std::uint64_t>(policy.priority);
      if (rtprio_limit >= needed) return {};
      const std::string name = policy.kind == ThreadPolicy::Kind::fifo ? "SCHED_FIFO" : "SCHED_RR";
      return name + " priority " + std::to_string(policy.priority) +
             " needs CAP_SYS_NICE or RLIMIT_RTPRIO >= " + std::to_string(needed) + " (now " +
             limit_text(rtprio_limit) +
             "): run `setcap cap_sys_nice+ep <binary>`, or raise the limit (`ulimit -r " +
             std::to_string(needed) + "`, or '<user> - rtprio " + std::to_string(needed) +
             "' in /etc/security/limits.conf)";
    }
    case ThreadPolicy::Kind::deadline:
      return "SCHED_DEADLINE needs CAP_SYS_NICE (RLIMIT_RTPRIO does not grant it): run "
             "`setcap cap_sys_nice+ep <binary>` or start the service as root";
  }
  return {};
}

}  // namespace moirai::rt
