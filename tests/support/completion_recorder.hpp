// Test support: an io::Completion that counts its calls and keeps the last result, for tests of the ring and
// of the readiness loop.
#pragma once

#include <cstdint>

#include "moirai/io/completion.hpp"

namespace moirai_test {

struct Recorder : moirai::io::Completion {
  int calls = 0;
  int res = 0;
  Recorder() {
    on_complete = [](Completion* self, int r, std::uint32_t) noexcept {
      auto* me = static_cast<Recorder*>(self);
      ++me->calls;
      me->res = r;
    };
  }
};

}  // namespace moirai_test
