#include "doctor.hpp"

#include <liburing.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
#include <thread>

#include "json_writer.hpp"
#include "moirai/core/cpu_set.hpp"
#include "moirai/core/error.hpp"
#include "moirai/core/runtime_options.hpp"
#include "moirai/io/ring.hpp"
#include "moirai/rt/capabilities.hpp"
#include "moirai/rt/thread_policy.hpp"

namespace moirai::cli {
namespace {

namespace fs = std::filesystem;
using Cpus = std::vector<int>;

// IORING_OP_FUTEX_WAIT (Linux 6.7): older uapi headers lack the name (see transport/src/ipc.cpp).
constexpr int kOpFutexWait = 51;
// An idle state whose exit takes longer than this is "deep": a sleeping shard wakes that much later.
constexpr long kShallowIdleUs = 10;
// Deeper than this and a wake-up costs more than a whole microsecond-service budget many times over.
constexpr long kDeepIdleFailUs = 100;
// The kernel's historical RLIMIT_MEMLOCK default: below it rings (before 5.12) and buffers cannot be pinned.
constexpr std::uint64_t kMemlockFloor = 64 * 1024;
// Capability bits in /proc/<pid>/status CapEff (include/uapi/linux/capability.h).
constexpr int kCapNetAdmin = 12;
constexpr int kCapIpcLock = 14;
constexpr int kCapSysNice = 23;

// Files under the root: the host's "/" or a fixture tree laid out like it.
class Tree {
 public:
  explicit Tree(std::string root) : root_(std::move(root)) {}

  fs::path path(const std::string& relative) const { return fs::path(root_) / relative; }

  // The whole file, or nullopt when it is missing or unreadable.
  std::optional<std::string> read(const std::string& relative) const {
    std::ifstream in(path(relative), std::ios::binary);
    if (!in) return std::nullopt;
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad()) return std::nullopt;
    return text;
  }

  // The first line, trimmed.
  std::optional<std::string> line(const std::string& relative) const {
    std::optional<std::string> text = read(relative);
    if (!text) return std::nullopt;
    const std::size_t end = text->find('\n');
    return trim(text->substr(0, end));
  }

  bool exists(const std::string& relative) const {
    std::error_code ec;
    return fs::exists(path(relative), ec);
  }

