// UDP sockets (IPv4 and IPv6) through the shard's ring: unicast to any address or to a connected peer, and
// multicast (join and leave a group on an interface; loopback, TTL and outgoing interface as options).
//
// Receive is completion-driven: one multishot recvmsg stays armed on the socket, each datagram lands in a
// buffer of a provided-buffer ring with its sender's address, and `co_await recv()` is resumed from the CQE
// on the socket's shard (see detail/receive_engine.hpp for the fallback where the kernel lacks it). A
// datagram's bytes are the ring's buffer itself, valid until the next recv(); nothing is copied or allocated
// per datagram.
//
// UDP may lose datagrams, and this socket says so rather than hiding it: the kernel drops what arrives while
// the socket's receive buffer is full (SO_RCVBUF), which happens when the application holds every receive
// buffer and reads too slowly. kernel_drops() reports the kernel's count (SO_RXQ_OVFL), as of the last
// datagram received. Order is kept on one socket between one sender and one receiver on one host (loopback),
// not promised across a network.
//
// Raw UDP has no sender ids, only addresses: DatagramSocket is a Receiver (receiver.hpp) and has no
// recv_from(sender). FramedDatagramSocket puts a frame header, with the sender's id, at the front of each
// datagram and receives by sender.
//
// Sends are plain IORING_OP_SEND/SENDMSG: zero-copy sends, from a registered buffer or not, cost 25-30% more
// for a 64-byte datagram here (bench/udp_send_bench.cpp has the figures and how they were taken).
//
// A socket belongs to the shard that made it: use and destroy it there. Set-up calls (socket, bind, connect,
// setsockopt) are plain syscalls; sends and receives go through the ring.
#pragma once

#include <liburing.h>
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <utility>

#include "moirai/core/clock.hpp"
#include "moirai/core/io.hpp"
#include "moirai/core/task.hpp"
#include "moirai/transport/detail/receive_engine.hpp"
#include "moirai/transport/detail/send_now.hpp"
#include "moirai/transport/error.hpp"
#include "moirai/transport/receiver.hpp"
#include "moirai/transport/recv_options.hpp"
#include "moirai/transport/socket_address.hpp"

namespace moirai::transport {

class SendBuffer;

// One received datagram: a view of its bytes in the receive buffer (valid until the next recv() on the same
// socket) and of its sender's address.
struct Datagram {
  std::span<const std::byte> payload;
  bool truncated = false;  // longer than the buffer; `payload` is its first part (see RecvOptions)
  const sockaddr* sender_name = nullptr;
  socklen_t sender_size = 0;
  // The sender's address (a copy; no allocation): where a reply goes.
  SocketAddress sender_address() const { return SocketAddress::from_native(sender_name, sender_size); }
};

struct DatagramOptions {
  RecvOptions recv{};
  // SO_REUSEADDR: several sockets on one port, as multicast receivers want.
  bool reuse_address = false;
};

namespace detail {
[[noreturn]] void fail(int err, const char* op, const SocketAddress* to);

// A send: throws TransportError naming the operation and address on failure, else gives the bytes sent.
template <class Prep>
class [[nodiscard]] SendAwaiter : public IoAwaiter<Prep> {
 public:
  SendAwaiter(Prep prep, const char* op, const SocketAddress* to) noexcept
      : IoAwaiter<Prep>(std::move(prep)), op_(op), to_(to) {}
  std::size_t await_resume() {
    const int res = IoAwaiter<Prep>::await_resume();
    if (res < 0) [[unlikely]]
      fail(-res, op_, to_);
    return static_cast<std::size_t>(res);
  }

 private:
  const char* op_;
  const SocketAddress* to_;
};

struct SendToPrep {
  int fd;
  const SocketAddress* to;
  std::span<const std::byte> data;
  msghdr msg{};
  iovec iov{};
  void operator()(io_uring_sqe* sqe) noexcept {
    // Filled here, in the awaiter's final place: the kernel reads msg until the send is issued.
    iov.iov_base = const_cast<std::byte*>(data.data());
    iov.iov_len = data.size();
    msg.msg_name = const_cast<sockaddr*>(to->data());
    msg.msg_namelen = to->size();
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    io_uring_prep_sendmsg(sqe, fd, &msg, 0);
  }
  int try_inline() noexcept { return send_now(fd, data.data(), data.size(), 0, to->data(), to->size()); }
};
struct SendPrep {
  int fd;
  std::span<const std::byte> data;
  void operator()(io_uring_sqe* sqe) const noexcept {
    io_uring_prep_send(sqe, fd, data.data(), data.size(), 0);
  }
  int try_inline() noexcept { return send_now(fd, data.data(), data.size(), 0); }
};
}  // namespace detail

class DatagramSocket {
 public:
  // A UDP socket bound to `at` (port 0: the kernel picks; see local_address()). Bind 0.0.0.0:0 or [::]:0 for
  // a socket that only sends. Throws TransportError naming the address and the errno. On a shard.
  static DatagramSocket bind(const SocketAddress& at, const DatagramOptions& options = {});

  DatagramSocket() noexcept = default;
  DatagramSocket(DatagramSocket&& o) noexcept
      : fd_(std::exchange(o.fd_, -1)), engine_(std::exchange(o.engine_, nullptr)) {}
  DatagramSocket& operator=(DatagramSocket&& o) noexcept;
  DatagramSocket(const DatagramSocket&) = delete;
  DatagramSocket& operator=(const DatagramSocket&) = delete;
  ~DatagramSocket();

