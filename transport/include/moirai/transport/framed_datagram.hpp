// Frames over UDP: each datagram is exactly one frame (frame.hpp, docs/wire.md), a 16-byte header naming its
// type and sender and the payload. That gives datagrams what raw UDP lacks: a sender id, so recv_from(sender)
// can take one sender's messages and keep the others, and a check that what arrived is one of ours.
//
// A datagram that is not exactly one acceptable frame (a bad header, a length that disagrees with the
// datagram's, a payload over the maximum, one truncated by a small receive buffer, a sender id from a node
// other than the expected one) is dropped, counted by its reason in DatagramStats and logged at most once a
// second; the socket and every other sender go on. There is no connection to close on UDP, and a hostile
// sender must not be able to end a receive that others depend on.
//
// Sends go through the ring with nothing allocated: a frame of up to 256 bytes is copied into the awaiter and
// sent whole; a larger one gathers the header (built in the awaiter) and the payload (where the caller has
// it) in one sendmsg. Receives are DatagramSocket's: a multishot recvmsg into a
// provided-buffer ring, resumed from the CQE on the socket's shard; a frame's payload is a view of the ring's
// buffer, valid until the next receive.
#pragma once

#include <sys/socket.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <utility>

#include "moirai/core/clock.hpp"
#include "moirai/core/task.hpp"
#include "moirai/transport/datagram_socket.hpp"
#include "moirai/transport/detail/recv_stash.hpp"
#include "moirai/transport/frame.hpp"
#include "moirai/transport/receiver.hpp"

namespace moirai::transport {

// One received frame and the address it came from (views, valid until the next receive on the socket).
struct DatagramFrame {
  EndpointId sender;  // header.sender
  std::span<const std::byte> payload;
  FrameHeader header;
  const sockaddr* sender_name = nullptr;
  socklen_t sender_size = 0;
  // The sender's address (a copy; no allocation): where a reply goes.
  SocketAddress sender_address() const { return SocketAddress::from_native(sender_name, sender_size); }
};

// The largest UDP payload over IPv4, less the frame header.
inline constexpr std::uint32_t kMaxDatagramPayload = 65507 - kFrameHeaderSize;

struct FramedDatagramOptions {
  DatagramOptions socket{};
  // Payload bytes a frame may carry, sent or received. Frames over RecvOptions::buffer_size minus 72 (the
  // kernel's header and the sender's address share the buffer) arrive truncated and are dropped: raise the
  // buffer size with the maximum.
  std::uint32_t max_payload = kMaxDatagramPayload;
  // When set, frames must name this node as their sender's (a connected peer, say); others are dropped as
  // lying about their sender.
  std::optional<std::uint32_t> peer_node;
  // Bytes of frames from other senders that recv_from() keeps for later receives: each frame, header
  // included, and 32 bytes for its sender's address.
  std::size_t stash_bytes = 64 * 1024;
  // One stderr line per dropped datagram, at most one a second (with how many were not logged).
  bool log_drops = true;
};

enum class DropReason : std::uint8_t {
  malformed,     // not a frame of ours, or its length disagrees with the datagram's
  too_large,     // a payload over max_payload
  truncated,     // longer than the receive buffer
  wrong_sender,  // names a node other than peer_node
  kCount,
};
const char* to_string(DropReason r) noexcept;

struct DatagramStats {
  std::uint64_t frames = 0;  // accepted frames received
  std::array<std::uint64_t, static_cast<std::size_t>(DropReason::kCount)> dropped{};
  std::uint64_t dropped_total() const noexcept;
};

namespace detail {
// Frames of up to this many bytes, header included, are copied whole into the send's awaiter and go out as
// one plain send (see FramedSendPrep).
inline constexpr std::size_t kFlatFrameBytes = 256;

// One frame's send. A small frame is copied, header and payload, into `flat` and sent with IORING_OP_SEND
// (to the connected peer, or to `to` where the kernel takes an address there: Linux 6.0): the kernel then
// copies in no msghdr and no iovec, which on loopback UDP costs more than the copy. Other frames go in one
// sendmsg of two pieces, the header built here and the payload where it is.
//
// `flat`, `iov` and `msg` are scratch that operator() fills in the awaiter's final place: they are left
// uninitialised, and a move carries only what the send is, so no send pays for zeroing or moving 256 bytes.
struct FramedSendPrep {
  FramedSendPrep(int socket, const SocketAddress* dest, const FrameHeader& h,
                 std::span<const std::byte> body) noexcept
      : fd(socket), to(dest), payload(body) {
    write_frame_header(h, header);
  }
  FramedSendPrep(FramedSendPrep&& o) noexcept : fd(o.fd), to(o.to), header(o.header), payload(o.payload) {}
  FramedSendPrep& operator=(FramedSendPrep&&) = delete;

