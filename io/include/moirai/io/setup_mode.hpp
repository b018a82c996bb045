// How an io::Ring was set up (its own header, so that options can name a mode without liburing's).
#pragma once

#include <cstdint>

namespace moirai::io {

// How the ring was set up, best first.
enum class SetupMode : std::uint8_t {
  // SINGLE_ISSUER | DEFER_TASKRUN | TASKRUN_FLAG: completions run only when this thread enters the kernel,
  // never interrupting it; the TASKRUN flag says when an enter is worth making (Linux 6.1+).
  kDeferTaskrun,
  // COOP_TASKRUN | TASKRUN_FLAG: no inter-processor interrupt per completion (Linux 5.19+).
  kCoopTaskrun,
  // No flags: completions are posted by signalling task work (Linux 5.1+).
  kPlain,
};

const char* to_string(SetupMode mode) noexcept;

}  // namespace moirai::io
