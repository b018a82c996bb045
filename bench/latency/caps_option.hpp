// `--keep-caps LIST` and `--no-drop-caps` of `moirai echo` and `moirai bench`: what the runtime keeps when it
// drops the capabilities it no longer needs once its shards are set up (RuntimeOptions::drop_capabilities).
#pragma once

#include <string>
#include <vector>

#include "moirai/core/runtime_options.hpp"

namespace moirai::cli {

struct CapsOptions {
  std::vector<std::string> keep;  // capability names, as capabilities(7) spells them
  bool no_drop = false;           // keep every capability
};

// Sets `ro`'s drop and kept set from `o`, plus what the command itself needs after start: CAP_SYS_NICE for a
// --policy (bench baselines apply it to threads of their own after a runtime dropped), CAP_SYS_ADMIN and
// CAP_DAC_OVERRIDE besides for SCHED_DEADLINE routes, and CAP_NET_BIND_SERVICE when a port it binds once
// running (`bind_addresses`) is below 1024.
void apply_caps_options(const CapsOptions& o, RuntimeOptions& ro,
                        const std::vector<std::string>& bind_addresses);

}  // namespace moirai::cli
