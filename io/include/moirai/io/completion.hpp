// What waits for the io module: a completion record that io::Ring (for a CQE) and io::ReadinessLoop (for a
// readiness event) call back once when what it waits for has happened.
#pragma once

#include <cstdint>

namespace moirai::io {

// Something that waits for a CQE or a readiness event. The SQE's user_data (or the ReadyHandle's parked
// waiter) is the address of a Completion; the ring or the loop calls `on_complete` with the result (a byte
// count, a readiness mask, or -errno) and flags. A function pointer rather than a virtual so that a
// Completion can be embedded in any awaiter without a vtable and stay trivially copyable.
struct Completion {
  using Fn = void (*)(Completion* self, int res, std::uint32_t flags) noexcept;
  Fn on_complete = nullptr;
};

}  // namespace moirai::io
