// `moirai doctor`: is this host ready for microsecond services? Reads /proc and /sys (under a root directory,
// so that fixture trees can stand in for other hosts), changes nothing, needs no privilege. Each check says
// pass, warn or fail, what it found, and the fix a person can paste (a command or a kernel parameter).
#pragma once

#include <bitset>
#include <functional>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "moirai/io/op.hpp"
#include "moirai/rt/capabilities.hpp"

namespace moirai::cli {

enum class DoctorStatus { pass, warn, fail };
const char* to_string(DoctorStatus status) noexcept;  // "pass", "warn", "fail"

struct DoctorCheck {
  std::string id;  // stable: "isolcpus", "cpufreq", ... (see kDoctorCheckIds)
  DoctorStatus status = DoctorStatus::pass;
  std::string found;  // what the host has, in words
  std::string fix;    // empty on pass; else a command or kernel parameter to paste, with where it goes
};

// Every check, in the order run_doctor() reports them.
inline constexpr const char* kDoctorCheckIds[] = {"isolcpus",
                                                  "nohz_full",
                                                  "rcu_nocbs",
                                                  "cpufreq",
                                                  "cpuidle",
                                                  "smt",
                                                  "irq_affinity",
                                                  "rt_throttling",
                                                  "thp",
                                                  "swap",
                                                  "numa_balancing",
                                                  "memlock",
                                                  "rtprio",
                                                  "capabilities",
                                                  "io_uring_disabled",
                                                  "io_uring_opcodes",
                                                  "sched_deadline",
                                                  "clocksource",
                                                  "preempt_rt"};

// The io_uring operations Moirai submits (every io::Op, its name from io::to_string). A required one missing
// fails; an optional one missing warns and names the fallback Moirai takes without it.
struct IoUringOpcode {
  io::Op opcode;
  const char* fallback;  // null: required
};
const std::vector<IoUringOpcode>& moirai_io_uring_opcodes();

// What trying SCHED_DEADLINE on a short-lived thread pinned to one chosen CPU gave.
struct DeadlineTrial {
  enum class Outcome {
    applied,        // the kernel took it (the thread then ended: nothing stays changed)
    no_capability,  // not tried: CAP_SYS_NICE is missing
    root_domain,    // EPERM: the CPU shares its root domain (needs an exclusive cpuset, scripts/rt-cpuset)
    refused,        // any other refusal (EBUSY: no bandwidth left, ...)
  };
  Outcome outcome = Outcome::refused;
  std::string detail;  // the runtime's explanation of a refusal
};

// What is not a file: each probe may be replaced (tests do); an empty one means "not checked here", which the
// check reports as a warning saying so.
struct DoctorHost {
  std::function<std::optional<rt::Capabilities>()>
      capabilities;                                // capabilities, soft rlimits; nullopt: unknown
  std::function<std::vector<int>()> allowed_cpus;  // the default of --cpus
  std::function<std::optional<std::bitset<256>>()> io_uring_probe;  // nullopt: io_uring unusable here
  std::function<DeadlineTrial(int cpu)> try_deadline;

  // This process: libcap and getrlimit, sched_getaffinity, Ring's opcode probe, a pinned trial thread.
  static DoctorHost live();
  // A fixture tree: capabilities from <root>/proc/self/status (CapEff) and <root>/proc/self/limits, the CPUs
  // from <root>/sys/devices/system/cpu/online; no opcode probe and no deadline trial (those are the live
  // host's, and a fixture is another host).
  static DoctorHost fixture(const std::string& root);
};

struct DoctorOptions {
  std::string root = "/";  // where proc/ and sys/ are
  std::vector<int> cpus;   // the CPUs the service will run on; empty: host.allowed_cpus()
};

// Runs every check. Throws Error(invalid_argument) for a root that is not a directory holding proc/ or sys/,
// and Error(invalid_cpu_set) for a chosen CPU that is not online under the root.
std::vector<DoctorCheck> run_doctor(const DoctorOptions& options, const DoctorHost& host);
// Same, with DoctorHost::live() for "/" and DoctorHost::fixture(root) for any other root.
std::vector<DoctorCheck> run_doctor(const DoctorOptions& options);

// {"checks": [{"id", "status": "pass|warn|fail", "found", "fix"}]}. One line, no trailing newline.
std::string doctor_json(const std::vector<DoctorCheck>& checks);
// One line per check for a person ("pass  isolcpus  ..."), the fix indented below, then a summary line.
void print_doctor(std::ostream& out, const std::vector<DoctorCheck>& checks);
// 0 when no check failed, else 1.
int doctor_exit_code(const std::vector<DoctorCheck>& checks) noexcept;

}  // namespace moirai::cli