  // Fixes the peer: send() goes there, and only its datagrams are received. A plain syscall (UDP connect
  // sends nothing). Throws TransportError naming the peer.
  void connect(const SocketAddress& peer);
  SocketAddress local_address() const { return SocketAddress::of_socket(fd_); }

  // What co_await send_to(...) and co_await send(...) wait on: the send through the ring (or made at once,
  // see core/io.hpp's inline sends). co_await gives the bytes sent, or throws as the sends say.
  class [[nodiscard]] SendToAwaiter : public detail::SendAwaiter<detail::SendToPrep> {
    friend class DatagramSocket;
    SendToAwaiter(int fd, const SocketAddress& to, std::span<const std::byte> bytes) noexcept
        : detail::SendAwaiter<detail::SendToPrep>(detail::SendToPrep{fd, &to, bytes}, "send to", &to) {}
  };
  class [[nodiscard]] SendAwaiter : public detail::SendAwaiter<detail::SendPrep> {
    friend class DatagramSocket;
    SendAwaiter(int fd, std::span<const std::byte> bytes) noexcept
        : detail::SendAwaiter<detail::SendPrep>(detail::SendPrep{fd, bytes}, "send", nullptr) {}
  };
  // One datagram to `to` (which must live until the send completes, as a temporary in the co_await
  // expression does). Yields the bytes sent; throws TransportError (e.g. connection_refused after an ICMP
  // port unreachable on a connected socket, closed with the errno otherwise).
  SendToAwaiter send_to(const SocketAddress& to, std::span<const std::byte> bytes) noexcept {
    return SendToAwaiter(fd_, to, bytes);
  }
  // One datagram to the connected peer.
  SendAwaiter send(std::span<const std::byte> bytes) noexcept { return SendAwaiter(fd_, bytes); }
  // One datagram of the first `bytes` of a registered send buffer (send_buffers.hpp) to the connected peer:
  // zero-copy from the registered memory where the pool allows, else a plain send; the buffer goes back to
  // its pool when the kernel is done with it. Yields the bytes sent; throws as send(), or
  // TransportError(invalid_argument) for an empty buffer or `bytes` over its size. For large datagrams
  // leaving through a NIC: a small one costs more this way (see above).
  Task<std::size_t> send(SendBuffer buffer, std::size_t bytes);

  class [[nodiscard]] RecvAwaiter : public detail::ReceiveAwaiterBase {
   public:
    Datagram await_resume();

   private:
    friend class DatagramSocket;
    using ReceiveAwaiterBase::ReceiveAwaiterBase;
  };
  // The next datagram. The previous one's bytes are given back to the ring here. Throws
  // TransportError(timeout) when none arrives within `timeout`, or the error the kernel reported, or
  // (not_supported) while another task already waits on this socket (one receiver at a time).
  RecvAwaiter recv();
  RecvAwaiter recv(Duration timeout);

  // ---- multicast ----
  // Joins `group` (a numeric IPv4 or IPv6 multicast address, no port) on `interface`: a name ("lo",
  // "eth0"), an IPv4 address of the interface ("127.0.0.1"), or empty for the kernel's choice. Throws
  // TransportError naming the group and the errno, or saying that the address is not a multicast one.
  // A socket that joined receives the groups it joined itself and no others (IP_MULTICAST_ALL off), also
  // when other sockets of the host share its port; once it left, it receives none of that group's.
  void join(std::string_view group, std::string_view interface = {});
  void leave(std::string_view group, std::string_view interface = {});
  // Whether this host's own multicast sends come back to its sockets (IP_MULTICAST_LOOP; on by default).
  void set_multicast_loopback(bool on);
  // Hops a multicast datagram may take (IP_MULTICAST_TTL / IPV6_MULTICAST_HOPS; 1 by default: this subnet).
  void set_multicast_ttl(int ttl);
  // The interface multicast sends leave by (a name, or an IPv4 address of the interface).
  void set_multicast_interface(std::string_view interface);

  // How many datagrams the kernel dropped on this socket for want of receive-buffer room, as of the last
  // datagram received (SO_RXQ_OVFL counts them; the kernel reports the count with the next datagram).
  std::uint32_t kernel_drops() const noexcept { return engine_ ? engine_->kernel_drops() : 0; }
  // True when receives are multishot into a provided-buffer ring; false on the one-shot fallback.
  bool multishot() const noexcept { return engine_ != nullptr && engine_->multishot(); }
  // Times the multishot receive ran out of buffers and was re-armed.
  std::uint64_t rearms_after_enobufs() const noexcept {
    return engine_ ? engine_->rearms_after_enobufs() : 0;
  }

  int fd() const noexcept { return fd_; }
  bool is_open() const noexcept { return fd_ >= 0; }
  // Cancels the receive and closes the socket (also done by the destructor).
  void close() noexcept;

 private:
  DatagramSocket(int fd, detail::ReceiveEngine* engine) noexcept : fd_(fd), engine_(engine) {}
  void membership(bool join, std::string_view group, std::string_view interface);
  int fd_ = -1;
  detail::ReceiveEngine* engine_ = nullptr;
};

static_assert(Receiver<DatagramSocket>);

}  // namespace moirai::transport
