// Little-endian fields written and read byte by byte, for wire formats that must not depend on the host's
// byte order or alignment (the frame header, and the example services' payloads).
#pragma once

#include <cstddef>
#include <cstdint>

namespace moirai::transport {

// The low `bytes` (1..8) bytes of `v` at `at`, least significant first.
inline void put_le(std::byte* at, std::uint64_t v, std::size_t bytes) noexcept {
  for (std::size_t i = 0; i < bytes; ++i)
    at[i] = static_cast<std::byte>(v >> (8 * i));
}

// `bytes` (1..8) bytes at `at`, least significant first.
inline std::uint64_t get_le(const std::byte* at, std::size_t bytes) noexcept {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < bytes; ++i)
    v |= static_cast<std::uint64_t>(at[i]) << (8 * i);
  return v;
}

}  // namespace moirai::transport
