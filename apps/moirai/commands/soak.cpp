// `moirai soak`: sequence-numbered, checksummed messages through each transport, every one checked.
#include <unistd.h>

#include <iostream>
#include <memory>

#include "command.hpp"
#include "soak.hpp"

namespace moirai::cli {
namespace {

struct SoakArgs {
  SoakOptions options;
  std::string transport = "all";
  std::string cpus;
  bool json = false;
};

int run_soak_command(SoakArgs& a) {
  parse_cpus_if_given(a.cpus, a.options.cpus);
  if (a.transport != "all") a.options.transports = {a.transport};
  a.options.progress = isatty(STDERR_FILENO) != 0;
  return soak_main(a.options, std::cout, std::cerr, a.json);
}

}  // namespace

Command add_soak_command(CLI::App& moirai) {
  CLI::App* soak = moirai.add_subcommand(
      "soak",
      "Sequence-numbered, checksummed messages through each transport: none lost, none duplicated, "
      "order kept, memory flat");
  auto args = std::make_shared<SoakArgs>();
  SoakOptions& o = args->options;
  // The last of a repeated option counts: scripts/soak passes its own --messages before the caller's.
  soak->add_option("--transport", args->transport, "channel, mpsc, tcp, udp, unix, ipc or all")
      ->capture_default_str()
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  soak->add_option("--messages", o.messages, "Messages through each transport")
      ->capture_default_str()
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  soak->add_option("--senders", o.senders, "Sender tasks of the mpsc channel")
      ->capture_default_str()
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  soak->add_option("--payload", o.payload, "Bytes per message (at least 24)")
      ->capture_default_str()
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  soak->add_option("--cpus", args->cpus,
                   "CPUs: the receiver on the first, senders on the others (default: all allowed)")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  soak->add_flag("--json", args->json, "Print JSON instead of a table");
  return {soak, [args] { return run_soak_command(*args); }};
}

}  // namespace moirai::cli
