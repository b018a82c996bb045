// Memory that can move or stall under a running shard: transparent huge pages, swap, NUMA balancing.
#include <sstream>

#include "checks.hpp"

namespace moirai::cli::doctor {
namespace {

// "always [madvise] never" -> "madvise".
std::optional<std::string> bracketed(const std::optional<std::string>& text) {
  if (!text) return std::nullopt;
  const std::size_t open = text->find('['), close = text->find(']');
  if (open == std::string::npos || close == std::string::npos || close < open) return text;
  return text->substr(open + 1, close - open - 1);
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

}  // namespace

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

}  // namespace moirai::cli::doctor
