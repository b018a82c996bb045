// The chosen CPUs kept quiet: isolcpus, nohz_full and rcu_nocbs on the kernel command line, no SMT sibling
// shared, no interrupt delivered to them.
#include <sstream>

#include "checks.hpp"
#include "moirai/core/cpu_set.hpp"

namespace moirai::cli::doctor {
namespace {

// The value of the last `name=` on the command line ("" for a bare `name`); nullopt when it is absent.
std::optional<std::string> cmdline_param(const std::string& cmdline, const std::string& name) {
  std::istringstream words(cmdline);
  std::optional<std::string> value;
  for (std::string w; words >> w;) {
    if (w == name) {
      value = "";
    } else if (w.rfind(name + "=", 0) == 0) {
      value = w.substr(name.size() + 1);
    }
  }
  return value;
}

}  // namespace

// isolcpus, nohz_full and rcu_nocbs: whether the kernel was asked to keep the chosen CPUs quiet.
DoctorCheck check_cpu_param(const Context& c, const char* id, const char* what,
                            const char* fix_value_prefix) {
  const std::string name = id;
  const Cpus targets = c.quiet_targets();
  const std::string fix =
      targets.empty()
          ? std::string("this host has one CPU: nothing can be kept quiet; use a host with more")
          : "add " + name + "=" + fix_value_prefix + format_cpu_list(targets) + kGrub + c.housekeeping_note();
  if (!c.cmdline)
    return make(id, DoctorStatus::warn, "proc/cmdline is missing: the command line is unknown", fix);
  const std::optional<std::string> value = cmdline_param(*c.cmdline, name);
  if (!value) {
    if (name == "rcu_nocbs") {
      // The kernel offloads the RCU callbacks of nohz_full CPUs by itself.
      const std::optional<std::string> nohz = cmdline_param(*c.cmdline, "nohz_full");
      const std::optional<Cpus> nohz_cpus = nohz ? try_parse_cpus(*nohz) : std::nullopt;
      if (nohz_cpus && minus(c.chosen, *nohz_cpus).empty()) {
        return make(id, DoctorStatus::pass,
                    "not on the command line, but implied for CPUs " + cpus_text(c.chosen) +
                        " by nohz_full=" + *nohz);
      }
    }
    return make(id, DoctorStatus::warn,
                name + " is not on the kernel command line: " + what + " on CPUs " + cpus_text(c.chosen),
                fix);
  }
  // isolcpus=[flag,...,]LIST: flags are words, the list starts at the first digit.
  std::string list = *value;
  std::vector<std::string> flags;
  if (name == "isolcpus") {
    while (!list.empty() && std::isalpha(static_cast<unsigned char>(list.front())) != 0) {
      const std::size_t comma = list.find(',');
      flags.push_back(list.substr(0, comma));
      list = comma == std::string::npos ? std::string() : list.substr(comma + 1);
    }
  }
  std::optional<Cpus> cpus = list == "all" ? std::optional<Cpus>(c.online) : try_parse_cpus(list);
  if (!cpus) {
    return make(id, DoctorStatus::fail,
                name + "=" + *value + " cannot be parsed as a CPU list, so the kernel ignored it", fix);
  }
  std::sort(cpus->begin(), cpus->end());
  if (minus(c.online, *cpus).empty() && c.online.size() > 1) {
    return make(id, DoctorStatus::fail,
                name + "=" + *value + " names every online CPU (" + cpus_text(c.online) +
                    "), leaving none for the system's own work",
                fix);
  }
  if (name == "isolcpus" && !flags.empty() &&
      std::find(flags.begin(), flags.end(), "domain") == flags.end()) {
    return make(id, DoctorStatus::warn,
                "isolcpus=" + *value +
                    " has flags without 'domain': the scheduler still balances tasks onto CPUs " +
                    cpus_text(intersect(c.chosen, *cpus)),
                fix);
  }
  const Cpus outside = minus(c.chosen, *cpus);
  if (!outside.empty()) {
    return make(
        id, DoctorStatus::warn,
        name + "=" + *value + " leaves out chosen CPUs " + cpus_text(outside) + ": " + what + " there", fix);
  }
  return make(id, DoctorStatus::pass, name + "=" + *value + " covers the chosen CPUs " + cpus_text(c.chosen));
}

DoctorCheck check_smt(const Context& c) {
  std::vector<std::string> shared_with_chosen, shared_with_others;
  Cpus other_siblings, unknown;
  for (int cpu : c.chosen) {
    const std::optional<std::string> text = c.tree.line(cpu_dir(cpu) + "topology/thread_siblings_list");
    const std::optional<Cpus> siblings = text ? try_parse_cpus(*text) : std::nullopt;
    if (!siblings) {
      unknown.push_back(cpu);
      continue;
    }
    Cpus others;
    for (int s : *siblings)
      if (s != cpu) others.push_back(s);
    std::sort(others.begin(), others.end());
    const Cpus chosen_siblings = intersect(others, c.chosen);
    for (int s : chosen_siblings)
      if (s > cpu) shared_with_chosen.push_back(std::to_string(cpu) + " and " + std::to_string(s));
    const Cpus rest = minus(others, c.chosen);
    if (!rest.empty()) {
      shared_with_others.push_back("CPU " + std::to_string(cpu) + " with " + cpus_text(rest));
      other_siblings.insert(other_siblings.end(), rest.begin(), rest.end());
    }
  }
  std::sort(other_siblings.begin(), other_siblings.end());
  other_siblings.erase(std::unique(other_siblings.begin(), other_siblings.end()), other_siblings.end());
  std::string offline;
  for (int s : other_siblings)
    offline += (offline.empty() ? "" : "; ") + std::string("echo 0 | sudo tee /sys/devices/system/cpu/cpu") +
               std::to_string(s) + "/online";
  const std::string fix_tail = "or add nosmt" + std::string(kGrub);
  if (!shared_with_chosen.empty()) {
    return make("smt", DoctorStatus::fail,
                "chosen CPUs " + join(shared_with_chosen, ", ") +
                    " are SMT siblings of one core: two shards share its execution units and caches",
                "choose one CPU per core with --cpus, " + fix_tail);
  }
  if (!shared_with_others.empty()) {
    return make("smt", DoctorStatus::warn,
                "chosen CPUs share a core: " + join(shared_with_others, ", ") +
                    "; whatever runs on the sibling slows the shard",
                offline + " (keeps the siblings idle until reboot), " + fix_tail);
  }
  if (!unknown.empty()) {
    return make("smt", DoctorStatus::warn, "no topology/thread_siblings_list for CPUs " + cpus_text(unknown),
                "check that sysfs is mounted at /sys");
  }
  return make("smt", DoctorStatus::pass, "no SMT sibling shares a core with CPUs " + cpus_text(c.chosen));
}

DoctorCheck check_irq_affinity(const Context& c) {
  std::vector<std::string> only_chosen, may_land;
  int read = 0;
  for (const std::string& irq : c.tree.list("proc/irq")) {
    if (irq.empty() || std::isdigit(static_cast<unsigned char>(irq.front())) == 0) continue;
    const std::string dir = "proc/irq/" + irq + "/";
    // Where the interrupt is delivered now, when the kernel says; else where it may be.
    std::optional<std::string> text = c.tree.line(dir + "effective_affinity_list");
    if (!text || text->empty()) text = c.tree.line(dir + "smp_affinity_list");
    std::optional<Cpus> cpus = text ? try_parse_cpus(*text) : std::nullopt;
    if (!cpus) continue;
    ++read;
    std::sort(cpus->begin(), cpus->end());
    if (intersect(*cpus, c.chosen).empty()) continue;
    (minus(*cpus, c.chosen).empty() ? only_chosen : may_land).push_back(irq);
  }
  const Cpus rest = minus(c.online, c.chosen);
  const auto named = [](const std::vector<std::string>& irqs) {
    std::vector<std::string> shown(irqs.begin(),
                                   irqs.begin() + static_cast<long>(std::min<std::size_t>(irqs.size(), 8)));
    return join(shown, ",") + (irqs.size() > 8 ? ",..." : "") + " (" + std::to_string(irqs.size()) + ")";
  };
  if (read == 0) {
    return make("irq_affinity", DoctorStatus::warn, "no readable proc/irq/*/smp_affinity_list",
                "run as a user who can read /proc/irq");
  }
  if (only_chosen.empty() && may_land.empty()) {
    return make("irq_affinity", DoctorStatus::pass,
                "none of " + std::to_string(read) + " interrupts lands on CPUs " + cpus_text(c.chosen));
  }
  std::vector<std::string> all = only_chosen;
  all.insert(all.end(), may_land.begin(), may_land.end());
  if (rest.empty()) {
    return make("irq_affinity", DoctorStatus::warn,
                "every online CPU is chosen, so interrupts " + named(all) + " land on shards' CPUs",
                "leave a CPU to the system (run the service on " + cpus_text(c.quiet_targets()) +
                    ") and steer interrupts to it with irqaffinity=" + std::to_string(c.online.front()) +
                    kGrub);
  }
  std::string loop = "for i in";
  for (const std::string& irq : all)
    loop += " " + irq;
  loop += "; do echo " + cpus_text(rest) + " | sudo tee /proc/irq/$i/smp_affinity_list; done";
  const std::string fix = loop + " (and irqaffinity=" + cpus_text(rest) + kGrub +
                          "; stop irqbalance or give it IRQBALANCE_BANNED_CPULIST=" + cpus_text(c.chosen) +
                          "; managed interrupts need isolcpus=managed_irq," + cpus_text(c.chosen) + ")";
  if (!only_chosen.empty()) {
    return make("irq_affinity", DoctorStatus::fail,
                "interrupts " + named(only_chosen) + " land only on chosen CPUs " + cpus_text(c.chosen) +
                    (may_land.empty() ? "" : "; " + named(may_land) + " may land there"),
                fix);
  }
  return make("irq_affinity", DoctorStatus::warn,
              "interrupts " + named(may_land) + " may land on chosen CPUs " + cpus_text(c.chosen), fix);
}

}  // namespace moirai::cli::doctor
