// Test support: makes io_uring_setup fail in this process with a chosen errno (a seccomp filter, as a
// container runtime's profile installs), so that a test can see how a refused io_uring is reported. Call it
// only in a forked child: the filter lasts as long as the process and cannot be removed.
#pragma once

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include <cstddef>
#include <cstdint>

#if defined(__x86_64__)
#define MOIRAI_TEST_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define MOIRAI_TEST_AUDIT_ARCH AUDIT_ARCH_AARCH64
#endif

namespace moirai_test {

// Whether refuse_io_uring_setup() can work here (the filter is written for x86_64 and aarch64).
constexpr bool kCanRefuseIoUring =
#if defined(MOIRAI_TEST_AUDIT_ARCH) && defined(__NR_io_uring_setup)
    true;
#else
    false;
#endif

// In this process only, makes io_uring_setup fail with `err` and allows every other system call. Returns
// false if the filter could not be installed.
inline bool refuse_io_uring_setup(int err) {
#if defined(MOIRAI_TEST_AUDIT_ARCH) && defined(__NR_io_uring_setup)
  sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, MOIRAI_TEST_AUDIT_ARCH, 0, 3),  // another ABI: allow
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (static_cast<std::uint32_t>(err) & SECCOMP_RET_DATA)),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sock_fprog program{};
  program.len = static_cast<unsigned short>(sizeof(filter) / sizeof(filter[0]));
  program.filter = filter;
  // NO_NEW_PRIVS lets an unprivileged process install a filter; it lasts only as long as this process.
  return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
         prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program) == 0;
#else
  (void)err;
  return false;
#endif
}

}  // namespace moirai_test
