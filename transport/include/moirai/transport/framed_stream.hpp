// Frames (frame.hpp, docs/wire.md) over a TCP or Unix stream: send writes a header and a payload, recv
// returns the next whole frame, with its sender, from a receive buffer owned by the connection. A frame over
// the maximum, bytes that are not a frame, or a sender id that lies end the connection with
// TransportError(message_too_large) or (malformed): the caller closes it, counts the reason and goes on with
// its other connections.
//
// Receive: one multishot recv stays armed on the connection (StreamReceiver: io_uring fills a small ring of
// provided buffers of the connection's own, so a receive costs no submission and no re-armed poll), and each
// chunk that arrives is copied behind what the connection already holds. Where the kernel lacks buffer rings
// or multishot receive, one-shot receives into the same buffers. The receive buffer starts small and grows,
// doubling, to the largest frame the peer actually sends (never more than twice the bytes that arrived: a
// header announcing a large frame costs nothing until its bytes come), so thousands of idle or slow
// connections cost little memory; in steady state nothing is allocated.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <utility>

#include "moirai/core/clock.hpp"
#include "moirai/core/sync.hpp"
#include "moirai/core/task.hpp"
#include "moirai/transport/detail/recv_stash.hpp"
#include "moirai/transport/frame.hpp"
#include "moirai/transport/receiver.hpp"
#include "moirai/transport/recv_options.hpp"
#include "moirai/transport/stream_receiver.hpp"
#include "moirai/transport/stream_socket.hpp"

namespace moirai::transport {

// One received frame. `payload` is valid until the next recv() or recv_from() on the same stream.
struct Frame {
  EndpointId sender;  // header.sender
  std::span<const std::byte> payload;
  FrameHeader header;
};

namespace detail {
// Bytes that a group of streams (a server's connections) holds received but not yet handed out as frames,
// and the most they may hold together. A stream that takes the total past `limit` calls `over(owner)`
// (which may detach streams from the budget) before it goes on.
struct ReceiveBudget {
  std::size_t held = 0;
  std::size_t limit = SIZE_MAX;
  std::size_t peak = 0;  // the most `held` was once `over` had done its part
  void (*over)(void* owner) = nullptr;
  void* owner = nullptr;
};

// One stream's share of a ReceiveBudget; leaves it (giving its bytes back) when it ends or moves away.
class BudgetSeat {
 public:
  BudgetSeat() noexcept = default;
  BudgetSeat(BudgetSeat&& o) noexcept
      : budget_(std::exchange(o.budget_, nullptr)), share_(std::exchange(o.share_, 0)) {}
  BudgetSeat& operator=(BudgetSeat&& o) noexcept {
    if (this != &o) {
      leave();
      budget_ = std::exchange(o.budget_, nullptr);
      share_ = std::exchange(o.share_, 0);
    }
    return *this;
  }
  ~BudgetSeat() { leave(); }
  void join(ReceiveBudget* b) noexcept {
    leave();
    budget_ = b;
  }
  void leave() noexcept {
    if (budget_ != nullptr) budget_->held -= share_;
    budget_ = nullptr;
    share_ = 0;
  }
  // This stream now holds `bytes`; past the budget's limit, its owner is told (and may make this seat leave).
  void set(std::size_t bytes) noexcept {
    if (budget_ == nullptr) return;
    budget_->held = budget_->held - share_ + bytes;
    const bool grew = bytes > share_;
    share_ = bytes;
    if (!grew) return;
    ReceiveBudget* b = budget_;  // over() may make this seat leave
    if (b->held > b->limit && b->over != nullptr) b->over(b->owner);
    if (b->held > b->peak) b->peak = b->held;
  }

 private:
  ReceiveBudget* budget_ = nullptr;
  std::size_t share_ = 0;
};
}  // namespace detail

struct FramedOptions {
  std::uint32_t max_payload = kDefaultMaxFrame;
  // Every frame of one connection comes from one node (host or process); its shards and channels may vary.
  // When set, frames must name this node; when not, the first frame's node is the peer's from then on. A
  // frame naming another node is a lie about its sender and ends the connection (malformed).
  std::optional<std::uint32_t> peer_node;
  // Bytes of frames from other senders that recv_from() keeps for later receives (their headers included).
  std::size_t stash_bytes = 64 * 1024;
  // Bytes of frames queue() can hold before they must be flushed; a frame larger than this goes out alone.
  std::size_t send_buffer_bytes = 16 * 1024;
  // A frame whose first byte has arrived must be whole within this, however its bytes trickle in (a slow
  // or hostile peer cannot keep a partial frame open for ever). max: no limit. FramedServer sets it from
  // ServerOptions::frame_complete_timeout.
  Duration frame_complete_timeout = Duration::max();
  // The connection's receive ring (made at its first receive): chunks land there and are copied out at once,
  // so a few buffers suffice; while the application does not receive, a full ring holds the peer back through
  // TCP's flow control.
  RecvOptions recv{8, 4096, nullptr, false, false};
};

class FramedStream {
  static FramedOptions with_max_payload(std::uint32_t max_payload) noexcept {
    FramedOptions o;
    o.max_payload = max_payload;
    return o;
  }

 public:
  // `self` is the sender id written into every frame this side sends.
  FramedStream(StreamSocket stream, EndpointId self, FramedOptions options = {});
  FramedStream(StreamSocket stream, EndpointId self, std::uint32_t max_payload)
      : FramedStream(std::move(stream), self, with_max_payload(max_payload)) {}

