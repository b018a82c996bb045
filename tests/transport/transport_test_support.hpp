// What the transport tests share: text as bytes and back, and a frame's wire bytes built by hand (so a test
// can send frames that lie, or that no FramedStream would write).
#pragma once

#include <span>
#include <string>
#include <vector>

#include "moirai/transport/frame.hpp"

namespace moirai_test {

inline std::span<const std::byte> bytes_of(const std::string& s) {
  return std::as_bytes(std::span<const char>(s.data(), s.size()));
}

inline std::string text_of(std::span<const std::byte> b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

// A header announcing `length` payload bytes, followed by `payload` (which may be shorter: a truncated
// frame).
inline std::vector<std::byte> frame_bytes(std::uint32_t length, std::uint16_t type,
                                          moirai::transport::EndpointId sender, const std::string& payload) {
  using moirai::transport::kFrameHeaderSize;
  std::vector<std::byte> out(kFrameHeaderSize);
  moirai::transport::write_frame_header(moirai::transport::FrameHeader{length, type, sender},
                                        std::span<std::byte, kFrameHeaderSize>(out.data(), kFrameHeaderSize));
  for (char c : payload)
    out.push_back(static_cast<std::byte>(c));
  return out;
}

}  // namespace moirai_test