  int fd;
  const SocketAddress* to;  // null: the connected peer
  std::array<std::byte, kFrameHeaderSize> header;
  std::span<const std::byte> payload;
  iovec iov[2];
  msghdr msg;
  std::array<std::byte, kFlatFrameBytes> flat;
  void operator()(io_uring_sqe* sqe) noexcept;
  int try_inline() noexcept;

 private:
  bool fits_flat() const noexcept { return header.size() + payload.size() <= flat.size(); }
  void fill_flat() noexcept;
  void fill_msg() noexcept;
};
// Whether IORING_OP_SEND takes a destination address on this kernel (Linux 6.0 and later; the ring's probe
// lists opcodes, not their fields, so the kernel's release says).
bool send_takes_address() noexcept;
}  // namespace detail

class FramedDatagramSocket {
 public:
  // A UDP socket bound to `at` that writes `self` as the sender of every frame it sends. Throws
  // TransportError as DatagramSocket::bind does, or (invalid_argument) for a max_payload over
  // kMaxDatagramPayload. On a shard.
  static FramedDatagramSocket bind(const SocketAddress& at, EndpointId self,
                                   const FramedDatagramOptions& options = {});

  FramedDatagramSocket(FramedDatagramSocket&&) noexcept = default;
  FramedDatagramSocket& operator=(FramedDatagramSocket&&) noexcept = default;

  // Fixes the peer: send() goes there and only its datagrams are received (see DatagramSocket::connect).
  void connect(const SocketAddress& peer) { socket_.connect(peer); }
  SocketAddress local_address() const { return socket_.local_address(); }

  // What co_await send_to(...) and co_await send(...) wait on: the frame's send through the ring (or made at
  // once, see core/io.hpp's inline sends). co_await gives the bytes sent, header included.
  class [[nodiscard]] SendAwaiter : public detail::SendAwaiter<detail::FramedSendPrep> {
    friend class FramedDatagramSocket;
    SendAwaiter(detail::FramedSendPrep prep, const SocketAddress* to) noexcept
        : detail::SendAwaiter<detail::FramedSendPrep>(std::move(prep), to != nullptr ? "send to" : "send",
                                                      to) {}
  };
  // One frame of `type` with `payload` to `to` (which must live until the send completes, as a temporary in
  // the co_await expression does), or to the connected peer. Throw TransportError(message_too_large), with
  // nothing sent, for a payload over the maximum, or the socket's send errors.
  SendAwaiter send_to(const SocketAddress& to, std::uint16_t type, std::span<const std::byte> payload) {
    return send_frame(&to, type, payload);
  }
  SendAwaiter send(std::uint16_t type, std::span<const std::byte> payload) {
    return send_frame(nullptr, type, payload);
  }

  // The next frame (frames kept by recv_from() first, oldest first), dropping and counting datagrams that are
  // not acceptable frames. Throws TransportError(timeout) when none arrives within `timeout`, or the
  // socket's receive errors.
  Task<DatagramFrame> recv(Duration timeout = Duration::max());
  // The next frame from `sender`; frames from others are kept, in order, for later receives. When one would
  // need more than stash_bytes, throws TransportError(message_too_large) and keeps it too (it is the next
  // recv()'s, behind the stashed ones): receive the others with recv(). Otherwise as recv().
  Task<DatagramFrame> recv_from(EndpointId sender, Duration timeout = Duration::max());

  const DatagramStats& stats() const noexcept { return stats_; }
  // Bytes of frames waiting in the stash.
  std::size_t stashed_bytes() const noexcept { return stash_.bytes(); }
  DatagramSocket& socket() noexcept { return socket_; }
  EndpointId self() const noexcept { return self_; }
  void close() noexcept { socket_.close(); }

 private:
  FramedDatagramSocket(DatagramSocket socket, EndpointId self, const FramedDatagramOptions& options);
  SendAwaiter send_frame(const SocketAddress* to, std::uint16_t type, std::span<const std::byte> payload);
  Task<DatagramFrame> receive(std::optional<EndpointId> sender, Duration timeout);
  // The frame in `d`, or nullopt after counting why it was dropped.
  std::optional<DatagramFrame> accept(const Datagram& d);
  void drop(DropReason why, const Datagram& d, std::size_t bytes);
  bool keep(const DatagramFrame& f);

  DatagramSocket socket_;
  EndpointId self_;
  std::uint32_t max_payload_;
  std::optional<std::uint32_t> peer_node_;
  bool log_drops_;
  // Frames from other senders, in order: a frame's type is a record's tag, its sender's address the prefix.
  detail::RecvStash stash_;
  // A frame recv_from() could not stash: still in its receive buffer (the socket gives that back only at its
  // next receive, which waits until this one is taken).
  std::optional<DatagramFrame> held_back_;
  DatagramStats stats_;
  std::int64_t last_log_ns_ = 0;
  std::uint64_t unlogged_ = 0;
};

static_assert(SelectiveReceiver<FramedDatagramSocket>);

}  // namespace moirai::transport
