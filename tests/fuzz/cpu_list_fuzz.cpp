// The CPU list parsers against each other. Moirai has three, each where its module needs one (numa, rt and
// core may not share code: numa and rt stand alone, and core's adds messages for people):
// - moirai::parse_cpu_list (core): what a person types (--cpus); tolerates blanks around items and around
//   '-', refuses empty text, CPUs >= kMaxCpus; throws Error(invalid_cpu_set).
// - moirai::numa::parse_cpu_list: sysfs and kernel command lines; blank text is the empty list; ids up to
//   8191 (the kernel's largest NR_CPUS); std::nullopt when malformed.
// - moirai::rt::detail::parse_cpu_list: cgroup cpuset files, into a cpu_set_t; empty text is the empty set.
// On the kernel's own syntax (no blanks, a non-empty list of CPUs below kMaxCpus) all three must accept the
// same texts and agree on the CPUs; and the printed form of a list must parse back to it.
#include <sched.h>

#include <algorithm>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "../../rt/src/sysfs.hpp"
#include "fuzz_check.hpp"
#include "moirai/core/cpu_set.hpp"
#include "moirai/core/error.hpp"
#include "moirai/numa/cpu_list.hpp"

namespace {

std::optional<std::vector<int>> core_parse(std::string_view text) {
  try {
    return moirai::parse_cpu_list(text);
  } catch (const moirai::Error& e) {
    MOIRAI_FUZZ_CHECK(e.code() == moirai::make_error_code(moirai::Errc::invalid_cpu_set));
    return std::nullopt;
  }
}

std::optional<std::vector<int>> rt_parse(std::string_view text) {
  cpu_set_t set;
  if (!moirai::rt::detail::parse_cpu_list(std::string(text), set)) return std::nullopt;
  std::vector<int> cpus;
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &set)) cpus.push_back(c);
  return cpus;
}

bool is_blank(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

bool well_formed(const std::vector<int>& cpus, int limit) {
  return std::is_sorted(cpus.begin(), cpus.end()) &&
         std::adjacent_find(cpus.begin(), cpus.end()) == cpus.end() &&
         (cpus.empty() || (cpus.front() >= 0 && cpus.back() < limit));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // Longer texts add nothing but time: each item may be a range of 8192 ids in the numa parser.
  if (size > 512) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const std::optional<std::vector<int>> core = core_parse(text);
  const std::optional<std::vector<int>> numa = moirai::numa::parse_cpu_list(text);
  const std::optional<std::vector<int>> rt = rt_parse(text);

  if (core) {
    MOIRAI_FUZZ_CHECK(!core->empty() && well_formed(*core, moirai::kMaxCpus));
    // The printed form parses back, in each parser, and both modules print it alike.
    const std::string printed = moirai::format_cpu_list(*core);
    MOIRAI_FUZZ_CHECK(printed == moirai::numa::format_cpu_list(*core));
    MOIRAI_FUZZ_CHECK(core_parse(printed) == core);
    MOIRAI_FUZZ_CHECK(moirai::numa::parse_cpu_list(printed) == core);
    MOIRAI_FUZZ_CHECK(rt_parse(printed) == core);
    cpu_set_t set;
    CPU_ZERO(&set);
    for (int c : *core)
      CPU_SET(c, &set);
    MOIRAI_FUZZ_CHECK(moirai::rt::detail::format_cpu_list(set) == printed);
    // Without the blanks core tolerates, the text is the kernel's syntax, which the others accept alike.
    std::string bare(text);
    bare.erase(std::remove_if(bare.begin(), bare.end(), is_blank), bare.end());
    MOIRAI_FUZZ_CHECK(moirai::numa::parse_cpu_list(bare) == core);
    MOIRAI_FUZZ_CHECK(rt_parse(bare) == core);
  }
  if (numa) {
    MOIRAI_FUZZ_CHECK(well_formed(*numa, 8192));
    // Whatever numa accepts is a list core takes too, unless it is empty or names CPUs core cannot hold.
    if (!numa->empty() && numa->back() < moirai::kMaxCpus) MOIRAI_FUZZ_CHECK(core == numa);
  }
  if (rt) {
    MOIRAI_FUZZ_CHECK(well_formed(*rt, CPU_SETSIZE));
    // rt reads cpuset files exactly as the kernel writes them: what it accepts, core accepts alike.
    if (!rt->empty()) MOIRAI_FUZZ_CHECK(core == rt);
    if (!text.empty()) MOIRAI_FUZZ_CHECK(numa == rt);
  }
  return 0;
}
