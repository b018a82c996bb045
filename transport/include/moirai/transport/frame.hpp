// Framing for stream transports (TCP, Unix stream sockets, shared-memory rings): each message is a 16-byte
// header and its payload. The header says how long the payload is, what type it is and who sent it;
// docs/wire.md gives the layout byte by byte, with an example a test checks.
//
// Parsing works in place on the receive buffer and never allocates: it reports a whole frame (header and a
// view of its payload), "need more bytes", or the error that must close the connection (a frame over the
// maximum, a header that is not ours). A stream is never resynchronised after an error: bytes that are not a
// frame mean the peer is broken or hostile, and guessing where the next frame starts would deliver garbage.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <system_error>

#include "moirai/transport/byte_order.hpp"
#include "moirai/transport/endpoint.hpp"
#include "moirai/transport/error.hpp"

namespace moirai::transport {

inline constexpr std::size_t kFrameHeaderSize = 16;
inline constexpr std::uint8_t kFrameVersion = 1;
inline constexpr std::uint32_t kDefaultMaxFrame = 1u << 20;  // payload bytes

struct FrameHeader {
  std::uint32_t length = 0;  // payload bytes, header excluded
  std::uint16_t type = 0;    // the application's message type
  EndpointId sender;
};

// Writes `h` as the 16 header bytes at `out` (little-endian; version kFrameVersion, flags 0).
inline void write_frame_header(const FrameHeader& h, std::span<std::byte, kFrameHeaderSize> out) noexcept {
  auto put = [&out](std::size_t at, std::uint64_t v, std::size_t bytes) noexcept {
    put_le(out.data() + at, v, bytes);
  };
  put(0, h.length, 4);
  put(4, h.type, 2);
  put(6, kFrameVersion, 1);
  put(7, 0, 1);  // flags: reserved, zero
  put(8, h.sender.packed(), 8);
}

enum class ParseStatus : std::uint8_t {
  frame,      // `header` and `payload` hold a whole frame; `consumed` bytes of the buffer belong to it
  need_more,  // the buffer ends inside a frame; `needed` is how many bytes the whole frame takes
  error,      // `error` says why; the connection must be closed
};

struct ParseResult {
  ParseStatus status = ParseStatus::need_more;
  FrameHeader header;
  std::span<const std::byte> payload;
  std::size_t consumed = 0;  // frame: header + payload
  std::size_t needed = 0;  // need_more: the size of the whole frame once its header is known, else the header
  std::error_code error;
};

// Parses the frame at the start of `buffer`, allowing payloads up to `max_payload` bytes.
inline ParseResult parse_frame(std::span<const std::byte> buffer,
                               std::uint32_t max_payload = kDefaultMaxFrame) noexcept {
  ParseResult r;
  if (buffer.size() < kFrameHeaderSize) {
    r.needed = kFrameHeaderSize;
    return r;
  }
  auto get = [&buffer](std::size_t at, std::size_t bytes) noexcept {
    return get_le(buffer.data() + at, bytes);
  };
  if (get(6, 1) != kFrameVersion || get(7, 1) != 0) {
    r.status = ParseStatus::error;
    r.error = make_error_code(TransportErrc::malformed);
    return r;
  }
  r.header.length = static_cast<std::uint32_t>(get(0, 4));
  r.header.type = static_cast<std::uint16_t>(get(4, 2));
  r.header.sender = EndpointId::unpack(get(8, 8));
  if (r.header.length > max_payload) {
    r.status = ParseStatus::error;
    r.error = make_error_code(TransportErrc::message_too_large);
    return r;
  }
  const std::size_t whole = kFrameHeaderSize + r.header.length;
  if (buffer.size() < whole) {
    r.needed = whole;
    return r;
  }
  r.status = ParseStatus::frame;
  r.payload = buffer.subspan(kFrameHeaderSize, r.header.length);
  r.consumed = whole;
  return r;
}

}  // namespace moirai::transport