  // One frame of `type` carrying `payload`, sent now (with anything queued before it, in one send; one
  // non-blocking syscall when the socket has room, see StreamSocket::send_all). Throws
  // TransportError(message_too_large) for a payload over the maximum (nothing is sent), or the stream's
  // errors. Several tasks may send on one stream: sends (and queue, flush, close) take turns, in the order
  // they were called, so each frame leaves whole, and a send waiting for room holds back the ones after it.
  Task<void> send(std::uint16_t type, std::span<const std::byte> payload);
  // One frame of `type` whose payload the caller wrote into `buffer` (a registered send buffer, see
  // send_buffers.hpp) at kFrameHeaderSize: the header is written in front of it and the frame leaves after
  // anything queued, zero-copy where the pool and socket allow. Throws as send(), or
  // TransportError(invalid_argument) when header and payload do not fit the buffer.
  Task<void> send(SendBuffer buffer, std::uint16_t type, std::size_t payload_bytes);
  // Pipelining: queue() copies a frame into the send buffer without a syscall (it flushes first only when the
  // buffer is full), and flush() sends everything queued in as few sends as the kernel takes. A server that
  // queues its replies and flushes when has_buffered_frame() turns false answers a burst of requests with one
  // send. Errors as send().
  Task<void> queue(std::uint16_t type, std::span<const std::byte> payload);
  Task<void> flush();
  std::size_t queued_bytes() const noexcept { return out_used_; }
  // True when a whole frame is already in the receive buffer (or the stash): the next recv() needs no
  // syscall.
  bool has_buffered_frame() const noexcept;
  // The next frame (frames kept by recv_from() first, oldest first). Throws TransportError(timeout) when no
  // whole frame arrives within `timeout` (what did arrive stays for the next call), (closed) at a clean end
  // of stream, (connection_reset) when the peer vanished mid-frame, (message_too_large) or (malformed) for
  // what is not an acceptable frame.
  Task<Frame> recv(Duration timeout = Duration::max());
  // The next frame from `sender`; frames from others are kept, in order, for later receives. When they would
  // need more than `stash_bytes`, throws TransportError(message_too_large) and keeps every frame (the one
  // that did not fit stays unread): receive the others with recv(). Otherwise as recv().
  Task<Frame> recv_from(EndpointId sender, Duration timeout = Duration::max());
  // Flushes what is queued, then closes gracefully (see StreamSocket::close).
  Task<void> close();
  // The socket, for its options and for sending; once this stream has received, do not receive from the
  // socket directly (the stream's armed receive takes the bytes).
  StreamSocket& stream() noexcept { return stream_; }
  // Whether the receive is a multishot one (false before the first receive, and where the kernel lacks it).
  bool multishot() const noexcept { return receiver_ != nullptr && receiver_->multishot(); }
  // The node this connection's frames come from, once known.
  std::optional<std::uint32_t> peer_node() const noexcept { return peer_node_; }
  // Bytes of received frames waiting in the stash.
  std::size_t stashed_bytes() const noexcept { return stash_.bytes(); }
  // Bytes received and not yet returned as a frame (a partial frame, or whole ones not yet asked for), and
  // the receive buffer's size (at most the maximum frame and one receive chunk).
  std::size_t received_bytes() const noexcept { return end_ - begin_ - consumed_; }
  std::size_t receive_capacity() const noexcept { return capacity_; }

 private:
  friend class FramedServer;
  // Counts received_bytes() in `budget` from now on, until leave_budget() or the stream's end (FramedServer's
  // bound on the bytes all its connections hold).
  void join_budget(detail::ReceiveBudget* budget) noexcept {
    seat_.join(budget);
    seat_.set(received_bytes());
  }
  void leave_budget() noexcept { seat_.leave(); }

  Task<Frame> receive(std::optional<EndpointId> sender, Duration timeout);
  bool accept_frame(const ParseResult& r, std::optional<EndpointId> sender);
  Duration prepare_wait(std::size_t needed, std::int64_t deadline, bool& frame_deadline);
  void drop_returned() noexcept;
  void grow_to(std::size_t bytes);
  void take(const Chunk& chunk, std::size_t needed);
  [[noreturn]] void incomplete_frame(std::size_t needed) const;

  StreamSocket stream_;
  // Declared after stream_, so that it goes first: a receive armed on the socket is cancelled before the
  // socket closes.
  std::unique_ptr<StreamReceiver> receiver_;
  RecvOptions recv_options_;
  EndpointId self_;
  std::uint32_t max_payload_;
  std::optional<std::uint32_t> peer_node_;
  std::unique_ptr<std::byte[]> buffer_;  // received bytes
  std::size_t capacity_ = 0;
  std::size_t begin_ = 0;     // first unread byte
  std::size_t end_ = 0;       // one past the last received byte
  std::size_t consumed_ = 0;  // bytes of the frame the last receive returned from buffer_, dropped next time
  detail::RecvStash stash_;   // frames from other senders, in order (a frame's type is a record's tag)
  std::int64_t complete_ns_;  // frame_complete_timeout in ns (INT64_MAX: none)
  std::int64_t last_recv_ns_ = 0;    // when the last bytes arrived (read only with a complete timeout)
  std::int64_t frame_start_ns_ = 0;  // when the first byte of the frame at begin_ arrived
  bool frame_start_known_ = false;
  detail::BudgetSeat seat_;
  bool append(std::uint16_t type, std::span<const std::byte> payload) noexcept;
  void check_size(std::size_t payload) const;
  Task<void> send_queued();
  Task<void> queue_after_flush(std::uint16_t type, std::span<const std::byte> payload);

  // One sender at a time: the send buffer is one, and bytes of a frame that waits for room must not be
  // overwritten or overtaken by the next.
  Semaphore send_turn_{1};

  std::unique_ptr<std::byte[]> send_buffer_;  // queued frames, sent with one send
  std::size_t send_capacity_;
  std::size_t out_used_ = 0;
};

static_assert(SelectiveReceiver<FramedStream>);

}  // namespace moirai::transport
