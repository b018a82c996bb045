// Locking the whole address space so that the hot path never takes a major page fault.
#pragma once

#include <string>
#include <system_error>

namespace moirai::rt {

struct MemoryLockResult {
  bool ok = false;
  std::string warning;  // empty when ok; else the missing capability or limit and the fix
  // Empty when ok; else in rt_category(): mlockall's errno, or EPERM when it was not tried for want of
  // CAP_IPC_LOCK or an unlimited RLIMIT_MEMLOCK.
  std::error_code error;
};

// mlockall(MCL_CURRENT | MCL_FUTURE). Without CAP_IPC_LOCK and with a finite RLIMIT_MEMLOCK it does not try:
// MCL_FUTURE under a small limit would make later allocations fail, which is worse than not locking.
MemoryLockResult lock_all_memory();

}  // namespace moirai::rt
