// What every check of `moirai doctor` shares: the files it reads (under the root, the host's "/" or a fixture
// tree), CPU lists and their arithmetic, how a result is made, and each check, grouped by what they look at
// in the file named after it (cpu_isolation.cpp, cpu_power.cpp, scheduler.cpp, memory.cpp, privileges.cpp,
// io_uring.cpp, clocks.cpp).
#pragma once

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <vector>

#include "doctor.hpp"

namespace moirai::cli::doctor {

namespace fs = std::filesystem;
using Cpus = std::vector<int>;

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

// A whole number in C's notation (0x for hex), or nullopt when `text` is not one.
std::optional<long long> parse_integer(const std::string& text);
// The first line of a file under the root as a number; nullopt when it is missing or not one.
std::optional<long long> read_integer(const Tree& tree, const std::string& relative);
// A CPU list ("0-3,8"), or nullopt when it does not parse.
std::optional<Cpus> try_parse_cpus(const std::string& text);
// sys/devices/system/cpu/online under the root; empty when it is missing or does not parse.
Cpus read_online(const Tree& tree);

// Set difference and intersection of sorted CPU lists.
Cpus minus(const Cpus& a, const Cpus& b);
Cpus intersect(const Cpus& a, const Cpus& b);
// "0-3,8", or "none".
std::string cpus_text(const Cpus& cpus);
// "sys/devices/system/cpu/cpuN/".
std::string cpu_dir(int cpu);
// The non-empty parts, `sep` between them.
std::string join(const std::vector<std::string>& parts, const char* sep);

DoctorStatus worse(DoctorStatus a, DoctorStatus b);
// A result; the fix is kept only when the check did not pass.
DoctorCheck make(const char* id, DoctorStatus status, std::string found, std::string fix = {});

// Where a kernel parameter goes, for a fix that names one.
inline constexpr const char* kGrub =
    " on the kernel command line (GRUB_CMDLINE_LINUX in /etc/default/grub, then `sudo update-grub` and "
    "reboot)";

// What every check reads: the tree, the CPUs chosen and online, and what the host's probes found.
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

// cpu_isolation.cpp: isolcpus, nohz_full and rcu_nocbs (`id`), SMT siblings, interrupt affinity.
DoctorCheck check_cpu_param(const Context& c, const char* id, const char* what, const char* fix_value_prefix);
DoctorCheck check_smt(const Context& c);
DoctorCheck check_irq_affinity(const Context& c);
// cpu_power.cpp: frequency scaling and boost, idle states.
DoctorCheck check_cpufreq(const Context& c);
DoctorCheck check_cpuidle(const Context& c);
// scheduler.cpp: RT throttling, a SCHED_DEADLINE trial, a PREEMPT_RT kernel.
DoctorCheck check_rt_throttling(const Context& c);
DoctorCheck check_sched_deadline(const Context& c);
DoctorCheck check_preempt_rt(const Context& c);
// memory.cpp: transparent huge pages, swap, NUMA balancing.
DoctorCheck check_thp(const Context& c);
DoctorCheck check_swap(const Context& c);
DoctorCheck check_numa_balancing(const Context& c);
// privileges.cpp: RLIMIT_MEMLOCK, RLIMIT_RTPRIO, capabilities.
DoctorCheck check_memlock(const Context& c);
DoctorCheck check_rtprio(const Context& c);
DoctorCheck check_capabilities(const Context& c);
// io_uring.cpp: whether io_uring is allowed, and the opcodes Moirai submits.
DoctorCheck check_io_uring_disabled(const Context& c);
DoctorCheck check_io_uring_opcodes(const Context& c);
// clocks.cpp: the clock source clock_gettime reads.
DoctorCheck check_clocksource(const Context& c);

}  // namespace moirai::cli::doctor
