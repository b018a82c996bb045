#include "pinned_threads.hpp"

#include <sched.h>

#include <cerrno>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <system_error>

namespace moirai::cli::baselines {
namespace {

// Far above any real machine (the kernel's NR_CPUS tops out at 8192), low enough that CPU_ALLOC stays small.
constexpr int kMaxCpuNumber = 1 << 16;

std::string pin_failure(int cpu, const std::string& reason) {
  return "cannot pin a thread to CPU " + std::to_string(cpu) + ": " + reason;
}

}  // namespace

void pin(pthread_t thread, int cpu) {
  if (cpu < 0 || cpu >= kMaxCpuNumber) {
    throw std::runtime_error(pin_failure(cpu, "no such CPU (CPUs are numbered from 0; see `nproc`)"));
  }
  // A dynamically sized set, so that a CPU number beyond CPU_SETSIZE reaches the kernel (and is refused
  // there) instead of being silently dropped, which would ask for an empty set.
  struct CpuSetFree {
    void operator()(cpu_set_t* s) const noexcept { CPU_FREE(s); }
  };
  std::unique_ptr<cpu_set_t, CpuSetFree> set(CPU_ALLOC(cpu + 1));
  if (!set) throw std::bad_alloc();
  const std::size_t size = CPU_ALLOC_SIZE(cpu + 1);
  CPU_ZERO_S(size, set.get());
  CPU_SET_S(static_cast<std::size_t>(cpu), size, set.get());
  const int rc = pthread_setaffinity_np(thread, size, set.get());
  if (rc == 0) return;
  std::string reason = std::generic_category().message(rc);
  if (rc == EINVAL) {
    reason +=
        " (the CPU does not exist, is offline, or is outside this process's allowed CPUs: see "
        "/sys/devices/system/cpu/online and `taskset -p $$`)";
  } else if (rc == EPERM) {
    reason += " (not permitted to change this thread's affinity)";
  }
  throw std::runtime_error(pin_failure(cpu, reason));
}

void make_time_shared(pthread_t thread, int cpu) {
  sched_param param{};
  param.sched_priority = 0;
  const int rc = pthread_setschedparam(thread, SCHED_OTHER, &param);
  if (rc != 0) {
    throw std::runtime_error("cannot make the thread for CPU " + std::to_string(cpu) +
                             " SCHED_OTHER: " + std::generic_category().message(rc));
  }
}

void check_two_cpus(int cpu_a, int cpu_b, const char* what) {
  if (cpu_a == cpu_b) {
    // Two spinners on one CPU progress only when the scheduler switches between them: milliseconds per trip.
    throw std::invalid_argument(std::string(what) + " needs two different CPUs, got CPU " +
                                std::to_string(cpu_a) + " twice");
  }
}

}  // namespace moirai::cli::baselines
