// The messages of other senders that an IpcChannel's recv_from sets aside (internal). Fixed arrays made at
// create/open (nothing is allocated later), kept in arrival order. A message taken from here is lent to the
// caller until the next receive gives it back with release(), as a ring slot is.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>

#include "moirai/transport/endpoint.hpp"
#include "moirai/transport/ipc.hpp"

namespace moirai::transport::ipc {

class Stash {
 public:
  // Room for `capacity` messages of up to `max_payload` bytes each. Allocates: at create/open only.
  void reserve(std::uint32_t capacity, std::uint32_t max_payload);

  std::uint32_t capacity() const noexcept { return capacity_; }
  bool empty() const noexcept { return count_ == 0; }

  // The oldest message (from `from`, if given) into `out`, lent until release(). False when there is none.
  bool take(const std::optional<EndpointId>& from, IpcMessage& out) noexcept;
  // Keeps a copy of a message after the others. False, and nothing kept, when the stash is full.
  bool put(EndpointId sender, std::span<const std::byte> payload) noexcept;
  // Gives back the message the last take() lent out, if any.
  void release() noexcept {
    if (held_ != kNone) {
      free_[free_count_++] = held_;
      held_ = kNone;
    }
  }

 private:
  static constexpr std::uint32_t kNone = ~0u;
  struct Entry {
    EndpointId sender;
    std::uint32_t length = 0;
  };
  std::byte* bytes_of(std::uint32_t idx) const noexcept {
    return bytes_.get() + static_cast<std::size_t>(idx) * max_payload_;
  }

  std::uint32_t capacity_ = 0;
  std::uint32_t max_payload_ = 0;
  std::unique_ptr<std::byte[]> bytes_;
  std::unique_ptr<Entry[]> entries_;
  std::unique_ptr<std::uint32_t[]> order_;  // entries in use, oldest first
  std::unique_ptr<std::uint32_t[]> free_;   // entries free
  std::uint32_t count_ = 0;
  std::uint32_t free_count_ = 0;
  std::uint32_t held_ = kNone;  // the entry lent out by the last take()
};

}  // namespace moirai::transport::ipc
