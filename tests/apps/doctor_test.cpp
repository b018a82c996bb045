#include "doctor.hpp"

#include <gtest/gtest.h>
#include <liburing.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "../numa/numa_test_support.hpp"
#include "json_reader.hpp"
#include "moirai/core/error.hpp"

namespace {

using moirai::cli::DeadlineTrial;
using moirai::cli::DoctorCheck;
using moirai::cli::DoctorHost;
using moirai::cli::DoctorOptions;
using moirai::cli::DoctorStatus;
using moirai::numa::testing::FakeSysfs;

// A tuned four-CPU host, service on CPUs 2-3: every check passes. Each test then spoils one thing.
class Doctor : public ::testing::Test {
 protected:
  void SetUp() override {
    write("sys/devices/system/cpu/online", "0-3\n");
    write("proc/cmdline",
          "BOOT_IMAGE=/vmlinuz root=/dev/sda1 isolcpus=domain,managed_irq,2-3 nohz_full=2-3 "
          "rcu_nocbs=2-3\n");
    write("sys/devices/system/cpu/intel_pstate/no_turbo", "1\n");
    for (int cpu = 0; cpu < 4; ++cpu) {
      const std::string dir = "sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/";
      write(dir + "cpufreq/scaling_governor", "performance\n");
      write(dir + "cpufreq/scaling_driver", "intel_pstate\n");
      write(dir + "topology/thread_siblings_list", std::to_string(cpu) + "\n");
      idle_state(cpu, 0, "POLL", 0, false);
      idle_state(cpu, 1, "C1", 2, false);
      idle_state(cpu, 2, "C6", 133, true);
    }
    write("proc/irq/24/smp_affinity_list", "0-1\n");
    write("proc/irq/25/smp_affinity_list", "0-3\n");
    write("proc/irq/25/effective_affinity_list", "0\n");
    write("proc/sys/kernel/sched_rt_runtime_us", "-1\n");
    write("proc/sys/kernel/sched_rt_period_us", "1000000\n");
    write("sys/kernel/mm/transparent_hugepage/enabled", "always [madvise] never\n");
    write("sys/kernel/mm/transparent_hugepage/defrag", "always defer defer+madvise [madvise] never\n");
    write("proc/swaps", "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n");
    write("proc/meminfo",
          "MemTotal:       16000000 kB\nSwapTotal:             0 kB\nSwapFree:              0 kB\n");
    write("proc/sys/kernel/numa_balancing", "0\n");
    status("0000000000805000");  // CAP_NET_ADMIN (12), CAP_IPC_LOCK (14), CAP_SYS_NICE (23)
    limits("unlimited", "99");
    write("proc/sys/kernel/io_uring_disabled", "0\n");
    write("sys/devices/system/clocksource/clocksource0/current_clocksource", "tsc\n");
    write("sys/devices/system/clocksource/clocksource0/available_clocksource", "tsc hpet acpi_pm\n");
    write("sys/kernel/realtime", "1\n");
    write("proc/version", "Linux version 6.1.0-rt-amd64 #1 SMP PREEMPT_RT Debian 6.1.0\n");

    host_ = DoctorHost::fixture(root());
    host_.io_uring_probe = [] { return std::optional<std::bitset<256>>(std::bitset<256>().set()); };
    host_.try_deadline = [this](int cpu) {
      tried_cpu_ = cpu;
      return trial_;
    };
    options_.root = root();
    options_.cpus = {2, 3};
  }

  std::string root() const { return fs_.root().string(); }
  void write(const std::string& relative, const std::string& content) { fs_.write(relative, content); }
  void remove(const std::string& relative) { std::filesystem::remove_all(fs_.root() / relative); }
  void idle_state(int cpu, int k, const std::string& name, int latency_us, bool disabled) {
    const std::string dir =
        "sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/cpuidle/state" + std::to_string(k) + "/";
    write(dir + "name", name + "\n");
    write(dir + "latency", std::to_string(latency_us) + "\n");
    write(dir + "disable", disabled ? "1\n" : "0\n");
  }
  void status(const std::string& cap_eff, const std::string& groups = "1000") {
    write("proc/self/status",
          "Name:\tmoirai\nUid:\t1000\t1000\t1000\t1000\nGid:\t1000\t1000\t1000\t1000\n"
          "Groups:\t" +
              groups + "\nCapInh:\t0000000000000000\nCapEff:\t" + cap_eff + "\n");
  }
  void limits(const std::string& memlock, const std::string& rtprio) {
    write("proc/self/limits",
          "Limit                     Soft Limit           Hard Limit           Units     \n"
          "Max locked memory         " +
              memlock + "              " + memlock +
              "              bytes     \n"
              "Max nice priority         0                    0                    \n"
              "Max realtime priority     " +
              rtprio + "                   " + rtprio + "                   \n");
  }

