// Least privilege: once a service has done what needed privilege (thread policies applied, memory locked),
// it gives up the capabilities it will not use again, so that a bug or an attacker in the running service
// cannot use them.
//
// Linux capabilities belong to each thread: capset(2) changes the calling thread only. drop_capabilities()
// therefore acts on the calling thread; a runtime calls it on every thread it owns (moirai::Runtime does, on
// each shard at the end of its set-up and on the thread that started it). libcap's psx could change every
// thread at once, but it needs every program that links it to wrap pthread_create at link time and it
// interrupts every thread with a signal; per-thread drops need neither.
//
// What is dropped, for each capability not kept:
//   - the effective, permitted and inheritable sets, and the ambient set (cap_set_proc, cap_reset_ambient):
//     the thread can neither use it nor get it back;
//   - the bounding set, when the thread holds CAP_SETPCAP (a root process does): without this, an execve as
//     uid 0 would hand every bounding capability back to the new program. The bounding set of a thread
//     without CAP_SETPCAP cannot be changed and is left as it is (it grants nothing by itself).
// PR_SET_NO_NEW_PRIVS is not set: it changes what every later execve of setuid or file-capability helpers
// does, for the whole process tree and for good, which is the service's decision, not the runtime's; with the
// bounding set dropped an execve cannot regain a dropped capability anyway.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace moirai::rt {

// Bit n stands for capability number n (CAP_SYS_NICE is 23); 64 bits cover every capability Linux defines.
using CapabilityMask = std::uint64_t;

constexpr CapabilityMask capability_bit(int cap) noexcept {
  return cap >= 0 && cap < 64 ? CapabilityMask{1} << cap : 0;
}

// "CAP_NET_BIND_SERVICE", "cap_net_bind_service" or "net_bind_service". Throws RtError(EINVAL) naming the
// text and where the names are listed (capabilities(7)).
int parse_capability(std::string_view name);
// Names of the capabilities in `mask`, lowercase, comma-separated ("cap_ipc_lock,cap_sys_nice"); "none".
std::string capability_names(CapabilityMask mask);

// The calling thread's capability sets.
struct ThreadCapabilities {
  CapabilityMask effective = 0;
  CapabilityMask permitted = 0;
  CapabilityMask inheritable = 0;
  CapabilityMask ambient = 0;
  CapabilityMask bounding = 0;
  static ThreadCapabilities current();
  // Every capability the thread can use or hand on (permitted, effective, inheritable, ambient).
  CapabilityMask held() const noexcept { return effective | permitted | inheritable | ambient; }
};

struct CapabilityDropResult {
  CapabilityMask dropped = 0;     // capabilities the thread held (held()) and no longer does
  bool bounding_dropped = false;  // the bounding set was reduced to `keep` as well
};

// Reduces the calling thread's capabilities to `keep` (capabilities in `keep` that it does not hold are not
// gained). A thread that holds nothing beyond `keep` is left as it is: dropping when unprivileged is a no-op,
// not an error. Throws RtError naming the errno when the kernel refuses (it should not: dropping needs no
// privilege).
CapabilityDropResult drop_capabilities(CapabilityMask keep);

}  // namespace moirai::rt
