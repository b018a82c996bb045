// CPU sets: parsing and printing Linux CPU lists, checking the CPUs a runtime is asked to run shards on
// against what the machine and the process may use, and pinning threads.
//
// Every check happens at start, so that a bad CPU list is an error naming the CPU, the reason and the fix,
// instead of a shard that silently shares a CPU with another or fails to pin later.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace moirai {

// The number of CPUs glibc's cpu_set_t can describe (CPU_SETSIZE); CPU numbers run from 0 to kMaxCpus - 1.
// Larger numbers could be neither pinned nor read back through the affinity calls used here, so they are
// rejected where they enter: when a list is parsed or a mask is set.
inline constexpr int kMaxCpus = 1024;

// Parses a Linux CPU list ("0-3,5,8-9", as in /sys/devices/system/cpu/online and `taskset -c`) with
// moirai::cpu_list::parse (<moirai/base/cpu_list.hpp>): blanks around items are tolerated, not inside a
// range. Returns the CPUs sorted and de-duplicated. Throws Error(Errc::invalid_cpu_set), naming the bad item
// and the expected syntax, for empty text, an item that is not a number or range, a range with blanks around
// its '-' ("0 - 3"), a reversed range ("5-3"), a negative number, a number >= kMaxCpus, and an empty item (a
// leading, doubled or trailing comma).
std::vector<int> parse_cpu_list(std::string_view text);

// The compact form of a CPU list, as Linux prints it: runs of consecutive CPUs become ranges, so
// {0, 1, 2, 3, 5} gives "0-3,5". The input need not be sorted or unique; an empty list gives "".
std::string format_cpu_list(const std::vector<int>& cpus);

// What the machine and this process allow, read once so that resolve_shard_cpus() is a pure function
// (tests inject their own facts).
struct CpuFacts {
  int configured = 0;       // sysconf(_SC_NPROCESSORS_CONF): CPUs 0..configured-1 exist
  std::vector<int> online;  // /sys/devices/system/cpu/online
  std::vector<int>
      allowed;  // sched_getaffinity() of the calling thread: the mask taskset or a cpuset gave us
  static CpuFacts current();
};

// Validates the CPUs a runtime is asked to run one shard each on and returns them sorted. An empty
// `requested` means "every CPU of the affinity mask" (facts.allowed). Throws Error(Errc::invalid_cpu_set)
// naming the offending CPUs, the reason and the fix when a CPU does not exist, is offline, is outside the
// affinity mask, or is requested twice; and when there would be no shard at all.
std::vector<int> resolve_shard_cpus(const std::vector<int>& requested, const CpuFacts& facts);

// Pins the calling thread to `cpu`; on return the thread runs there. Throws Error(Errc::setup_failed) naming
// the CPU and the system's reason.
void pin_current_thread(int cpu);

// The calling thread's affinity mask, sorted; for restoring it after a temporary pin. Throws
// Error(Errc::setup_failed) if the kernel refuses to report it.
std::vector<int> current_thread_affinity();

// Sets the calling thread's affinity mask. Throws Error(Errc::invalid_cpu_set) for an empty list or a CPU
// outside 0..kMaxCpus-1, and Error(Errc::setup_failed) when the kernel refuses the mask.
void set_current_thread_affinity(const std::vector<int>& cpus);

}  // namespace moirai
