#include "moirai/transport/framed_stream.hpp"

#include <algorithm>
#include <cstring>
#include <string>

#include "moirai/transport/error.hpp"
#include "moirai/transport/send_buffers.hpp"

namespace moirai::transport {
namespace {

// A receive buffer starts at this size (or the largest frame, if smaller) and grows only for a bigger frame.
constexpr std::size_t kInitialReceiveBuffer = 16 * 1024;

std::string node_text(std::uint32_t node) {
  return std::to_string(node);
}

}  // namespace

FramedStream::FramedStream(StreamSocket stream, EndpointId self, FramedOptions options)
    : stream_(std::move(stream)),
      recv_options_(options.recv),
      self_(self),
      max_payload_(options.max_payload),
      peer_node_(options.peer_node),
      stash_(options.stash_bytes),
      complete_ns_(options.frame_complete_timeout == Duration::max()
                       ? INT64_MAX
                       : options.frame_complete_timeout.count()),
      send_buffer_(new std::byte[std::max(options.send_buffer_bytes, kFrameHeaderSize)]),
      send_capacity_(std::max(options.send_buffer_bytes, kFrameHeaderSize)) {
  grow_to(std::min<std::size_t>(kInitialReceiveBuffer, kFrameHeaderSize + max_payload_));
}

void FramedStream::grow_to(std::size_t bytes) {
  if (bytes <= capacity_) return;
  std::unique_ptr<std::byte[]> bigger(new std::byte[bytes]);
  if (end_ > begin_) std::memcpy(bigger.get(), buffer_.get() + begin_, end_ - begin_);
  end_ -= begin_;
  begin_ = 0;
  buffer_ = std::move(bigger);
  capacity_ = bytes;
}

// Copies a received chunk whole behind the bytes held, and gives its buffer back. When it does not fit, the
// held bytes move to the front, then the buffer grows as before a receive (doubling, up to the `needed`
// bytes of the frame being read), or further if the chunk holds more than that: its bytes did arrive.
void FramedStream::take(const Chunk& chunk, std::size_t needed) {
  const std::size_t n = chunk.payload.size();
  if (capacity_ - end_ < n && begin_ != 0) {
    std::memmove(buffer_.get(), buffer_.get() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  if (capacity_ - end_ < n) grow_to(std::max(end_ + n, std::min(capacity_ * 2, needed)));
  std::memcpy(buffer_.get() + end_, chunk.payload.data(), n);
  end_ += n;
  receiver_->recycle(chunk);
}

void FramedStream::check_size(std::size_t payload) const {
  if (payload > max_payload_) {
    throw TransportError(TransportErrc::message_too_large,
                         "FramedStream::send: a payload of " + std::to_string(payload) +
                             " bytes is over this stream's maximum of " + std::to_string(max_payload_));
  }
}

// Copies the frame behind what is queued; false when it does not fit.
bool FramedStream::append(std::uint16_t type, std::span<const std::byte> payload) noexcept {
  if (send_capacity_ - out_used_ < kFrameHeaderSize + payload.size()) return false;
  std::byte* out = send_buffer_.get() + out_used_;
  write_frame_header(FrameHeader{static_cast<std::uint32_t>(payload.size()), type, self_},
                     std::span<std::byte, kFrameHeaderSize>(out, kFrameHeaderSize));
  if (!payload.empty()) std::memcpy(out + kFrameHeaderSize, payload.data(), payload.size());
  out_used_ += kFrameHeaderSize + payload.size();
  return true;
}

// Sends what is queued; the caller holds the send turn.
Task<void> FramedStream::send_queued() {
  if (out_used_ == 0) co_return;
  const std::size_t n = out_used_;
  out_used_ = 0;  // a failed send leaves the stream broken anyway; nothing is sent twice
  co_await stream_.send_all(std::span<const std::byte>(send_buffer_.get(), n));
}

// The frame did not fit behind what is queued: sends that first, then queues the frame, or sends it from
// where it is when it is larger than the whole buffer. The caller holds the send turn.
Task<void> FramedStream::queue_after_flush(std::uint16_t type, std::span<const std::byte> payload) {
  co_await send_queued();
  if (append(type, payload)) co_return;
  // Larger than the whole send buffer: the header from the buffer, the payload from where it is; MSG_MORE
  // keeps the header from leaving in a segment of its own.
  write_frame_header(FrameHeader{static_cast<std::uint32_t>(payload.size()), type, self_},
                     std::span<std::byte, kFrameHeaderSize>(send_buffer_.get(), kFrameHeaderSize));
  co_await stream_.send_all(std::span<const std::byte>(send_buffer_.get(), kFrameHeaderSize), true);
  co_await stream_.send_all(payload);
}

Task<void> FramedStream::flush() {
  const Semaphore::Units turn = co_await send_turn_.hold();
  co_await send_queued();
}

Task<void> FramedStream::queue(std::uint16_t type, std::span<const std::byte> payload) {
  check_size(payload.size());
  const Semaphore::Units turn = co_await send_turn_.hold();
  if (!append(type, payload)) co_await queue_after_flush(type, payload);
}

Task<void> FramedStream::send(std::uint16_t type, std::span<const std::byte> payload) {
  // Header and payload in one buffer and one send: two sends would cost two syscalls' worth of kernel work
  // and, with TCP_NODELAY, possibly two segments.
  check_size(payload.size());
  const Semaphore::Units turn = co_await send_turn_.hold();
  if (!append(type, payload)) co_await queue_after_flush(type, payload);
  co_await send_queued();
}

Task<void> FramedStream::send(SendBuffer buffer, std::uint16_t type, std::size_t payload_bytes) {
  check_size(payload_bytes);
  const std::span<std::byte> b = buffer.bytes();
  if (b.size() < kFrameHeaderSize + payload_bytes) {
    throw TransportError(TransportErrc::invalid_argument,
                         "FramedStream::send: a frame of " + std::to_string(payload_bytes) +
                             " payload bytes and its " + std::to_string(kFrameHeaderSize) +
                             "-byte header does not fit a send buffer of " + std::to_string(b.size()) +
                             " bytes; take the buffer from a pool with larger buffers");
  }
  const Semaphore::Units turn = co_await send_turn_.hold();
  if (out_used_ != 0) co_await send_queued();  // what was queued goes first
  write_frame_header(FrameHeader{static_cast<std::uint32_t>(payload_bytes), type, self_},
                     b.first<kFrameHeaderSize>());
  co_await stream_.send(std::move(buffer), kFrameHeaderSize + payload_bytes);
}

Task<void> FramedStream::close() {
  const Semaphore::Units turn = co_await send_turn_.hold();  // sends already waiting go out first
  co_await send_queued();
  receiver_.reset();
  co_await stream_.close();
}

bool FramedStream::has_buffered_frame() const noexcept {
  if (stash_.has_waiting()) return true;
  const std::size_t from = begin_ + consumed_;
  return parse_frame(std::span<const std::byte>(buffer_.get() + from, end_ - from), max_payload_).status !=
         ParseStatus::need_more;
}

void FramedStream::drop_returned() noexcept {
  if (consumed_ != 0) frame_start_known_ = false;  // the next frame starts after the one returned
  begin_ += consumed_;
  consumed_ = 0;
  if (begin_ == end_) begin_ = end_ = 0;
  stash_.release_taken();
}

void FramedStream::incomplete_frame(std::size_t needed) const {
  throw TransportError(
      TransportErrc::timeout,
      "FramedStream::recv: a frame begun " + std::to_string((monotonic_ns() - frame_start_ns_) / 1'000'000) +
          " ms ago is still not whole (" + std::to_string(end_ - begin_) + " of " + std::to_string(needed) +
          " bytes) after frame_complete_timeout; a slow or stalled peer, close the connection");
}

Task<Frame> FramedStream::recv(Duration timeout) {
  return receive(std::nullopt, timeout);
}

Task<Frame> FramedStream::recv_from(EndpointId sender, Duration timeout) {
  return receive(sender, timeout);
}

// A whole frame at begin_: checks its sender, and keeps it in the stash when it is another's than the one
// asked for. True when it is the one to return (it stays in the buffer until the next receive).
bool FramedStream::accept_frame(const ParseResult& r, std::optional<EndpointId> sender) {
  const std::uint32_t node = r.header.sender.node;
  if (peer_node_ && *peer_node_ != node) {
    throw TransportError(TransportErrc::malformed, "FramedStream::recv: a frame claims to come from node " +
                                                       node_text(node) + " on a connection from node " +
                                                       node_text(*peer_node_) +
                                                       "; the sender id lies, close the connection");
  }
  peer_node_ = node;
  if (!sender || r.header.sender == *sender) {
    consumed_ = r.consumed;
    seat_.set(received_bytes());
    return true;
  }
  // Another sender's frame: keep it for a later receive.
  if (!stash_.put(r.header.sender, r.header.type, r.payload)) {
    throw TransportError(TransportErrc::message_too_large,
                         "FramedStream::recv_from: frames from other senders would need more than " +
                             std::to_string(stash_.capacity()) +
                             " bytes kept aside; receive them with recv() or raise stash_bytes");
  }
  begin_ += r.consumed;
  frame_start_known_ = false;
  seat_.set(received_bytes());
  return false;
}

// Makes room for the `needed` bytes of the frame at begin_, and says how long the receive of more bytes may
// wait: until the caller's `deadline` or the started frame's (frame_complete_timeout), whichever is first
// (`frame_deadline` says which). Throws when the frame's time is already up.
Duration FramedStream::prepare_wait(std::size_t needed, std::int64_t deadline, bool& frame_deadline) {
  // The frame's bytes go to the front of the buffer, which grows (doubling, up to the frame) only once it
  // is full: memory follows the bytes that came, not the length a header announces.
  if (capacity_ - begin_ < needed && begin_ != 0) {
    std::memmove(buffer_.get(), buffer_.get() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  if (end_ == capacity_) grow_to(std::min(needed, capacity_ * 2));
  if (complete_ns_ != INT64_MAX && end_ > begin_ && !frame_start_known_) {
    frame_start_ns_ = last_recv_ns_;  // its bytes came with the last receive, at the latest
    frame_start_known_ = true;
  }
  std::int64_t until = deadline;
  frame_deadline = false;
  if (frame_start_known_ && end_ > begin_) {
    const std::int64_t d =
        frame_start_ns_ > INT64_MAX - complete_ns_ ? INT64_MAX : frame_start_ns_ + complete_ns_;
    if (d < until) {
      until = d;
      frame_deadline = true;
    }
  }
  Duration left = Duration::max();
  if (until != INT64_MAX) left = Duration(std::max<std::int64_t>(0, until - monotonic_ns()));
  if (frame_deadline && left.count() == 0) incomplete_frame(needed);
  return left;
}

Task<Frame> FramedStream::receive(std::optional<EndpointId> sender, Duration timeout) {
  drop_returned();
  if (std::optional<detail::RecvStash::Kept> k = stash_.take(sender)) {
    const FrameHeader h{static_cast<std::uint32_t>(k->payload.size()), static_cast<std::uint16_t>(k->tag),
                        k->sender};
    co_return Frame{k->sender, k->payload, h};
  }
  const std::int64_t deadline = timeout == Duration::max() ? INT64_MAX : deadline_after(timeout);
  for (;;) {
    const ParseResult r =
        parse_frame(std::span<const std::byte>(buffer_.get() + begin_, end_ - begin_), max_payload_);
    if (r.status == ParseStatus::error) {
      throw TransportError(
          static_cast<TransportErrc>(r.error.value()),
          "FramedStream::recv: " + r.error.message() + " from the peer; close the connection");
    }
    if (r.status == ParseStatus::frame) {
      if (accept_frame(r, sender)) co_return Frame{r.header.sender, r.payload, r.header};
      continue;
    }
    bool frame_deadline = false;
    const Duration left = prepare_wait(r.needed, deadline, frame_deadline);
    Chunk chunk;
    try {
      if (!receiver_) receiver_ = std::make_unique<StreamReceiver>(stream_, recv_options_);
      // Not one conditional expression over two co_awaits: g++ 12 evaluates both of its arms when they
      // co_await awaiters with destructors (both receives ran, each taking a chunk).
      if (left == Duration::max()) {
        chunk = co_await receiver_->recv();
      } else {
        chunk = co_await receiver_->recv(left);
      }
    } catch (const TransportError& e) {
      if (frame_deadline && e.errc() == TransportErrc::timeout) incomplete_frame(r.needed);
      throw;
    }
    if (chunk.end()) {
      if (end_ == begin_) throw TransportError(TransportErrc::closed, "FramedStream::recv: the peer closed");
      throw TransportError(TransportErrc::connection_reset,
                           "FramedStream::recv: the peer closed in the middle of a frame (" +
                               std::to_string(end_ - begin_) + " bytes of it arrived)");
    }
    if (complete_ns_ != INT64_MAX) {
      last_recv_ns_ = monotonic_ns();
      if (end_ == begin_) {
        frame_start_ns_ = last_recv_ns_;
        frame_start_known_ = true;
      }
    }
    take(chunk, r.needed);
    seat_.set(received_bytes());
  }
}

}  // namespace moirai::transport
