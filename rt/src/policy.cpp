#include "moirai/rt/policy.hpp"

namespace moirai::rt {

const char* to_string(PolicyKind kind) noexcept {
  switch (kind) {
    case PolicyKind::fifo:
      return "fifo";
    case PolicyKind::round_robin:
      return "round-robin";
    case PolicyKind::deadline_driven:
      return "deadline-driven";
    case PolicyKind::rate_monotonic:
      return "rate-monotonic";
  }
  return "unknown";
}

}  // namespace moirai::rt
