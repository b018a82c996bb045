// Frames (frame.hpp, docs/wire.md) over a TCP or Unix stream: send writes a header and a payload, recv
// returns the next whole frame, with its sender, from a receive buffer made once per connection. A frame over
// the maximum, or bytes that are not a frame, end the connection with TransportError(message_too_large) or
// (malformed): the caller closes it, counts the reason and goes on with its other connections.
#pragma once

#include <cstdint>
#include <memory>
#include <span>

#include "moirai/core/task.hpp"
#include "moirai/transport/frame.hpp"
#include "moirai/transport/stream_socket.hpp"

namespace moirai::transport {

struct Frame {
  FrameHeader header;
  std::span<const std::byte> payload;  // valid until the next recv() on the same stream
};

class FramedStream {
 public:
  // `self` is the sender id written into every frame this side sends.
  FramedStream(StreamSocket stream, EndpointId self, std::uint32_t max_payload = kDefaultMaxFrame);

  // One frame of `type` carrying `payload`. Throws TransportError(message_too_large) for a payload over the
  // maximum (nothing is sent), or the stream's errors.
  Task<void> send(std::uint16_t type, std::span<const std::byte> payload);
  // The next frame. Throws TransportError(closed) at a clean end of stream, (connection_reset) when the peer
  // vanished mid-frame, (message_too_large) or (malformed) for what is not an acceptable frame.
  Task<Frame> recv();
  Task<void> close() { return stream_.close(); }
  StreamSocket& stream() noexcept { return stream_; }

 private:
  StreamSocket stream_;
  EndpointId self_;
  std::uint32_t max_payload_;
  std::unique_ptr<std::byte[]> buffer_;  // header + max payload
  std::size_t capacity_;
  std::size_t begin_ = 0;     // first unread byte
  std::size_t end_ = 0;       // one past the last received byte
  std::size_t consumed_ = 0;  // bytes of the frame the last recv() returned, dropped at the next one
  std::unique_ptr<std::byte[]> send_buffer_;
};

}  // namespace moirai::transport
