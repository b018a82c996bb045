// Why io_uring_setup failed, in words: the facts of the host that tell the causes apart (HostFacts), and the
// message naming the cause and the fix for each errno the kernel gives.
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

#include "moirai/io/ring.hpp"

namespace moirai::io {
namespace {

bool file_contains(const char* path, const char* needle) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.find(needle) != std::string::npos) return true;
  }
  return false;
}

// ENOSYS: no io_uring in this kernel, or a seccomp filter hides it.
void explain_missing(std::ostream& out, const HostFacts& facts) {
  out << "This kernel has no io_uring (Linux before 5.1, or built without CONFIG_IO_URING)";
  if (facts.in_container || facts.seccomp_filtered) {
    out << ", or a seccomp filter on this process (a container's profile, say) blocks the io_uring "
           "system calls";
  }
  out << ". Fix: run on Linux 6.1 or newer with CONFIG_IO_URING=y; in a container, allow io_uring_setup, "
         "io_uring_enter and io_uring_register in its seccomp profile.";
}

// EPERM, EACCES: the kernel.io_uring_disabled sysctl, or a security policy.
void explain_refused(std::ostream& out, const HostFacts& facts) {
  if (facts.io_uring_disabled == 2) {
    out << "kernel.io_uring_disabled is 2, which forbids io_uring to every process. Fix: sysctl -w "
           "kernel.io_uring_disabled=0 (or 1, with kernel.io_uring_group set to a group this user is "
           "in).";
  } else if (facts.io_uring_disabled == 1) {
    out << "kernel.io_uring_disabled is 1, which allows io_uring only to members of "
           "kernel.io_uring_group "
           "and to CAP_SYS_ADMIN. Fix: add this user to that group, or sysctl -w "
           "kernel.io_uring_disabled=0.";
  } else {
    out << "A security policy refused it: a seccomp filter"
        << (facts.seccomp_filtered ? " (this process has one)"
            : facts.in_container   ? " (this looks like a container)"
                                   : "")
        << " or an LSM such as SELinux or AppArmor. Fix: allow io_uring_setup, io_uring_enter and "
           "io_uring_register for this process.";
  }
}

// ENOMEM: without CAP_IPC_LOCK the kernel may count the ring's pages against RLIMIT_MEMLOCK together with the
// memory already locked, so a 64 KiB limit (a container's default) fits one 256-entry ring and fails the
// second shard's.
void explain_memlock(std::ostream& out, const HostFacts& facts) {
  out << "The kernel could not pin memory for the ring. Without CAP_IPC_LOCK a ring's memory counts "
         "against RLIMIT_MEMLOCK (with the memory this process has locked already; each shard has a "
         "ring), which is ";
  if (facts.memlock_kib == ~0ull) {
    out << "unlimited here, so the machine itself is short of memory. Fix: free memory or use fewer ring "
           "entries.";
  } else {
    out << facts.memlock_kib << " KiB here. Fix: raise it (ulimit -l unlimited; LimitMEMLOCK=infinity in a "
        << "systemd unit; memlock in /etc/security/limits.conf), or use fewer ring entries.";
  }
}

}  // namespace

HostFacts HostFacts::current() {
  HostFacts facts;
  {
    std::ifstream in("/proc/sys/kernel/io_uring_disabled");
    int value = 0;
    if (in >> value) facts.io_uring_disabled = value;
  }
  rlimit lim{};
  if (getrlimit(RLIMIT_MEMLOCK, &lim) == 0) {
    facts.memlock_kib = lim.rlim_cur == RLIM_INFINITY ? ~0ull : lim.rlim_cur / 1024;
  }
  {
    std::ifstream status("/proc/self/status");
    std::string line;
    while (std::getline(status, line)) {
      if (line.rfind("Seccomp:", 0) == 0) facts.seccomp_filtered = line.find('2') != std::string::npos;
    }
  }
  facts.in_container = access("/.dockerenv", F_OK) == 0 || access("/run/.containerenv", F_OK) == 0 ||
                       file_contains("/proc/1/cgroup", "docker") ||
                       file_contains("/proc/1/cgroup", "kubepods");
  return facts;
}

std::string describe_setup_error(int err, const HostFacts& facts) {
  std::ostringstream out;
  const char* name = strerrorname_np(err);  // null for an errno glibc does not know
  out << "io_uring cannot be used: io_uring_setup failed with " << (name != nullptr ? name : "errno") << " "
      << err << " (" << std::strerror(err) << "). ";
  switch (err) {
    case ENOSYS:
      explain_missing(out, facts);
      break;
    case EPERM:
    case EACCES:
      explain_refused(out, facts);
      break;
    case ENOMEM:
      explain_memlock(out, facts);
      break;
    case EMFILE:
    case ENFILE:
      out << "The process or the system is out of file descriptors. Fix: raise ulimit -n.";
      break;
    case EINVAL:
      out << "The kernel refused every set-up Moirai tries, even without flags, so it is older than Moirai "
             "supports. Fix: run on Linux 6.1 or newer (5.19 at the least).";
      break;
    default:
      out << "Fix: check dmesg and the kernel's io_uring configuration.";
      break;
  }
  return out.str();
}

}  // namespace moirai::io