  // Names of the entries of a directory, sorted; empty when it is missing.
  std::vector<std::string> list(const std::string& relative) const {
    std::vector<std::string> names;
    std::error_code ec;
    for (fs::directory_iterator it(path(relative), ec), end; !ec && it != end; it.increment(ec))
      names.push_back(it->path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }

  static std::string trim(std::string s) {
    const auto not_space = [](unsigned char c) { return std::isspace(c) == 0; };
    s.erase(s.begin(), std::find_if(s.begin(), s.end(), not_space));
    s.erase(std::find_if(s.rbegin(), s.rend(), not_space).base(), s.end());
    return s;
  }

 private:
  std::string root_;
};

std::optional<long long> parse_integer(const std::string& text) {
  try {
    std::size_t used = 0;
    const long long v = std::stoll(text, &used, 0);
    if (used != text.size()) return std::nullopt;
    return v;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::optional<long long> read_integer(const Tree& tree, const std::string& relative) {
  std::optional<std::string> text = tree.line(relative);
  return text ? parse_integer(*text) : std::nullopt;
}

std::optional<Cpus> try_parse_cpus(const std::string& text) {
  try {
    return parse_cpu_list(text);
  } catch (const Error&) {
    return std::nullopt;
  }
}

Cpus minus(const Cpus& a, const Cpus& b) {
  Cpus out;
  std::set_difference(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(out));
  return out;
}

Cpus intersect(const Cpus& a, const Cpus& b) {
  Cpus out;
  std::set_intersection(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(out));
  return out;
}

std::string cpus_text(const Cpus& cpus) {
  return cpus.empty() ? std::string("none") : format_cpu_list(cpus);
}

std::string cpu_dir(int cpu) {
  return "sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/";
}

std::string join(const std::vector<std::string>& parts, const char* sep) {
  std::string out;
  for (const std::string& p : parts) {
    if (p.empty()) continue;
    if (!out.empty()) out += sep;
    out += p;
  }
  return out;
}

DoctorStatus worse(DoctorStatus a, DoctorStatus b) {
  return static_cast<int>(a) > static_cast<int>(b) ? a : b;
}

DoctorCheck make(const char* id, DoctorStatus status, std::string found, std::string fix = {}) {
  return DoctorCheck{id, status, std::move(found),
                     status == DoctorStatus::pass ? std::string() : std::move(fix)};
}

constexpr const char* kGrub =
    " on the kernel command line (GRUB_CMDLINE_LINUX in /etc/default/grub, then `sudo update-grub` and "
    "reboot)";

struct Context {
  Tree tree;
  Cpus chosen;  // sorted
  Cpus online;  // sorted; never empty
  const DoctorHost& host;
  std::optional<rt::Capabilities> caps;
  std::optional<std::string> cmdline;

  // The CPUs to quiet: the chosen ones, less one for the system when they are all of them.
  Cpus quiet_targets() const {
    if (minus(online, chosen).empty()) return Cpus(online.begin() + 1, online.end());
    return chosen;
  }
  // "leave CPU 0 to the system" when the chosen CPUs are all the online ones.
  std::string housekeeping_note() const {
    if (!minus(online, chosen).empty()) return {};
    return " (every online CPU is chosen: this leaves CPU " + std::to_string(online.front()) +
           " to the system; run the service on " + cpus_text(quiet_targets()) + ")";
  }
};

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

// "always [madvise] never" -> "madvise".
std::optional<std::string> bracketed(const std::optional<std::string>& text) {
  if (!text) return std::nullopt;
  const std::size_t open = text->find('['), close = text->find(']');
  if (open == std::string::npos || close == std::string::npos || close < open) return text;
  return text->substr(open + 1, close - open - 1);
}

DoctorCheck check_thp(const Context& c) {
  const std::string dir = "sys/kernel/mm/transparent_hugepage/";
  const std::optional<std::string> enabled = bracketed(c.tree.line(dir + "enabled"));
  const std::optional<std::string> defrag = bracketed(c.tree.line(dir + "defrag"));
  if (!enabled) return make("thp", DoctorStatus::pass, "no transparent huge pages in this kernel");
  const std::string found =
      "transparent_hugepage/enabled = " + *enabled + (defrag ? ", defrag = " + *defrag : std::string());
  const std::string fix =
      "echo madvise | sudo tee /sys/kernel/mm/transparent_hugepage/enabled (or "
      "transparent_hugepage=madvise" +
      std::string(kGrub) + ")";
  if (*enabled == "always" && defrag && *defrag == "always") {
    return make("thp", DoctorStatus::fail,
                found + ": any page fault, a shard's included, may stall in direct compaction",
                fix + "; echo defer+madvise | sudo tee /sys/kernel/mm/transparent_hugepage/defrag");
  }
  if (*enabled == "always") {
    return make("thp", DoctorStatus::warn,
                found + ": khugepaged collapses pages under running threads, and compaction stalls follow",
                fix);
  }
  if (*enabled == "never") {
    return make("thp", DoctorStatus::pass,
                found + " (shard pools use 4 KiB pages unless huge_pages reserves hugetlb pages)");
  }
  return make("thp", DoctorStatus::pass, found + ": huge pages only where asked for (Moirai's pools ask)");
}

std::optional<long long> meminfo_kib(const std::optional<std::string>& meminfo, const std::string& key) {
  if (!meminfo) return std::nullopt;
  std::istringstream lines(*meminfo);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind(key + ":", 0) != 0) continue;
    std::istringstream fields(line.substr(key.size() + 1));
    long long v = 0;
    if (fields >> v) return v;
  }
  return std::nullopt;
}

DoctorCheck check_swap(const Context& c) {
  const std::optional<std::string> swaps = c.tree.read("proc/swaps");
  if (!swaps)
    return make("swap", DoctorStatus::warn, "proc/swaps is missing: swap is unknown", "check /proc");
  std::istringstream lines(*swaps);
  std::vector<std::string> devices;
  std::string line;
  std::getline(lines, line);  // the header
  while (std::getline(lines, line)) {
    std::istringstream fields(line);
    std::string device;
    if (fields >> device) devices.push_back(device);
  }
  if (devices.empty()) return make("swap", DoctorStatus::pass, "no swap");
  const std::string fix =
      "sudo swapoff -a (and remove swap from /etc/fstab), or lock the service's memory "
      "(RuntimeOptions::lock_memory, RLIMIT_MEMLOCK to match)";
  const std::optional<std::string> meminfo = c.tree.read("proc/meminfo");
  const std::optional<long long> total = meminfo_kib(meminfo, "SwapTotal"),
                                 free = meminfo_kib(meminfo, "SwapFree");
  const std::string on = "swap on " + join(devices, ", ");
  if (total && free && *total > *free) {
    return make("swap", DoctorStatus::fail,
                on + ", " + std::to_string(*total - *free) +
                    " kB swapped out now: memory is short, and an unlocked shard page may be next",
                fix);
  }
  return make("swap", DoctorStatus::warn, on + ": an unlocked page of a shard can be swapped out", fix);
}

DoctorCheck check_numa_balancing(const Context& c) {
  const std::optional<long long> v = read_integer(c.tree, "proc/sys/kernel/numa_balancing");
  if (!v) return make("numa_balancing", DoctorStatus::pass, "no kernel.numa_balancing (a kernel without it)");
  const std::string value = "kernel.numa_balancing = " + std::to_string(*v);
  const std::string fix = "sudo sysctl -w kernel.numa_balancing=0 (and in /etc/sysctl.d/ to keep it)";
  if (*v == 0) return make("numa_balancing", DoctorStatus::pass, value);
  if ((*v & 2) != 0) {
    return make("numa_balancing", DoctorStatus::fail,
                value + ": memory tiering moves pages between fast and slow memory under running shards",
                fix);
  }
  return make("numa_balancing", DoctorStatus::warn,
              value +
                  ": the kernel unmaps pages to sample their use, so threads take hinting faults and "
                  "pages migrate under them",
              fix);
}

std::string limit_text(std::uint64_t v) {
  return v == rt::Capabilities::kUnlimited ? std::string("unlimited") : std::to_string(v);
}

DoctorCheck no_caps(const char* id, const Context& c) {
  return make(id, DoctorStatus::warn,
              c.host.capabilities ? "proc/self/status or proc/self/limits is missing: limits unknown"
                                  : "not checked here",
              "run `moirai doctor` as the service's user");
}

DoctorCheck check_memlock(const Context& c) {
  if (!c.caps) return no_caps("memlock", c);
  const RuntimeOptions defaults;
  const std::uint64_t needed =
      c.chosen.size() * (defaults.memory_per_shard + defaults.io_buffer_count * defaults.io_buffer_size);
  const std::string found = "RLIMIT_MEMLOCK " + limit_text(c.caps->memlock_limit) + " bytes";
  if (c.caps->ipc_lock) return make("memlock", DoctorStatus::pass, found + ", and CAP_IPC_LOCK lifts it");
  if (c.caps->memlock_limit >= needed) {
    return make("memlock", DoctorStatus::pass,
                found + ", enough for " + std::to_string(c.chosen.size()) + " shards' default memory (" +
                    std::to_string(needed) + " bytes)");
  }
  const std::string fix =
      "ulimit -l unlimited (LimitMEMLOCK=infinity in a systemd unit; '<user> - memlock "
      "unlimited' in /etc/security/limits.conf), or sudo setcap cap_ipc_lock+ep <binary>";
  if (c.caps->memlock_limit < kMemlockFloor) {
    return make("memlock", DoctorStatus::fail,
                found + ", under 64 KiB: rings (before Linux 5.12) and registered buffers cannot be pinned",
                fix);
  }
  return make("memlock", DoctorStatus::warn,
              found + ", less than " + std::to_string(c.chosen.size()) + " shards' default memory (" +
                  std::to_string(needed) + " bytes): lock_memory runs unlocked",
              fix);
}

// Never fails: without a real-time priority a shard runs on under SCHED_OTHER and says so once.
DoctorCheck check_rtprio(const Context& c) {
  if (!c.caps) return no_caps("rtprio", c);
  const std::string found = "RLIMIT_RTPRIO " + limit_text(c.caps->rtprio_limit);
  if (c.caps->sys_nice) return make("rtprio", DoctorStatus::pass, found + ", and CAP_SYS_NICE lifts it");
  const std::string fix =
      "ulimit -r 99 (LimitRTPRIO=99 in a systemd unit; '<user> - rtprio 99' in "
      "/etc/security/limits.conf), or sudo setcap cap_sys_nice+ep <binary>";
  if (c.caps->rtprio_limit >= 99) {
    return make("rtprio", DoctorStatus::pass, found + ": SCHED_FIFO and SCHED_RR at any priority");
  }
  if (c.caps->rtprio_limit == 0) {
    return make("rtprio", DoctorStatus::warn,
                found + " and no CAP_SYS_NICE: fifo and rr policies are refused, shards run SCHED_OTHER",
                fix);
  }
  return make(
      "rtprio", DoctorStatus::warn,
      found + " and no CAP_SYS_NICE: priorities above " + limit_text(c.caps->rtprio_limit) + " are refused",
      fix);
}

// Never fails: the runtime runs on without each capability and says what it could not do.
DoctorCheck check_capabilities(const Context& c) {
  if (!c.caps) return no_caps("capabilities", c);
  std::vector<std::string> missing, names;
  if (!c.caps->sys_nice) {
    missing.push_back("CAP_SYS_NICE (real-time and deadline policies: shards run SCHED_OTHER)");
    names.push_back("cap_sys_nice");
  }
  if (!c.caps->ipc_lock) {
    missing.push_back("CAP_IPC_LOCK (locking more than RLIMIT_MEMLOCK)");
    names.push_back("cap_ipc_lock");
  }
  if (!c.caps->net_admin) {
    missing.push_back("CAP_NET_ADMIN (socket priorities above 6, busy-poll settings per socket)");
    names.push_back("cap_net_admin");
  }
  if (missing.empty()) {
    return make("capabilities", DoctorStatus::pass,
                "CAP_SYS_NICE, CAP_IPC_LOCK and CAP_NET_ADMIN are effective");
  }
  return make("capabilities", DoctorStatus::warn, "missing " + join(missing, ", "),
              "sudo setcap " + join(names, ",") + "+ep <binary> (AmbientCapabilities= in a systemd unit)");
}

// Whether the process whose status is at proc/self/status is in group `gid` (effective or supplementary).
bool in_group(const Tree& tree, long long gid) {
  const std::optional<std::string> status = tree.read("proc/self/status");
  if (!status) return false;
  std::istringstream lines(*status);
  for (std::string line; std::getline(lines, line);) {
    const bool gid_line = line.rfind("Gid:", 0) == 0, groups_line = line.rfind("Groups:", 0) == 0;
    if (!gid_line && !groups_line) continue;
    std::istringstream fields(line.substr(line.find(':') + 1));
    long long g = 0;
    for (int i = 0; fields >> g; ++i) {
      if (g == gid && (groups_line || i == 1)) return true;  // Gid: real, effective, saved, fs
    }
  }
  return false;
}

DoctorCheck check_io_uring_disabled(const Context& c) {
  const std::optional<long long> v = read_integer(c.tree, "proc/sys/kernel/io_uring_disabled");
  if (!v) {
    return make("io_uring_disabled", DoctorStatus::pass,
                "no kernel.io_uring_disabled (a kernel before 6.6: io_uring is open to every process)");
  }
  const std::string value = "kernel.io_uring_disabled = " + std::to_string(*v);
  const std::string fix = "sudo sysctl -w kernel.io_uring_disabled=0 (and in /etc/sysctl.d/ to keep it)";
  if (*v == 0) return make("io_uring_disabled", DoctorStatus::pass, value);
  if (*v == 1) {
    const long long gid = read_integer(c.tree, "proc/sys/kernel/io_uring_group").value_or(-1);
    const std::string group = "kernel.io_uring_group = " + std::to_string(gid);
    if (gid >= 0 && in_group(c.tree, gid)) {
      return make("io_uring_disabled", DoctorStatus::warn,
                  value + ": io_uring only for CAP_SYS_ADMIN and " + group +
                      ", which this process is in; a service under another user is refused",
                  fix + ", or add the service's user to group " + std::to_string(gid));
    }
    return make(
        "io_uring_disabled", DoctorStatus::fail,
        value + ": io_uring only for CAP_SYS_ADMIN and " + group +
            ", which this process is not in: Moirai cannot set up a ring unless it runs as root",
        fix + (gid >= 0 ? ", or add the service's user to group " + std::to_string(gid) : std::string()));
  }
  return make("io_uring_disabled", DoctorStatus::fail, value + ": io_uring is refused to every process", fix);
}

DoctorCheck check_io_uring_opcodes(const Context& c) {
  if (!c.host.io_uring_probe) {
    return make("io_uring_opcodes", DoctorStatus::warn,
                "not probed: the opcode probe asks this host's kernel, and --root points at another tree",
                "run `moirai doctor` on the host itself");
  }
  const std::optional<std::bitset<256>> ops = c.host.io_uring_probe();
  if (!ops) {
    return make(
        "io_uring_opcodes", DoctorStatus::fail,
        "io_uring cannot be used here: the opcode probe failed (no io_uring in this kernel, "
        "kernel.io_uring_disabled, or a seccomp filter)",
        "run on Linux 6.1 or newer with io_uring allowed (see io_uring_disabled; in a container, allow "
        "io_uring_setup, io_uring_enter and io_uring_register in its seccomp profile)");
  }
  std::vector<std::string> required, optional;
  for (const IoUringOpcode& op : moirai_io_uring_opcodes()) {
    if (ops->test(static_cast<std::size_t>(op.opcode))) continue;
    if (op.fallback == nullptr) {
      required.push_back(op.name);
    } else {
      optional.push_back(std::string(op.name) + " (without it " + op.fallback + ")");
    }
  }
  const std::string fix = "run on Linux 6.7 or newer, where every opcode Moirai uses exists";
  if (!required.empty()) {
    return make("io_uring_opcodes", DoctorStatus::fail,
                "the kernel lacks " + join(required, ", ") + ", which Moirai needs" +
                    (optional.empty() ? "" : "; and " + join(optional, "; ")),
                fix);
  }
  if (!optional.empty())
    return make("io_uring_opcodes", DoctorStatus::warn, "the kernel lacks " + join(optional, "; "), fix);
  return make(
      "io_uring_opcodes", DoctorStatus::pass,
      "all " + std::to_string(moirai_io_uring_opcodes().size()) + " opcodes Moirai submits are supported");
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

DoctorCheck check_clocksource(const Context& c) {
  const std::string dir = "sys/devices/system/clocksource/clocksource0/";
  const std::optional<std::string> current = c.tree.line(dir + "current_clocksource");
  if (!current) {
    return make("clocksource", DoctorStatus::warn, "no current_clocksource: the clock source is unknown",
                "check that sysfs is mounted at /sys");
  }
  const std::string available = c.tree.line(dir + "available_clocksource").value_or("");
  const std::string found =
      "clocksource " + *current + (available.empty() ? "" : " (available: " + available + ")");
  if (*current == "tsc" || *current == "arch_sys_counter") {
    return make("clocksource", DoctorStatus::pass, found + ": clock_gettime reads it in user space");
  }
  const bool tsc = (" " + available + " ").find(" tsc ") != std::string::npos;
  const std::string fix =
      tsc ? "echo tsc | sudo tee /sys/devices/system/clocksource/clocksource0/current_clocksource "
            "(and clocksource=tsc" +
                std::string(kGrub) + ")"
          : "add clocksource=tsc tsc=reliable" + std::string(kGrub) +
                ", if the CPU's TSC is invariant (constant_tsc nonstop_tsc in /proc/cpuinfo)";
  if (*current == "hpet" || *current == "acpi_pm" || current->find("jiffies") != std::string::npos) {
    return make("clocksource", DoctorStatus::fail,
                found + ": every clock_gettime is a system call reading slow hardware, a microsecond or more",
                fix);
  }
  return make("clocksource", DoctorStatus::warn,
              found + ": readable from user space, but it follows the hypervisor's clock, not the CPU's",
              fix);
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

Cpus read_online(const Tree& tree) {
  const std::optional<std::string> text = tree.line("sys/devices/system/cpu/online");
  std::optional<Cpus> cpus = text ? try_parse_cpus(*text) : std::nullopt;
  return cpus.value_or(Cpus{});
}

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

const std::vector<IoUringOpcode>& moirai_io_uring_opcodes() {
  static const std::vector<IoUringOpcode> ops = {
      {IORING_OP_NOP, "IORING_OP_NOP", nullptr},
      {IORING_OP_READ, "IORING_OP_READ", nullptr},
      {IORING_OP_WRITE, "IORING_OP_WRITE", nullptr},
      {IORING_OP_SEND, "IORING_OP_SEND", nullptr},
      {IORING_OP_RECV, "IORING_OP_RECV", nullptr},
      {IORING_OP_SENDMSG, "IORING_OP_SENDMSG", nullptr},
      {IORING_OP_RECVMSG, "IORING_OP_RECVMSG", nullptr},
      {IORING_OP_ACCEPT, "IORING_OP_ACCEPT", nullptr},
      {IORING_OP_CONNECT, "IORING_OP_CONNECT", nullptr},
      {IORING_OP_CLOSE, "IORING_OP_CLOSE", nullptr},
      {IORING_OP_SHUTDOWN, "IORING_OP_SHUTDOWN", nullptr},
      {IORING_OP_LINK_TIMEOUT, "IORING_OP_LINK_TIMEOUT", nullptr},
      {IORING_OP_ASYNC_CANCEL, "IORING_OP_ASYNC_CANCEL", nullptr},
      {IORING_OP_MSG_RING, "IORING_OP_MSG_RING",
       "a sleeping shard is woken through an eventfd, a write per wake"},
      {IORING_OP_POLL_ADD, "IORING_OP_POLL_ADD",
       "an IPC peer's exit is checked with kill(pid, 0) each millisecond instead of a pidfd poll"},
      {kOpFutexWait, "IORING_OP_FUTEX_WAIT",
       "a sleeping IPC reader wakes every 100 us to look instead of waiting on a futex"},
  };
  return ops;
}

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
