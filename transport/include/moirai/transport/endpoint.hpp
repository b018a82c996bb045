// Who sent a message: every endpoint has an id made of the host or process it lives in, the shard that owns
// it and a channel number on that shard. Packed into 64 bits, so it travels in every frame header and
// compares as one integer.
#pragma once

#include <cstdint>

namespace moirai::transport {

struct EndpointId {
  std::uint32_t node = 0;     // host or process
  std::uint16_t shard = 0;    // owning shard on that node
  std::uint16_t channel = 0;  // channel on that shard

  constexpr std::uint64_t packed() const noexcept {
    return static_cast<std::uint64_t>(node) << 32 | static_cast<std::uint64_t>(shard) << 16 | channel;
  }
  static constexpr EndpointId unpack(std::uint64_t v) noexcept {
    return {static_cast<std::uint32_t>(v >> 32), static_cast<std::uint16_t>(v >> 16),
            static_cast<std::uint16_t>(v)};
  }
  friend constexpr bool operator==(EndpointId, EndpointId) noexcept = default;
};

}  // namespace moirai::transport
