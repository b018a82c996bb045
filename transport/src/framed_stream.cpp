#include "moirai/transport/framed_stream.hpp"

#include <cstring>
#include <string>

#include "moirai/transport/error.hpp"

namespace moirai::transport {

FramedStream::FramedStream(StreamSocket stream, EndpointId self, std::uint32_t max_payload)
    : stream_(std::move(stream)),
      self_(self),
      max_payload_(max_payload),
      buffer_(new std::byte[kFrameHeaderSize + max_payload]),
      capacity_(kFrameHeaderSize + max_payload),
      send_buffer_(new std::byte[kFrameHeaderSize + max_payload]) {}

Task<void> FramedStream::send(std::uint16_t type, std::span<const std::byte> payload) {
  if (payload.size() > max_payload_) {
    throw TransportError(TransportErrc::message_too_large,
                         "FramedStream::send: a payload of " + std::to_string(payload.size()) +
                             " bytes is over this stream's maximum of " + std::to_string(max_payload_));
  }
  // Header and payload in one buffer and one send: two sends would cost two syscalls' worth of kernel work
  // and, with TCP_NODELAY, possibly two segments.
  std::byte* out = send_buffer_.get();
  write_frame_header(FrameHeader{static_cast<std::uint32_t>(payload.size()), type, self_},
                     std::span<std::byte, kFrameHeaderSize>(out, kFrameHeaderSize));
  if (!payload.empty()) std::memcpy(out + kFrameHeaderSize, payload.data(), payload.size());
  co_await stream_.send_all(std::span<const std::byte>(out, kFrameHeaderSize + payload.size()));
}

Task<Frame> FramedStream::recv() {
  begin_ += consumed_;
  consumed_ = 0;
  for (;;) {
    const ParseResult r =
        parse_frame(std::span<const std::byte>(buffer_.get() + begin_, end_ - begin_), max_payload_);
    if (r.status == ParseStatus::frame) {
      consumed_ = r.consumed;
      co_return Frame{r.header, r.payload};
    }
    if (r.status == ParseStatus::error) {
      throw TransportError(
          static_cast<TransportErrc>(r.error.value()),
          "FramedStream::recv: " + r.error.message() + " from the peer; close the connection");
    }
    // Need more: make room at the end by moving the partial frame to the front.
    if (capacity_ - end_ < r.needed - (end_ - begin_)) {
      std::memmove(buffer_.get(), buffer_.get() + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
    }
    const std::size_t got =
        co_await stream_.recv_some(std::span<std::byte>(buffer_.get() + end_, capacity_ - end_));
    if (got == 0) {
      if (end_ == begin_) throw TransportError(TransportErrc::closed, "FramedStream::recv: the peer closed");
      throw TransportError(TransportErrc::connection_reset,
                           "FramedStream::recv: the peer closed in the middle of a frame (" +
                               std::to_string(end_ - begin_) + " bytes of it arrived)");
    }
    end_ += got;
  }
}

}  // namespace moirai::transport
