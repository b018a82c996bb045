// The /proc and /sys readers on arbitrary file contents: numa::Topology::from_sysfs and the doctor's checks
// (`moirai doctor --root`), both of which read a tree laid out like the host's. Each input becomes such a
// tree in a scratch folder (on /dev/shm where there is one): pieces separated by NUL bytes, each a key
// letter naming one file of kFiles and that file's contents; a file no piece names is absent.
//
// Bad contents must give the documented errors (NumaError from the topology, Error(invalid_argument or
// invalid_cpu_set) from the doctor) or checks that say what they found; anything else escaping, or a crash,
// is a bug. The doctor's JSON must read back with the CLI's own JSON reader, one check per id.
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>

#include "doctor.hpp"
#include "fuzz_check.hpp"
#include "json_reader.hpp"
#include "moirai/core/error.hpp"
#include "moirai/numa/error.hpp"
#include "moirai/numa/topology.hpp"
#include "topo.hpp"

namespace {

namespace fs = std::filesystem;

struct File {
  char key;
  const char* path;
};
constexpr File kFiles[] = {
    {'a', "proc/cmdline"},
    {'b', "proc/self/status"},
    {'c', "proc/self/limits"},
    {'d', "proc/meminfo"},
    {'e', "proc/swaps"},
    {'f', "proc/sys/kernel/sched_rt_runtime_us"},
    {'g', "proc/sys/kernel/sched_rt_period_us"},
    {'h', "proc/sys/kernel/io_uring_disabled"},
    {'i', "proc/sys/kernel/io_uring_group"},
    {'j', "proc/sys/kernel/numa_balancing"},
    {'k', "proc/version"},
    {'l', "proc/irq/0/smp_affinity_list"},
    {'m', "proc/irq/1/effective_affinity_list"},
    {'n', "sys/devices/system/cpu/online"},
    {'o', "sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"},
    {'p', "sys/devices/system/cpu/cpu0/cpufreq/scaling_driver"},
    {'q', "sys/devices/system/cpu/cpu0/topology/thread_siblings_list"},
    {'r', "sys/devices/system/cpu/cpu0/cpuidle/state0/latency"},
    {'s', "sys/devices/system/cpu/cpufreq/boost"},
    {'t', "sys/kernel/mm/transparent_hugepage/enabled"},
    {'u', "sys/devices/system/clocksource/clocksource0/current_clocksource"},
    {'v', "sys/kernel/realtime"},
    {'w', "dev/cpu_dma_latency"},
    {'x', "sys/devices/system/node/online"},
    {'y', "sys/devices/system/node/node0/cpulist"},
    {'z', "sys/devices/system/node/node0/distance"},
    {'A', "sys/devices/system/node/node0/meminfo"},
    {'B', "sys/devices/system/node/node1/cpulist"},
    {'C', "sys/devices/system/node/node1/distance"},
    {'D', "sys/devices/system/cpu/isolated"},
    {'E', "sys/devices/system/cpu/nohz_full"},
    {'F', "sys/devices/system/cpu/cpu1/topology/thread_siblings_list"},
    {'G', "sys/devices/system/cpu/cpu0/topology/core_id"},
    {'H', "sys/devices/system/clocksource/clocksource0/available_clocksource"},
    {'I', "sys/kernel/mm/transparent_hugepage/defrag"},
    {'J', "sys/devices/system/cpu/cpu1/cpufreq/scaling_governor"},
    {'K', "sys/devices/system/cpu/cpu0/cpuidle/state0/name"},
    {'L', "sys/devices/system/node/node1/meminfo"},
    {'M', "sys/devices/system/cpu/cpu1/topology/physical_package_id"},
};

// The scratch tree, made once per process and removed at its exit.
struct Scratch {
  fs::path root;
  Scratch() {
    std::error_code ec;
    const fs::path base = fs::is_directory("/dev/shm", ec) ? fs::path("/dev/shm") : fs::temp_directory_path();
    root = base / ("moirai-sysfs-fuzz-" + std::to_string(::getpid()));
  }
  ~Scratch() {
    std::error_code ec;
    fs::remove_all(root, ec);
  }
};

void write_tree(const fs::path& root, std::string_view input) {
  std::error_code ec;
  fs::remove_all(root, ec);
  fs::create_directories(root / "proc", ec);
  fs::create_directories(root / "sys", ec);
  while (!input.empty()) {
    const std::size_t nul = input.find('\0');
    const std::string_view piece = input.substr(0, nul);
    input = nul == std::string_view::npos ? std::string_view() : input.substr(nul + 1);
    if (piece.empty()) continue;
    for (const File& f : kFiles) {
      if (f.key != piece.front()) continue;
      const fs::path path = root / f.path;
      fs::create_directories(path.parent_path(), ec);
      std::ofstream(path, std::ios::binary) << piece.substr(1);
    }
  }
}

void topology(const fs::path& root) {
  try {
    const moirai::numa::Topology t = moirai::numa::Topology::from_sysfs(root / "sys/devices/system");
    MOIRAI_FUZZ_CHECK(!t.nodes().empty());
    for (const moirai::numa::NodeInfo& n : t.nodes())
      for (int cpu : n.cpus)
        MOIRAI_FUZZ_CHECK(t.node_of_cpu(cpu) == n.id);
    (void)t.describe();
    (void)moirai::cli::json::parse_json(moirai::cli::topo_json(t));
    (void)t.nodes_by_distance(t.nodes().front().id);
  } catch (const moirai::numa::NumaError&) {
  }
}

void doctor(const fs::path& root) {
  using namespace moirai::cli;
  DoctorOptions options;
  options.root = root.string();
  std::vector<DoctorCheck> checks;
  try {
    checks = run_doctor(options, DoctorHost::fixture(options.root));
  } catch (const moirai::Error& e) {
    MOIRAI_FUZZ_CHECK(e.code() == moirai::Errc::invalid_argument ||
                      e.code() == moirai::Errc::invalid_cpu_set);
    return;
  }
  MOIRAI_FUZZ_CHECK(checks.size() == std::size(kDoctorCheckIds));
  for (std::size_t i = 0; i < checks.size(); ++i) {
    MOIRAI_FUZZ_CHECK(checks[i].id == kDoctorCheckIds[i]);
    if (checks[i].status == DoctorStatus::pass) MOIRAI_FUZZ_CHECK(checks[i].fix.empty());
  }
  const json::Json doc = json::parse_json(doctor_json(checks));
  MOIRAI_FUZZ_CHECK(doc.is_object() && doc.object().at("checks").array().size() == checks.size());
  std::ostringstream text;
  print_doctor(text, checks);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static Scratch scratch;
  write_tree(scratch.root, std::string_view(reinterpret_cast<const char*>(data), size));
  topology(scratch.root);
  doctor(scratch.root);
  return 0;
}
