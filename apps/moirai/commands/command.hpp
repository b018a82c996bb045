// The sub-commands of `moirai`. Each file here adds one to the command tree: it declares the command's
// options, and what it runs once they are parsed. main() only assembles the tree and runs the command given.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

#include "caps_option.hpp"

namespace moirai::cli {

// A sub-command in the tree: `app` holds its options, `run` does its work once they are parsed and returns
// the exit code. run() may throw: main() prints what() and exits 2 for a moirai::Error, 1 for any other
// exception.
struct Command {
  CLI::App* app = nullptr;
  std::function<int()> run;
};

// Each adds its sub-command to `moirai`; `moirai --help` lists them in the order they were added.
Command add_bench_command(CLI::App& moirai);
Command add_topo_command(CLI::App& moirai);
Command add_echo_command(CLI::App& moirai);
Command add_doctor_command(CLI::App& moirai);
Command add_demo_command(CLI::App& moirai);
Command add_soak_command(CLI::App& moirai);

// What --idle takes (moirai::parse_idle_strategy reads each).
const std::vector<std::string>& idle_strategy_names();
// --keep-caps LIST and --no-drop-caps, into `caps`.
void add_caps_options(CLI::App& command, CapsOptions& caps);
// `list` as a CPU list into `cpus`, unless it is empty (the option was not given). Throws Error naming the
// list when it does not parse.
void parse_cpus_if_given(const std::string& list, std::vector<int>& cpus);

}  // namespace moirai::cli
