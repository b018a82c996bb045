#include "moirai/rt/memory_lock.hpp"

#include <sys/mman.h>

#include <cerrno>
#include <cstring>

#include "moirai/rt/capabilities.hpp"
#include "moirai/rt/error.hpp"

namespace moirai::rt {

MemoryLockResult lock_all_memory() {
  const Capabilities caps = Capabilities::current();
  if (!caps.ipc_lock && caps.memlock_limit != Capabilities::kUnlimited) {
    return {false,
            "memory not locked: mlockall needs CAP_IPC_LOCK or an unlimited RLIMIT_MEMLOCK (now " +
                std::to_string(caps.memlock_limit) +
                " bytes); run `setcap cap_ipc_lock+ep <binary>`, or `ulimit -l unlimited` / "
                "'<user> - memlock unlimited' in /etc/security/limits.conf",
            {EPERM, rt_category()}};
  }
  if (::mlockall(MCL_CURRENT | MCL_FUTURE) != 0) {
    const int err = errno;
    return {false,
            std::string("memory not locked: mlockall(MCL_CURRENT|MCL_FUTURE) failed: ") + std::strerror(err) +
                (err == ENOMEM ? "; not enough lockable RAM, or the memlock limit is too low" : ""),
            {err, rt_category()}};
  }
  return {true, {}, {}};
}

}  // namespace moirai::rt
