// `moirai topo`: the NUMA nodes of this host (or of a sysfs tree), their CPUs, memory and distances.
#include <iostream>
#include <memory>

#include "command.hpp"
#include "topo.hpp"

namespace moirai::cli {
namespace {

struct TopoArgs {
  bool json = false;
  std::string sysfs;
};

int run_topo(const TopoArgs& a) {
  const numa::Topology t = a.sysfs.empty() ? numa::Topology::load() : numa::Topology::from_sysfs(a.sysfs);
  if (a.json) {
    std::cout << topo_json(t) << '\n';
  } else {
    print_topo(std::cout, t);
  }
  return 0;
}

}  // namespace

Command add_topo_command(CLI::App& moirai) {
  CLI::App* topo = moirai.add_subcommand("topo", "NUMA nodes, their CPUs, memory and distances; quiet CPUs");
  auto args = std::make_shared<TopoArgs>();
  topo->add_flag("--json", args->json, "Print JSON instead of text");
  topo->add_option("--sysfs", args->sysfs,
                   "Read a topology from a directory laid out like /sys/devices/system instead of this host")
      ->check(CLI::ExistingDirectory);
  return {topo, [args] { return run_topo(*args); }};
}

}  // namespace moirai::cli
