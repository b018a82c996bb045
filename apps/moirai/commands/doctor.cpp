// `moirai doctor`: checks this host (or a tree laid out like it) for low-latency readiness.
#include <iostream>
#include <memory>

#include "command.hpp"
#include "doctor.hpp"

namespace moirai::cli {
namespace {

struct DoctorArgs {
  DoctorOptions options;
  bool json = false;
  std::string cpus;
};

int run_doctor_command(DoctorArgs& a) {
  parse_cpus_if_given(a.cpus, a.options.cpus);
  const std::vector<DoctorCheck> checks = run_doctor(a.options);
  if (a.json) {
    std::cout << doctor_json(checks) << '\n';
  } else {
    print_doctor(std::cout, checks);
  }
  return doctor_exit_code(checks);
}

}  // namespace

Command add_doctor_command(CLI::App& moirai) {
  CLI::App* doctor =
      moirai.add_subcommand("doctor", "Check this host for low-latency readiness; changes nothing");
  auto args = std::make_shared<DoctorArgs>();
  doctor->add_flag("--json", args->json, "Print JSON instead of text");
  doctor->add_option("--cpus", args->cpus, "The CPUs the service will run on (default: this process's)");
  doctor->add_option("--root", args->options.root,
                     "Read proc/ and sys/ under DIR instead of / (fixture trees)");
  return {doctor, [args] { return run_doctor_command(*args); }};
}

}  // namespace moirai::cli
