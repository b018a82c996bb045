// The options several commands share.
#include "command.hpp"
#include "moirai/core/cpu_set.hpp"

namespace moirai::cli {

const std::vector<std::string>& idle_strategy_names() {
  static const std::vector<std::string> names = {"spin", "sleep", "spin-then-sleep", "busy-poll"};
  return names;
}

void add_caps_options(CLI::App& command, CapsOptions& caps) {
  command
      .add_option("--keep-caps", caps.keep,
                  "Capabilities the runtime keeps once set up, as CAP_A,CAP_B (it drops the others)")
      ->delimiter(',');
  command.add_flag("--no-drop-caps", caps.no_drop, "Keep every capability the process has");
}

void parse_cpus_if_given(const std::string& list, std::vector<int>& cpus) {
  if (!list.empty()) cpus = parse_cpu_list(list);
}

}  // namespace moirai::cli
