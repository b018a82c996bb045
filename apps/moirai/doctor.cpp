#include "doctor.hpp"

#include <algorithm>
#include <filesystem>

#include "doctor/checks.hpp"
#include "json_writer.hpp"
#include "moirai/core/error.hpp"

namespace moirai::cli {

using namespace doctor;

const char* to_string(DoctorStatus status) noexcept {
  switch (status) {
    case DoctorStatus::pass:
      return "pass";
    case DoctorStatus::warn:
      return "warn";
    case DoctorStatus::fail:
      return "fail";
  }
  return "?";
}

std::vector<DoctorCheck> run_doctor(const DoctorOptions& options, const DoctorHost& host) {
  Tree tree(options.root);
  std::error_code ec;
  if (!fs::is_directory(options.root, ec)) {
    throw Error(Errc::invalid_argument, "--root " + options.root + " is not a directory");
  }
  if (!tree.exists("proc") && !tree.exists("sys")) {
    throw Error(Errc::invalid_argument,
                "--root " + options.root + " holds neither proc/ nor sys/: give a tree laid out like /");
  }
  Cpus chosen = options.cpus.empty() && host.allowed_cpus ? host.allowed_cpus() : options.cpus;
  std::sort(chosen.begin(), chosen.end());
  chosen.erase(std::unique(chosen.begin(), chosen.end()), chosen.end());
  Cpus online = read_online(tree);
  if (chosen.empty()) chosen = online;
  if (chosen.empty()) {
    throw Error(Errc::invalid_cpu_set, "no sys/devices/system/cpu/online under " + options.root +
                                           ": name the CPUs with --cpus LIST");
  }
  if (online.empty()) online = chosen;
  const Cpus offline = minus(chosen, online);
  if (!offline.empty()) {
    throw Error(Errc::invalid_cpu_set, "--cpus: CPU " + cpus_text(offline) +
                                           " is not online here (online: " + cpus_text(online) + ")");
  }
  Context c{tree,
            chosen,
            online,
            host,
            host.capabilities ? host.capabilities() : std::nullopt,
            tree.line("proc/cmdline")};
  return {
      check_cpu_param(c, "isolcpus", "the scheduler balances other tasks", "domain,managed_irq,"),
      check_cpu_param(c, "nohz_full", "the scheduler tick interrupts a running shard", ""),
      check_cpu_param(c, "rcu_nocbs", "RCU callbacks run", ""),
      check_cpufreq(c),
      check_cpuidle(c),
      check_smt(c),
      check_irq_affinity(c),
      check_rt_throttling(c),
      check_thp(c),
      check_swap(c),
      check_numa_balancing(c),
      check_memlock(c),
      check_rtprio(c),
      check_capabilities(c),
      check_io_uring_disabled(c),
      check_io_uring_opcodes(c),
      check_sched_deadline(c),
      check_clocksource(c),
      check_preempt_rt(c),
  };
}

std::vector<DoctorCheck> run_doctor(const DoctorOptions& options) {
  const bool live = fs::path(options.root).lexically_normal() == fs::path("/");
  return run_doctor(options, live ? DoctorHost::live() : DoctorHost::fixture(options.root));
}

std::string doctor_json(const std::vector<DoctorCheck>& checks) {
  using namespace json;
  std::string out = "{";
  append_key(out, "checks");
  out += '[';
  const auto field = [&out](const char* key, std::string_view value, char after) {
    append_key(out, key);
    append_string(out, value);
    out += after;
  };
  for (std::size_t i = 0; i < checks.size(); ++i) {
    out += i == 0 ? "{" : ",{";
    field("id", checks[i].id, ',');
    field("status", to_string(checks[i].status), ',');
    field("found", checks[i].found, ',');
    field("fix", checks[i].fix, '}');
  }
  out += "]}";
  return out;
}

void print_doctor(std::ostream& out, const std::vector<DoctorCheck>& checks) {
  std::size_t width = 0;
  for (const DoctorCheck& c : checks)
    width = std::max(width, c.id.size());
  int counts[3] = {0, 0, 0};
  for (const DoctorCheck& c : checks) {
    ++counts[static_cast<int>(c.status)];
    out << to_string(c.status) << "  " << c.id << std::string(width - c.id.size() + 2, ' ') << c.found
        << '\n';
    if (!c.fix.empty()) out << std::string(width + 8, ' ') << "fix: " << c.fix << '\n';
  }
  out << checks.size() << " checks: " << counts[0] << " pass, " << counts[1] << " warn, " << counts[2]
      << " fail\n";
}

int doctor_exit_code(const std::vector<DoctorCheck>& checks) noexcept {
  for (const DoctorCheck& c : checks)
    if (c.status == DoctorStatus::fail) return 1;
  return 0;
}

}  // namespace moirai::cli
