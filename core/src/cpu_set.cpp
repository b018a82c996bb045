#include "moirai/core/cpu_set.hpp"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>

#include "moirai/base/cpu_list.hpp"
#include "moirai/core/error.hpp"

namespace moirai {
namespace {

static_assert(kMaxCpus == CPU_SETSIZE, "kMaxCpus must describe exactly what a cpu_set_t holds");

constexpr std::string_view kExpectedSyntax =
    "Expected CPU numbers and ranges separated by commas, such as \"0-3,5,8-9\" (as in "
    "/sys/devices/system/cpu/online and taskset -c).";

// Messages are built with a stream rather than chains of std::string operator+, for which g++ 12 at -O2
// reports a false -Wrestrict (a known regression of that release) that -Werror turns into a build failure.
template <typename... Parts>
std::string concat(const Parts&... parts) {
  std::ostringstream out;
  (out << ... << parts);
  return out.str();
}

[[noreturn]] void throw_parse_error(std::string_view text, const std::string& why) {
  std::ostringstream out;
  out << "invalid CPU list \"" << text << "\": " << why << ". " << kExpectedSyntax;
  throw Error(Errc::invalid_cpu_set, out.str());
}

// Why `text` is not a list, in words naming what the user wrote ("8-x", not just "x").
std::string parse_fault(std::string_view text, const cpu_list::Parsed& parsed) {
  using cpu_list::Fault;
  const std::string_view item = parsed.where(text);
  const std::size_t dash = item.find('-', 1);
  switch (parsed.fault) {
    case Fault::empty_item:
      return concat("empty item before the comma at offset ", parsed.offset);
    case Fault::trailing_comma:
      return concat("trailing comma after \"", cpu_list::trim(text.substr(0, parsed.offset)), '"');
    case Fault::negative:
      return concat('"', item, "\" has a negative CPU number");
    case Fault::blank_in_range: {
      std::string bare(item);
      bare.erase(std::remove_if(bare.begin(), bare.end(), cpu_list::is_blank), bare.end());
      return concat('"', item, "\" has blanks inside its range; write it without them (\"", bare, "\")");
    }
    case Fault::too_large:
      return concat('"', item, "\" names a CPU beyond ", kMaxCpus - 1, ", the highest a CPU set can hold");
    case Fault::reversed_range:
      return concat('"', item, "\" is a reversed range; write the lower CPU first (\"", item.substr(dash + 1),
                    '-', item.substr(0, dash), "\")");
    case Fault::not_a_number:
    case Fault::none:
      break;
  }
  return concat('"', item, "\" is not a CPU number or a range of them");
}

std::vector<int> sorted_unique(std::vector<int> cpus) {
  std::sort(cpus.begin(), cpus.end());
  cpus.erase(std::unique(cpus.begin(), cpus.end()), cpus.end());
  return cpus;
}

bool contains(const std::vector<int>& sorted, int cpu) {
  return std::binary_search(sorted.begin(), sorted.end(), cpu);
}

// "CPU 3" or "CPUs 3-5,7": the offending CPUs, in the compact form the user would type.
std::string name_cpus(const std::vector<int>& cpus) {
  return concat(cpus.size() == 1 ? "CPU " : "CPUs ", format_cpu_list(cpus));
}

[[noreturn]] void throw_resolve_error(const std::string& message) {
  throw Error(Errc::invalid_cpu_set, concat("cannot run shards on the requested CPUs: ", message));
}

}  // namespace

std::vector<int> parse_cpu_list(std::string_view text) {
  cpu_list::Parsed parsed = cpu_list::parse(text, kMaxCpus - 1);
  if (!parsed) throw_parse_error(text, parse_fault(text, parsed));
  if (parsed.ids.empty()) throw_parse_error(text, "it is empty, so it names no CPU");
  return std::move(parsed.ids);
}

std::string format_cpu_list(const std::vector<int>& cpus) {
  return cpu_list::format(cpus);
}

CpuFacts CpuFacts::current() {
  CpuFacts facts;
  facts.configured = static_cast<int>(sysconf(_SC_NPROCESSORS_CONF));
  {
    std::ifstream in("/sys/devices/system/cpu/online");
    const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    try {
      facts.online = parse_cpu_list(text);
    } catch (const Error&) {
      // No /sys (some sandboxes hide it): the kernel then gives no way to tell an offline CPU from an online
      // one, so treat every configured CPU as online; pinning still fails, with its own message, on an
      // offline one.
      facts.online.clear();
      for (int cpu = 0; cpu < facts.configured && cpu < kMaxCpus; ++cpu)
        facts.online.push_back(cpu);
    }
  }
  facts.allowed = current_thread_affinity();
  return facts;
}

std::vector<int> resolve_shard_cpus(const std::vector<int>& requested, const CpuFacts& facts) {
  const std::vector<int> online = sorted_unique(facts.online);
  const std::vector<int> allowed = sorted_unique(facts.allowed);
  if (requested.empty()) {
    if (allowed.empty()) {
      throw_resolve_error(
          "no CPU was requested and this thread's affinity mask is empty, which would mean zero shards. Fix: "
          "name the CPUs to run on explicitly, for example \"0-1\".");
    }
    return allowed;
  }

  std::vector<int> out_of_range;
  std::vector<int> offline;
  std::vector<int> outside_mask;
  for (int cpu : requested) {
    if (cpu < 0 || (facts.configured > 0 && cpu >= facts.configured) || cpu >= kMaxCpus) {
      out_of_range.push_back(cpu);
    } else if (!contains(online, cpu)) {
      offline.push_back(cpu);
    } else if (!contains(allowed, cpu)) {
      outside_mask.push_back(cpu);
    }
  }

  if (!out_of_range.empty()) {
    const std::string verb = out_of_range.size() == 1 ? " does" : " do";
    if (facts.configured > 0) {
      const std::string range = concat("0-", facts.configured - 1);
      throw_resolve_error(concat(name_cpus(out_of_range), verb, " not exist: this machine has ",
                                 facts.configured, facts.configured == 1 ? " CPU" : " CPUs", ", numbered ",
                                 range, ". Fix: choose CPUs within ", range, "."));
    }
    throw_resolve_error(concat(name_cpus(out_of_range), verb, " not exist: CPU numbers run from 0 to ",
                               kMaxCpus - 1, ". Fix: choose CPUs within 0-", kMaxCpus - 1, "."));
  }
  if (!offline.empty()) {
    const bool one = offline.size() == 1;
    throw_resolve_error(concat(
        name_cpus(offline), one ? " is" : " are", " offline; the online CPUs are ",
        online.empty() ? "none" : format_cpu_list(online), ". Fix: choose online CPUs, or bring ",
        one ? "it" : "them", " online (echo 1 > /sys/devices/system/cpu/cpu", offline.front(), "/online)."));
  }
  if (!outside_mask.empty()) {
    throw_resolve_error(
        concat(name_cpus(outside_mask), outside_mask.size() == 1 ? " is" : " are",
               " outside this process's CPU affinity mask, which is ",
               allowed.empty() ? "empty" : format_cpu_list(allowed),
               " (as when started under taskset -c, or in a cpuset cgroup such as a container "
               "run with --cpuset-cpus). Fix: choose CPUs within the mask, or start the process "
               "with a mask that includes them."));
  }

  std::vector<int> sorted = requested;
  std::sort(sorted.begin(), sorted.end());
  std::vector<int> duplicates;
  for (std::size_t i = 1; i < sorted.size(); ++i) {
    if (sorted[i] == sorted[i - 1] && (duplicates.empty() || duplicates.back() != sorted[i])) {
      duplicates.push_back(sorted[i]);
    }
  }
  if (!duplicates.empty()) {
    throw_resolve_error(concat(name_cpus(duplicates), duplicates.size() == 1 ? " is" : " are",
                               " requested more than once, which would put two shards on one CPU, each "
                               "stealing the other's time. Fix: list each CPU once."));
  }
  return sorted;
}

void pin_current_thread(int cpu) {
  const auto fail = [cpu](int err, std::string_view hint) {
    throw Error(Errc::setup_failed,
                concat("cannot pin this thread to CPU ", cpu, ": ", std::strerror(err), ". ", hint));
  };
  if (cpu < 0 || cpu >= kMaxCpus) {
    fail(EINVAL, concat("CPU numbers run from 0 to ", kMaxCpus - 1, "."));
  }
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  // pid 0 is the calling thread, not the whole process: sched_setaffinity works on one task. The kernel
  // migrates a running task before returning, so the caller is on `cpu` from here on.
  if (sched_setaffinity(0, sizeof(set), &set) != 0) {
    const int err = errno;
    fail(err, err == EINVAL ? "The CPU does not exist, is offline, or is outside this process's cpuset."
                            : "Check the process's permissions and cpuset.");
  }
}

std::vector<int> current_thread_affinity() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) != 0) {
    const int err = errno;
    // EINVAL here means the kernel supports more CPUs than a cpu_set_t holds.
    throw Error(Errc::setup_failed,
                concat("cannot read this thread's CPU affinity mask: ", std::strerror(err), "."));
  }
  std::vector<int> cpus;
  for (int cpu = 0; cpu < kMaxCpus; ++cpu) {
    if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
  }
  return cpus;
}

void set_current_thread_affinity(const std::vector<int>& cpus) {
  if (cpus.empty()) {
    throw Error(Errc::invalid_cpu_set,
                "cannot set an empty CPU affinity mask: a thread must be allowed one CPU at least.");
  }
  cpu_set_t set;
  CPU_ZERO(&set);
  for (int cpu : cpus) {
    if (cpu < 0 || cpu >= kMaxCpus) {
      throw Error(Errc::invalid_cpu_set, concat("cannot set a CPU affinity mask with CPU ", cpu,
                                                ": CPU numbers run from 0 to ", kMaxCpus - 1, "."));
    }
    CPU_SET(cpu, &set);
  }
  if (sched_setaffinity(0, sizeof(set), &set) != 0) {
    const int err = errno;
    throw Error(
        Errc::setup_failed,
        concat("cannot set this thread's CPU affinity mask to ", format_cpu_list(cpus), ": ",
               std::strerror(err), ". The mask must include an online CPU of this process's cpuset."));
  }
}

}  // namespace moirai
