// The kernel's scheduler: RT throttling, whether SCHED_DEADLINE is granted, and a PREEMPT_RT kernel.
#include "checks.hpp"

namespace moirai::cli::doctor {

DoctorCheck check_rt_throttling(const Context& c) {
  const std::optional<long long> runtime = read_integer(c.tree, "proc/sys/kernel/sched_rt_runtime_us");
  const long long period = read_integer(c.tree, "proc/sys/kernel/sched_rt_period_us").value_or(1000000);
  const std::string fix = "sudo sysctl -w kernel.sched_rt_runtime_us=-1 (and in /etc/sysctl.d/ to keep it)";
  if (!runtime) {
    return make("rt_throttling", DoctorStatus::warn,
                "proc/sys/kernel/sched_rt_runtime_us is missing or unreadable", fix);
  }
  const std::string value = "kernel.sched_rt_runtime_us = " + std::to_string(*runtime);
  if (*runtime < 0 || *runtime >= period) {
    return make("rt_throttling", DoctorStatus::pass, value + ": real-time threads are not throttled");
  }
  if (*runtime == 0) {
    return make("rt_throttling", DoctorStatus::fail,
                value + ": SCHED_FIFO, SCHED_RR and SCHED_DEADLINE threads get no CPU time at all", fix);
  }
  return make("rt_throttling", DoctorStatus::warn,
              value + " of every " + std::to_string(period) +
                  ": a spinning SCHED_FIFO shard is stopped for " +
                  std::to_string((period - *runtime) / 1000) + " ms each period",
              fix);
}

DoctorCheck check_sched_deadline(const Context& c) {
  const int cpu = c.chosen.back();
  if (!c.host.try_deadline) {
    return make("sched_deadline", DoctorStatus::warn,
                "not tried: the trial runs a thread on this host, and --root points at another tree",
                "run `moirai doctor` on the host itself");
  }
  const DeadlineTrial t = c.host.try_deadline(cpu);
  const std::string on = "SCHED_DEADLINE on a thread pinned to CPU " + std::to_string(cpu);
  switch (t.outcome) {
    case DeadlineTrial::Outcome::applied:
      return make("sched_deadline", DoctorStatus::pass, on + ": applied (the thread then ended)");
    case DeadlineTrial::Outcome::no_capability:
      return make("sched_deadline", DoctorStatus::warn, on + ": not tried, CAP_SYS_NICE is missing",
                  "sudo setcap cap_sys_nice+ep <binary>, or start the service as root");
    case DeadlineTrial::Outcome::root_domain:
      return make(
          "sched_deadline", DoctorStatus::warn,
          on + ": refused (EPERM), the CPU shares its root domain with others; the runtime makes an "
               "exclusive cpuset for it when it may",
          "sudo scripts/rt-cpuset setup " + std::to_string(cpu) +
              " (gives the CPU its own root domain), or sudo sysctl -w kernel.sched_rt_runtime_us=-1");
    case DeadlineTrial::Outcome::refused:
      break;
  }
  return make(
      "sched_deadline", DoctorStatus::fail, on + ": refused: " + t.detail,
      "see the refusal above; `sudo sysctl -w kernel.sched_rt_runtime_us=-1` lifts the bandwidth limit");
}

// Never fails: a spinning shard on an isolated CPU does not need PREEMPT_RT; hard deadlines do.
DoctorCheck check_preempt_rt(const Context& c) {
  const std::optional<std::string> version = c.tree.line("proc/version");
  if (read_integer(c.tree, "sys/kernel/realtime").value_or(0) == 1 ||
      (version && version->find("PREEMPT_RT") != std::string::npos)) {
    return make("preempt_rt", DoctorStatus::pass, "a PREEMPT_RT kernel");
  }
  const std::string fix =
      "for hard deadlines, boot a PREEMPT_RT kernel (Debian: sudo apt-get install "
      "linux-image-rt-amd64)";
  if (!version)
    return make("preempt_rt", DoctorStatus::warn, "proc/version is missing: the kernel is unknown", fix);
  std::string model = "without kernel preemption";
  if (version->find("PREEMPT_DYNAMIC") != std::string::npos) {
    model = "PREEMPT_DYNAMIC";
  } else if (version->find("PREEMPT") != std::string::npos) {
    model = "PREEMPT";
  }
  return make(
      "preempt_rt", DoctorStatus::warn,
      "not PREEMPT_RT (" + model + "): interrupt handlers and kernel code run unpreempted ahead of a shard",
      fix);
}

}  // namespace moirai::cli::doctor
