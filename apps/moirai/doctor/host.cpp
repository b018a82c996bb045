// What the doctor learns from the live host rather than from files (capabilities, allowed CPUs, the io_uring
// opcode probe, a SCHED_DEADLINE trial), or from a fixture tree standing in for another host.
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <sstream>
#include <thread>

#include "checks.hpp"
#include "moirai/core/cpu_set.hpp"
#include "moirai/io/ring.hpp"
#include "moirai/rt/thread_policy.hpp"

namespace moirai::cli {

using namespace doctor;

namespace {

// Capability bits in /proc/<pid>/status CapEff (include/uapi/linux/capability.h).
constexpr int kCapNetAdmin = 12;
constexpr int kCapIpcLock = 14;
constexpr int kCapSysNice = 23;

// "Max locked memory  65536  65536  bytes" -> soft limit of the line that starts with `name`.
std::uint64_t limit_from(const std::string& limits, const std::string& name) {
  std::istringstream lines(limits);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind(name, 0) != 0) continue;
    std::istringstream fields(line.substr(name.size()));
    std::string soft;
    fields >> soft;
    if (soft == "unlimited") return rt::Capabilities::kUnlimited;
    const std::optional<long long> v = parse_integer(soft);
    return v && *v > 0 ? static_cast<std::uint64_t>(*v) : 0;
  }
  return 0;
}

}  // namespace

DoctorHost DoctorHost::live() {
  DoctorHost h;
  h.capabilities = [] { return std::optional<rt::Capabilities>(rt::Capabilities::current()); };
  h.allowed_cpus = [] { return current_thread_affinity(); };
  h.io_uring_probe = []() -> std::optional<std::bitset<256>> {
    if (!io::Ring::probe_available()) return std::nullopt;
    std::bitset<256> ops;
    for (int op = 0; op < 256; ++op)
      if (io::Ring::supports(op)) ops.set(static_cast<std::size_t>(op));
    return ops;
  };
  h.try_deadline = [](int cpu) {
    using namespace std::chrono_literals;
    const rt::ThreadPolicy policy = rt::ThreadPolicy::deadline_policy(100us, 1ms, 1ms);
    DeadlineTrial trial;
    const std::string missing = rt::Capabilities::current().missing_for(policy);
    if (!missing.empty()) {
      trial.outcome = DeadlineTrial::Outcome::no_capability;
      trial.detail = missing;
      return trial;
    }
    // A thread of its own, ended right after: the policy goes with it. No cpuset is made and no sysctl
    // written, so nothing on the host changes.
    std::thread([&] {
      try {
        pin_current_thread(cpu);
        rt::ApplyOptions options;
        options.allow_exclusive_cpuset = false;
        options.allow_admission_control_off = false;
        const rt::ApplyResult r = rt::apply_thread_policy(policy, 0, options);
        trial.outcome = r.ok                                             ? DeadlineTrial::Outcome::applied
                        : r.warning.find("(EPERM)") != std::string::npos ? DeadlineTrial::Outcome::root_domain
                                                                         : DeadlineTrial::Outcome::refused;
        trial.detail = r.warning;
      } catch (const std::exception& e) {
        trial.outcome = DeadlineTrial::Outcome::refused;
        trial.detail = e.what();
      }
    }).join();
    return trial;
  };
  return h;
}

DoctorHost DoctorHost::fixture(const std::string& root) {
  DoctorHost h;
  h.capabilities = [root]() -> std::optional<rt::Capabilities> {
    const Tree tree(root);
    const std::optional<std::string> status = tree.read("proc/self/status");
    const std::optional<std::string> limits = tree.read("proc/self/limits");
    if (!status || !limits) return std::nullopt;
    rt::Capabilities caps;
    std::istringstream lines(*status);
    for (std::string line; std::getline(lines, line);) {
      if (line.rfind("CapEff:", 0) != 0) continue;
      // Hex, as the kernel writes it; a line that is not (a hand-made fixture) reads as no capability.
      const std::uint64_t eff = std::strtoull(Tree::trim(line.substr(7)).c_str(), nullptr, 16);
      caps.sys_nice = (eff >> kCapSysNice & 1) != 0;
      caps.ipc_lock = (eff >> kCapIpcLock & 1) != 0;
      caps.net_admin = (eff >> kCapNetAdmin & 1) != 0;
    }
    caps.memlock_limit = limit_from(*limits, "Max locked memory");
    caps.rtprio_limit = limit_from(*limits, "Max realtime priority");
    caps.nice_limit = limit_from(*limits, "Max nice priority");
    return caps;
  };
  h.allowed_cpus = [root] { return read_online(Tree(root)); };
  return h;
}

}  // namespace moirai::cli
