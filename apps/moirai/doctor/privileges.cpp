// What the service's process may do: lock memory, use real-time priorities, and the capabilities the
// runtime uses.
#include <cstdint>

#include "checks.hpp"
#include "moirai/core/runtime_options.hpp"

namespace moirai::cli::doctor {
namespace {

// The kernel's historical RLIMIT_MEMLOCK default: below it rings (before 5.12) and buffers cannot be pinned.
constexpr std::uint64_t kMemlockFloor = 64 * 1024;

std::string limit_text(std::uint64_t v) {
  return v == rt::Capabilities::kUnlimited ? std::string("unlimited") : std::to_string(v);
}

DoctorCheck no_caps(const char* id, const Context& c) {
  return make(id, DoctorStatus::warn,
              c.host.capabilities ? "proc/self/status or proc/self/limits is missing: limits unknown"
                                  : "not checked here",
              "run `moirai doctor` as the service's user");
}

}  // namespace

DoctorCheck check_memlock(const Context& c) {
  if (!c.caps) return no_caps("memlock", c);
  const RuntimeOptions defaults;
  const std::uint64_t needed =
      c.chosen.size() * (defaults.memory_per_shard + defaults.io_buffer_count * defaults.io_buffer_size);
  const std::string found = "RLIMIT_MEMLOCK " + limit_text(c.caps->memlock_limit) + " bytes";
  if (c.caps->ipc_lock) return make("memlock", DoctorStatus::pass, found + ", and CAP_IPC_LOCK lifts it");
  if (c.caps->memlock_limit >= needed) {
    return make("memlock", DoctorStatus::pass,
                found + ", enough for " + std::to_string(c.chosen.size()) + " shards' default memory (" +
                    std::to_string(needed) + " bytes)");
  }
  const std::string fix =
      "ulimit -l unlimited (LimitMEMLOCK=infinity in a systemd unit; '<user> - memlock "
      "unlimited' in /etc/security/limits.conf), or sudo setcap cap_ipc_lock+ep <binary>";
  if (c.caps->memlock_limit < kMemlockFloor) {
    return make("memlock", DoctorStatus::fail,
                found + ", under 64 KiB: rings (before Linux 5.12) and registered buffers cannot be pinned",
                fix);
  }
  return make("memlock", DoctorStatus::warn,
              found + ", less than " + std::to_string(c.chosen.size()) + " shards' default memory (" +
                  std::to_string(needed) + " bytes): lock_memory runs unlocked",
              fix);
}

// Never fails: without a real-time priority a shard runs on under SCHED_OTHER and says so once.
DoctorCheck check_rtprio(const Context& c) {
  if (!c.caps) return no_caps("rtprio", c);
  const std::string found = "RLIMIT_RTPRIO " + limit_text(c.caps->rtprio_limit);
  if (c.caps->sys_nice) return make("rtprio", DoctorStatus::pass, found + ", and CAP_SYS_NICE lifts it");
  const std::string fix =
      "ulimit -r 99 (LimitRTPRIO=99 in a systemd unit; '<user> - rtprio 99' in "
      "/etc/security/limits.conf), or sudo setcap cap_sys_nice+ep <binary>";
  if (c.caps->rtprio_limit >= 99) {
    return make("rtprio", DoctorStatus::pass, found + ": SCHED_FIFO and SCHED_RR at any priority");
  }
  if (c.caps->rtprio_limit == 0) {
    return make("rtprio", DoctorStatus::warn,
                found + " and no CAP_SYS_NICE: fifo and rr policies are refused, shards run SCHED_OTHER",
                fix);
  }
  return make(
      "rtprio", DoctorStatus::warn,
      found + " and no CAP_SYS_NICE: priorities above " + limit_text(c.caps->rtprio_limit) + " are refused",
      fix);
}

// Never fails: the runtime runs on without each capability and says what it could not do.
DoctorCheck check_capabilities(const Context& c) {
  if (!c.caps) return no_caps("capabilities", c);
  std::vector<std::string> missing, names;
  if (!c.caps->sys_nice) {
    missing.push_back("CAP_SYS_NICE (real-time and deadline policies: shards run SCHED_OTHER)");
    names.push_back("cap_sys_nice");
  }
  if (!c.caps->ipc_lock) {
    missing.push_back("CAP_IPC_LOCK (locking more than RLIMIT_MEMLOCK)");
    names.push_back("cap_ipc_lock");
  }
  if (!c.caps->net_admin) {
    missing.push_back("CAP_NET_ADMIN (socket priorities above 6, busy-poll settings per socket)");
    names.push_back("cap_net_admin");
  }
  if (missing.empty()) {
    return make("capabilities", DoctorStatus::pass,
                "CAP_SYS_NICE, CAP_IPC_LOCK and CAP_NET_ADMIN are effective");
  }
  return make("capabilities", DoctorStatus::warn, "missing " + join(missing, ", "),
              "sudo setcap " + join(names, ",") + "+ep <binary> (AmbientCapabilities= in a systemd unit)");
}

}  // namespace moirai::cli::doctor