  std::vector<DoctorCheck> run() { return moirai::cli::run_doctor(options_, host_); }
  DoctorCheck check(const std::string& id) {
    for (DoctorCheck& c : run())
      if (c.id == id) return c;
    ADD_FAILURE() << "no check " << id;
    return {};
  }

  FakeSysfs fs_;
  DoctorHost host_;
  DoctorOptions options_;
  DeadlineTrial trial_{DeadlineTrial::Outcome::applied, ""};
  int tried_cpu_ = -1;
};

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

#define EXPECT_CHECK(c, want_status, part)                                                    \
  do {                                                                                        \
    const DoctorCheck got_ = (c);                                                             \
    EXPECT_EQ(got_.status, DoctorStatus::want_status) << got_.id << ": " << got_.found;       \
    EXPECT_TRUE(has(got_.found + " | " + got_.fix, part)) << got_.found << " | " << got_.fix; \
    EXPECT_EQ(got_.fix.empty(), DoctorStatus::want_status == DoctorStatus::pass) << got_.id;  \
  } while (false)

TEST_F(Doctor, ATunedHostPassesEveryCheckInOrder) {
  const std::vector<DoctorCheck> checks = run();
  ASSERT_EQ(checks.size(), std::size(moirai::cli::kDoctorCheckIds));
  for (std::size_t i = 0; i < checks.size(); ++i) {
    EXPECT_EQ(checks[i].id, moirai::cli::kDoctorCheckIds[i]);
    EXPECT_EQ(checks[i].status, DoctorStatus::pass) << checks[i].id << ": " << checks[i].found;
    EXPECT_TRUE(checks[i].fix.empty()) << checks[i].id;
    EXPECT_FALSE(checks[i].found.empty()) << checks[i].id;
  }
  EXPECT_EQ(moirai::cli::doctor_exit_code(checks), 0);
  EXPECT_EQ(tried_cpu_, 3);  // the trial runs pinned to a chosen CPU
}

TEST_F(Doctor, Isolcpus) {
  write("proc/cmdline", "isolcpus=domain,3 nohz_full=2-3\n");
  EXPECT_CHECK(check("isolcpus"), warn, "leaves out chosen CPUs 2");
  write("proc/cmdline", "isolcpus=nohz,2-3\n");
  EXPECT_CHECK(check("isolcpus"), warn, "without 'domain'");
  write("proc/cmdline", "quiet\n");
  EXPECT_CHECK(check("isolcpus"), warn, "isolcpus=domain,managed_irq,2-3");
  write("proc/cmdline", "isolcpus=2-x\n");
  EXPECT_CHECK(check("isolcpus"), fail, "cannot be parsed");
  write("proc/cmdline", "isolcpus=0-3\n");
  EXPECT_CHECK(check("isolcpus"), fail, "every online CPU");
  remove("proc/cmdline");
  EXPECT_CHECK(check("isolcpus"), warn, "missing");
}

TEST_F(Doctor, IsolcpusFixLeavesACpuToTheSystemWhenEveryCpuIsChosen) {
  write("proc/cmdline", "quiet\n");
  options_.cpus = {0, 1, 2, 3};
  const DoctorCheck c = check("isolcpus");
  EXPECT_EQ(c.status, DoctorStatus::warn);
  EXPECT_TRUE(has(c.fix, "isolcpus=domain,managed_irq,1-3")) << c.fix;
  EXPECT_TRUE(has(c.fix, "leaves CPU 0 to the system")) << c.fix;
}

TEST_F(Doctor, NohzFull) {
  write("proc/cmdline", "isolcpus=2-3 rcu_nocbs=2-3\n");
  EXPECT_CHECK(check("nohz_full"), warn, "nohz_full=2-3");
  write("proc/cmdline", "nohz_full=2\n");
  EXPECT_CHECK(check("nohz_full"), warn, "leaves out chosen CPUs 3");
  write("proc/cmdline", "nohz_full=0-3\n");
  EXPECT_CHECK(check("nohz_full"), fail, "every online CPU");
}

TEST_F(Doctor, RcuNocbs) {
  write("proc/cmdline", "nohz_full=2-3\n");
  EXPECT_CHECK(check("rcu_nocbs"), pass, "implied");
  write("proc/cmdline", "isolcpus=2-3\n");
  EXPECT_CHECK(check("rcu_nocbs"), warn, "rcu_nocbs=2-3");
  write("proc/cmdline", "rcu_nocbs=,2\n");
  EXPECT_CHECK(check("rcu_nocbs"), fail, "cannot be parsed");
}

TEST_F(Doctor, Cpufreq) {
  write("sys/devices/system/cpu/cpu3/cpufreq/scaling_governor", "schedutil\n");
  EXPECT_CHECK(check("cpufreq"), warn, "frequency-set -g performance");
  write("sys/devices/system/cpu/cpu3/cpufreq/scaling_governor", "performance\n");
  write("sys/devices/system/cpu/intel_pstate/no_turbo", "0\n");
  EXPECT_CHECK(check("cpufreq"), warn, "no_turbo");
  write("sys/devices/system/cpu/cpu2/cpufreq/scaling_governor", "powersave\n");
  write("sys/devices/system/cpu/cpu2/cpufreq/scaling_driver", "acpi-cpufreq\n");
  EXPECT_CHECK(check("cpufreq"), fail, "lowest frequency");
  // powersave under intel_pstate is its dynamic default, not a pinned minimum.
  write("sys/devices/system/cpu/cpu2/cpufreq/scaling_driver", "intel_pstate\n");
  write("sys/devices/system/cpu/intel_pstate/no_turbo", "1\n");
  EXPECT_CHECK(check("cpufreq"), warn, "governor powersave on CPUs 2");
  remove("sys/devices/system/cpu/cpu2/cpufreq");
  remove("sys/devices/system/cpu/cpu3/cpufreq");
  remove("sys/devices/system/cpu/intel_pstate");
  EXPECT_CHECK(check("cpufreq"), pass, "no cpufreq");
}

TEST_F(Doctor, Cpuidle) {
  idle_state(2, 2, "C3", 50, false);
  EXPECT_CHECK(check("cpuidle"), warn, "C3, exit latency 50 us");
  idle_state(2, 2, "C6", 133, false);
  EXPECT_CHECK(check("cpuidle"), fail, "idle-set -D 10");
  // A PM QoS request of 0 us keeps the CPUs out of every deep state.
  const std::int32_t zero = 0;
  write("dev/cpu_dma_latency", std::string(reinterpret_cast<const char*>(&zero), sizeof zero));
  EXPECT_CHECK(check("cpuidle"), pass, "/dev/cpu_dma_latency holds 0 us");
  for (int cpu = 0; cpu < 4; ++cpu)
    remove("sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/cpuidle");
  EXPECT_CHECK(check("cpuidle"), pass, "no cpuidle states");
}

TEST_F(Doctor, Smt) {
  write("sys/devices/system/cpu/cpu2/topology/thread_siblings_list", "0,2\n");
  EXPECT_CHECK(check("smt"), warn, "cpu0/online");
  write("sys/devices/system/cpu/cpu2/topology/thread_siblings_list", "2-3\n");
  write("sys/devices/system/cpu/cpu3/topology/thread_siblings_list", "2-3\n");
  EXPECT_CHECK(check("smt"), fail, "2 and 3 are SMT siblings");
  remove("sys/devices/system/cpu/cpu2/topology");
  remove("sys/devices/system/cpu/cpu3/topology");
  EXPECT_CHECK(check("smt"), warn, "thread_siblings_list");
}

TEST_F(Doctor, IrqAffinity) {
  write("proc/irq/24/smp_affinity_list", "1-2\n");
  EXPECT_CHECK(check("irq_affinity"), warn, "24 (1) may land");
  EXPECT_TRUE(
      has(check("irq_affinity").fix, "for i in 24; do echo 0-1 | sudo tee /proc/irq/$i/smp_affinity_list"));
  write("proc/irq/25/effective_affinity_list", "3\n");
  EXPECT_CHECK(check("irq_affinity"), fail, "25 (1) land only on chosen CPUs 2-3");
  // With every CPU chosen there is nowhere to move them: a warning that says so, not a failure.
  options_.cpus = {0, 1, 2, 3};
  EXPECT_CHECK(check("irq_affinity"), warn, "every online CPU is chosen");
  remove("proc/irq");
  EXPECT_CHECK(check("irq_affinity"), warn, "no readable");
}

TEST_F(Doctor, RtThrottling) {
  write("proc/sys/kernel/sched_rt_runtime_us", "950000\n");
  EXPECT_CHECK(check("rt_throttling"), warn, "stopped for 50 ms each period");
  EXPECT_TRUE(has(check("rt_throttling").fix, "sysctl -w kernel.sched_rt_runtime_us=-1"));
  write("proc/sys/kernel/sched_rt_runtime_us", "0\n");
  EXPECT_CHECK(check("rt_throttling"), fail, "no CPU time");
  remove("proc/sys/kernel/sched_rt_runtime_us");
  EXPECT_CHECK(check("rt_throttling"), warn, "missing");
}

TEST_F(Doctor, TransparentHugePages) {
  write("sys/kernel/mm/transparent_hugepage/enabled", "[always] madvise never\n");
  EXPECT_CHECK(check("thp"), warn, "khugepaged");
  write("sys/kernel/mm/transparent_hugepage/defrag", "[always] defer defer+madvise madvise never\n");
  EXPECT_CHECK(check("thp"), fail, "direct compaction");
  write("sys/kernel/mm/transparent_hugepage/enabled", "always madvise [never]\n");
  EXPECT_CHECK(check("thp"), pass, "4 KiB pages");
}

TEST_F(Doctor, Swap) {
  write("proc/swaps", "Filename\tType\tSize\tUsed\tPriority\n/dev/sda2 partition\t1000\t0\t-2\n");
  write("proc/meminfo", "SwapTotal:          1000 kB\nSwapFree:           1000 kB\n");
  EXPECT_CHECK(check("swap"), warn, "swap on /dev/sda2");
  write("proc/meminfo", "SwapTotal:          1000 kB\nSwapFree:            600 kB\n");
  EXPECT_CHECK(check("swap"), fail, "400 kB swapped out");
  remove("proc/swaps");
  EXPECT_CHECK(check("swap"), warn, "missing");
}

TEST_F(Doctor, NumaBalancing) {
  write("proc/sys/kernel/numa_balancing", "1\n");
  EXPECT_CHECK(check("numa_balancing"), warn, "sysctl -w kernel.numa_balancing=0");
  write("proc/sys/kernel/numa_balancing", "2\n");
  EXPECT_CHECK(check("numa_balancing"), fail, "tiering");
  remove("proc/sys/kernel/numa_balancing");
  EXPECT_CHECK(check("numa_balancing"), pass, "without it");
}

TEST_F(Doctor, Memlock) {
  status("0000000000800000");  // CAP_SYS_NICE only
  limits("1048576", "99");     // 1 MiB: less than two shards' default memory
  EXPECT_CHECK(check("memlock"), warn, "RLIMIT_MEMLOCK 1048576");
  limits("16384", "99");
  EXPECT_CHECK(check("memlock"), fail, "under 64 KiB");
  status("0000000000004000");  // CAP_IPC_LOCK lifts the limit
  EXPECT_CHECK(check("memlock"), pass, "CAP_IPC_LOCK");
  remove("proc/self/limits");
  EXPECT_CHECK(check("memlock"), warn, "limits unknown");
}

// rtprio never fails: without a priority a shard runs on under SCHED_OTHER, as the runtime says once.
TEST_F(Doctor, RtprioWarnsAtWorst) {
  status("0000000000000000");
  EXPECT_CHECK(check("rtprio"), pass, "SCHED_FIFO and SCHED_RR at any priority");
  limits("unlimited", "50");
  EXPECT_CHECK(check("rtprio"), warn, "priorities above 50");
  limits("unlimited", "0");
  EXPECT_CHECK(check("rtprio"), warn, "shards run SCHED_OTHER");
}

// capabilities never fails either: each one missing disables one thing, named.
TEST_F(Doctor, CapabilitiesWarnAtWorst) {
  status("0000000000801000");  // no CAP_IPC_LOCK
  EXPECT_CHECK(check("capabilities"), warn, "setcap cap_ipc_lock+ep");
  status("0000000000000000");
  EXPECT_CHECK(check("capabilities"), warn, "cap_sys_nice,cap_ipc_lock,cap_net_admin+ep");
}

TEST_F(Doctor, IoUringDisabled) {
  write("proc/sys/kernel/io_uring_disabled", "1\n");
  write("proc/sys/kernel/io_uring_group", "27\n");
  status("0000000000805000", "27 1000");
  EXPECT_CHECK(check("io_uring_disabled"), warn, "which this process is in");
  status("0000000000805000", "1000");
  EXPECT_CHECK(check("io_uring_disabled"), fail, "add the service's user to group 27");
  write("proc/sys/kernel/io_uring_disabled", "2\n");
  EXPECT_CHECK(check("io_uring_disabled"), fail, "sysctl -w kernel.io_uring_disabled=0");
  remove("proc/sys/kernel/io_uring_disabled");
  EXPECT_CHECK(check("io_uring_disabled"), pass, "before 6.6");
}

TEST_F(Doctor, IoUringOpcodes) {
  host_.io_uring_probe = [] {
    return std::optional<std::bitset<256>>(std::bitset<256>().set().reset(IORING_OP_MSG_RING));
  };
  EXPECT_CHECK(check("io_uring_opcodes"), warn,
               "IORING_OP_MSG_RING (without it a sleeping shard is woken through an eventfd");
  host_.io_uring_probe = [] {
    return std::optional<std::bitset<256>>(
        std::bitset<256>().set().reset(IORING_OP_RECV).reset(IORING_OP_POLL_ADD));
  };
  const DoctorCheck missing = check("io_uring_opcodes");
  EXPECT_CHECK(missing, fail, "lacks IORING_OP_RECV, which Moirai needs");
  EXPECT_TRUE(has(missing.found, "IORING_OP_POLL_ADD")) << missing.found;
  host_.io_uring_probe = [] { return std::optional<std::bitset<256>>(); };
  EXPECT_CHECK(check("io_uring_opcodes"), fail, "the opcode probe failed");
  host_.io_uring_probe = nullptr;
  EXPECT_CHECK(check("io_uring_opcodes"), warn, "not probed");
}

TEST_F(Doctor, OpcodeListNamesEachOperationOfIoOnceAndRequiresTheCoreOnes) {
  std::bitset<256> seen;
  int required = 0;
  for (const moirai::cli::IoUringOpcode& op : moirai::cli::moirai_io_uring_opcodes()) {
    EXPECT_FALSE(seen.test(static_cast<std::size_t>(op.opcode))) << moirai::io::to_string(op.opcode);
    seen.set(static_cast<std::size_t>(op.opcode));
    if (op.fallback == nullptr) ++required;
  }
  for (moirai::io::Op op : moirai::io::kAllOps)
    EXPECT_TRUE(seen.test(static_cast<std::size_t>(op))) << moirai::io::to_string(op) << " is not checked";
  EXPECT_EQ(seen.count(), moirai::io::kAllOps.size());
  EXPECT_TRUE(seen.test(IORING_OP_RECV) && seen.test(IORING_OP_SEND) && seen.test(IORING_OP_LINK_TIMEOUT));
  EXPECT_GT(required, 0);
}

TEST_F(Doctor, SchedDeadline) {
  trial_ = {DeadlineTrial::Outcome::root_domain, "SCHED_DEADLINE refused (EPERM)"};
  EXPECT_CHECK(check("sched_deadline"), warn, "scripts/rt-cpuset setup 3");
  trial_ = {DeadlineTrial::Outcome::no_capability, "needs CAP_SYS_NICE"};
  EXPECT_CHECK(check("sched_deadline"), warn, "CAP_SYS_NICE is missing");
  trial_ = {DeadlineTrial::Outcome::refused, "SCHED_DEADLINE refused (EBUSY): no bandwidth"};
  EXPECT_CHECK(check("sched_deadline"), fail, "EBUSY");
  host_.try_deadline = nullptr;
  EXPECT_CHECK(check("sched_deadline"), warn, "not tried");
}

TEST_F(Doctor, Clocksource) {
  write("sys/devices/system/clocksource/clocksource0/current_clocksource", "kvm-clock\n");
  EXPECT_CHECK(check("clocksource"), warn, "echo tsc | sudo tee");
  write("sys/devices/system/clocksource/clocksource0/current_clocksource", "hpet\n");
  EXPECT_CHECK(check("clocksource"), fail, "system call");
  write("sys/devices/system/clocksource/clocksource0/available_clocksource", "hpet acpi_pm\n");
  EXPECT_CHECK(check("clocksource"), fail, "clocksource=tsc tsc=reliable");
}

// preempt_rt never fails: a spinning shard on a quiet CPU does well without it; hard deadlines want it.
TEST_F(Doctor, PreemptRtWarnsAtWorst) {
  remove("sys/kernel/realtime");
  EXPECT_CHECK(check("preempt_rt"), pass, "PREEMPT_RT");
  write("proc/version", "Linux version 6.1.0-18-amd64 #1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1\n");
  EXPECT_CHECK(check("preempt_rt"), warn, "not PREEMPT_RT (PREEMPT_DYNAMIC)");
  remove("proc/version");
  EXPECT_CHECK(check("preempt_rt"), warn, "missing");
}

TEST_F(Doctor, AFailureMakesExitCodeOne) {
  write("proc/sys/kernel/io_uring_disabled", "2\n");
  EXPECT_EQ(moirai::cli::doctor_exit_code(run()), 1);
}

TEST_F(Doctor, DefaultCpusAreTheFixturesOnlineCpus) {
  options_.cpus.clear();
  EXPECT_CHECK(check("isolcpus"), warn, "leaves out chosen CPUs 0-1");
}

TEST_F(Doctor, BadRootsAndCpusAreErrorsNamingThem) {
  options_.cpus = {7};
  try {
    run();
    ADD_FAILURE() << "CPU 7 accepted";
  } catch (const moirai::Error& e) {
    EXPECT_EQ(e.code(), moirai::Errc::invalid_cpu_set);
    EXPECT_TRUE(has(e.what(), "CPU 7 is not online")) << e.what();
  }
  options_.cpus = {2};
  options_.root = root() + "/nonexistent";
  EXPECT_THROW(run(), moirai::Error);
  options_.root = root() + "/sys/kernel/mm";  // a directory, but not a root
  try {
    run();
    ADD_FAILURE() << "a root without proc/ or sys/ accepted";
  } catch (const moirai::Error& e) {
    EXPECT_EQ(e.code(), moirai::Errc::invalid_argument);
    EXPECT_TRUE(has(e.what(), "neither proc/ nor sys/")) << e.what();
  }
}

TEST_F(Doctor, JsonHasTheDocumentedShape) {
  write("proc/sys/kernel/numa_balancing", "1\n");
  const std::vector<DoctorCheck> checks = run();
  const moirai::cli::json::Json j = moirai::cli::json::parse_json(moirai::cli::doctor_json(checks));
  const moirai::cli::json::JsonArray& arr = j.at("checks").array();
  ASSERT_EQ(arr.size(), checks.size());
  for (std::size_t i = 0; i < arr.size(); ++i) {
    EXPECT_EQ(arr[i].at("id").string(), checks[i].id);
    EXPECT_EQ(arr[i].at("status").string(), moirai::cli::to_string(checks[i].status));
    EXPECT_EQ(arr[i].at("found").string(), checks[i].found);
    EXPECT_EQ(arr[i].at("fix").string(), checks[i].fix);
  }
  EXPECT_EQ(arr[10].at("status").string(), "warn");
}

TEST_F(Doctor, TextNamesEachCheckItsFixAndTheCounts) {
  write("proc/sys/kernel/numa_balancing", "1\n");
  std::ostringstream out;
  moirai::cli::print_doctor(out, run());
  EXPECT_TRUE(has(out.str(), "warn  numa_balancing")) << out.str();
  EXPECT_TRUE(has(out.str(), "fix: sudo sysctl -w kernel.numa_balancing=0")) << out.str();
  EXPECT_TRUE(has(out.str(), "19 checks: 18 pass, 1 warn, 0 fail")) << out.str();
}

// This host, as it is: every check answers, and nothing is changed by asking.
TEST(DoctorLive, EveryCheckAnswersOnThisHost) {
  const std::vector<DoctorCheck> checks = moirai::cli::run_doctor(DoctorOptions{});
  ASSERT_EQ(checks.size(), std::size(moirai::cli::kDoctorCheckIds));
  for (std::size_t i = 0; i < checks.size(); ++i) {
    EXPECT_EQ(checks[i].id, moirai::cli::kDoctorCheckIds[i]);
    EXPECT_FALSE(checks[i].found.empty()) << checks[i].id;
    EXPECT_EQ(checks[i].fix.empty(), checks[i].status == DoctorStatus::pass) << checks[i].id;
  }
}

}  // namespace
