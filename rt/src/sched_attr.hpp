// The kernel's struct sched_attr and the raw sched_setattr / sched_getattr system calls: glibc 2.36 wraps
// neither. The layout is the kernel's SCHED_ATTR_SIZE_VER0 (48 bytes); the utilization-clamp fields of VER1
// are not used, and the kernel accepts the smaller size from older callers.
#pragma once

#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include <cstdint>

namespace moirai::rt::detail {

#ifndef SCHED_DEADLINE
inline constexpr int kSchedDeadline = 6;
#else
inline constexpr int kSchedDeadline = SCHED_DEADLINE;
#endif

struct SchedAttr {
  std::uint32_t size = sizeof(SchedAttr);
  std::uint32_t sched_policy = 0;
  std::uint64_t sched_flags = 0;
  std::int32_t sched_nice = 0;
  std::uint32_t sched_priority = 0;
  std::uint64_t sched_runtime = 0;  // SCHED_DEADLINE, nanoseconds
  std::uint64_t sched_deadline = 0;
  std::uint64_t sched_period = 0;
};
static_assert(sizeof(SchedAttr) == 48, "SCHED_ATTR_SIZE_VER0");

inline int sched_setattr(pid_t tid, const SchedAttr& attr) noexcept {
  return static_cast<int>(::syscall(SYS_sched_setattr, tid, &attr, 0U));
}

inline int sched_getattr(pid_t tid, SchedAttr& attr) noexcept {
  return static_cast<int>(::syscall(SYS_sched_getattr, tid, &attr, static_cast<unsigned>(sizeof attr), 0U));
}

inline pid_t gettid() noexcept {
  return static_cast<pid_t>(::syscall(SYS_gettid));
}

}  // namespace moirai::rt::detail
