// What this process may do about scheduling and memory: the capabilities and resource limits the kernel
// checks for sched_setattr and mlockall, read once so that a refusal can be predicted and explained in words.
#pragma once

#include <cstdint>
#include <string>

namespace moirai::rt {

struct ThreadPolicy;

struct Capabilities {
  static constexpr std::uint64_t kUnlimited = UINT64_MAX;  // RLIM_INFINITY

  bool sys_nice = false;            // CAP_SYS_NICE in the effective set
  bool ipc_lock = false;            // CAP_IPC_LOCK in the effective set
  bool net_admin = false;           // CAP_NET_ADMIN in the effective set (socket priorities, busy polling)
  std::uint64_t rtprio_limit = 0;   // RLIMIT_RTPRIO (soft)
  std::uint64_t memlock_limit = 0;  // RLIMIT_MEMLOCK (soft), bytes
  std::uint64_t nice_limit = 0;     // RLIMIT_NICE (soft): the lowest nice allowed is 20 - nice_limit

  // libcap (cap_get_proc) and getrlimit for the calling thread.
  static Capabilities current();

  // Empty when nothing is missing for `policy`; else one line naming CAP_SYS_NICE or the limit, and the fix.
  std::string missing_for(const ThreadPolicy& policy) const;
};

}  // namespace moirai::rt
