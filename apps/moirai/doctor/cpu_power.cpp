// How fast the chosen CPUs run and wake: frequency governors and boost, idle states and the PM QoS target.
#include <cstdint>
#include <cstring>
#include <map>

#include "checks.hpp"

namespace moirai::cli::doctor {
namespace {

// An idle state whose exit takes longer than this is "deep": a sleeping shard wakes that much later.
constexpr long kShallowIdleUs = 10;
// Deeper than this and a wake-up costs more than a whole microsecond-service budget many times over.
constexpr long kDeepIdleFailUs = 100;

// /dev/cpu_dma_latency reads as the PM QoS target in µs (a binary s32); root only on most hosts.
std::optional<long long> read_dma_latency(const Tree& tree) {
  const std::optional<std::string> raw = tree.read("dev/cpu_dma_latency");
  if (!raw) return std::nullopt;
  if (raw->size() == sizeof(std::int32_t)) {
    std::int32_t v = 0;
    std::memcpy(&v, raw->data(), sizeof v);
    return v;
  }
  return parse_integer(Tree::trim(*raw));
}

}  // namespace

DoctorCheck check_cpufreq(const Context& c) {
  std::map<std::string, Cpus> by_governor;
  std::map<std::string, Cpus> pinned_low;  // powersave under a driver where it means "minimum frequency"
  for (int cpu : c.chosen) {
    const std::optional<std::string> gov = c.tree.line(cpu_dir(cpu) + "cpufreq/scaling_governor");
    if (!gov) continue;
    by_governor[*gov].push_back(cpu);
    const std::string driver = c.tree.line(cpu_dir(cpu) + "cpufreq/scaling_driver").value_or("");
    if (*gov == "powersave" && driver.find("pstate") == std::string::npos) pinned_low[driver].push_back(cpu);
  }
  DoctorStatus status = DoctorStatus::pass;
  std::vector<std::string> found, fixes;
  const std::string targets = cpus_text(c.chosen);
  if (by_governor.empty()) {
    found.push_back("no cpufreq for CPUs " + targets + " (a VM, or the frequency is the firmware's)");
  } else {
    std::vector<std::string> parts;
    for (const auto& [gov, cpus] : by_governor)
      parts.push_back("governor " + gov + " on CPUs " + cpus_text(cpus));
    found.push_back(join(parts, ", "));
    if (by_governor.size() > 1 || by_governor.count("performance") == 0) {
      status = DoctorStatus::warn;
      found.back() += ": the frequency follows the load, so the first microseconds of a burst run slow";
      fixes.push_back("sudo cpupower -c " + targets + " frequency-set -g performance");
    }
    for (const auto& [driver, cpus] : pinned_low) {
      status = DoctorStatus::fail;
      found.push_back("powersave under " + (driver.empty() ? std::string("an unknown driver") : driver) +
                      " holds CPUs " + cpus_text(cpus) + " at their lowest frequency");
    }
  }
  const std::optional<long long> boost = read_integer(c.tree, "sys/devices/system/cpu/cpufreq/boost");
  const std::optional<long long> no_turbo =
      read_integer(c.tree, "sys/devices/system/cpu/intel_pstate/no_turbo");
  if ((boost && *boost != 0) || (no_turbo && *no_turbo == 0)) {
    status = worse(status, DoctorStatus::warn);
    found.push_back("boost is on: the clock varies with temperature and how many cores are busy");
    fixes.push_back(boost ? "echo 0 | sudo tee /sys/devices/system/cpu/cpufreq/boost"
                          : "echo 1 | sudo tee /sys/devices/system/cpu/intel_pstate/no_turbo");
  } else if (boost || no_turbo) {
    found.push_back("boost is off");
  }
  return make("cpufreq", status, join(found, "; "), join(fixes, "; "));
}

DoctorCheck check_cpuidle(const Context& c) {
  long deepest = -1;  // exit latency of the deepest enabled state, µs
  std::string deepest_name;
  Cpus with_states;
  for (int cpu : c.chosen) {
    const std::string dir = cpu_dir(cpu) + "cpuidle/";
    bool any = false;
    for (const std::string& state : c.tree.list(dir)) {
      if (state.rfind("state", 0) != 0) continue;
      const std::string s = dir + state + "/";
      const std::optional<long long> latency = read_integer(c.tree, s + "latency");
      if (!latency) continue;
      any = true;
      if (read_integer(c.tree, s + "disable").value_or(0) != 0) continue;
      if (*latency > deepest) {
        deepest = static_cast<long>(*latency);
        deepest_name = c.tree.line(s + "name").value_or(state);
      }
    }
    if (any) with_states.push_back(cpu);
  }
  const std::optional<long long> qos = read_dma_latency(c.tree);
  const std::string qos_text = qos ? "/dev/cpu_dma_latency holds " + std::to_string(*qos) + " us"
                                   : std::string(c.tree.exists("dev/cpu_dma_latency")
                                                     ? "/dev/cpu_dma_latency is not readable (root only)"
                                                     : "no /dev/cpu_dma_latency");
  if (with_states.empty()) {
    return make("cpuidle", DoctorStatus::pass,
                "no cpuidle states for CPUs " + cpus_text(c.chosen) +
                    " (idle is the hypervisor's, or idle=poll); " + qos_text);
  }
  const std::string found = "deepest enabled idle state on CPUs " + cpus_text(with_states) + ": " +
                            deepest_name + ", exit latency " + std::to_string(deepest) + " us; " + qos_text;
  if (deepest <= kShallowIdleUs) return make("cpuidle", DoctorStatus::pass, found);
  if (qos && *qos <= kShallowIdleUs) {
    return make("cpuidle", DoctorStatus::pass, found + ", which keeps the CPUs out of the deeper states");
  }
  const std::string fix =
      "sudo cpupower -c " + cpus_text(with_states) + " idle-set -D " + std::to_string(kShallowIdleUs) +
      " (disables the states deeper than " + std::to_string(kShallowIdleUs) +
      " us), or keep /dev/cpu_dma_latency open with 0 written to it (tuned's "
      "latency-performance profile does), or add intel_idle.max_cstate=1 processor.max_cstate=1" +
      kGrub;
  const DoctorStatus status = deepest > kDeepIdleFailUs ? DoctorStatus::fail : DoctorStatus::warn;
  return make("cpuidle", status, found + ": a sleeping shard wakes that much later", fix);
}

}  // namespace moirai::cli::doctor
