// Stream sockets (TCP, and Unix stream sockets for "unix:PATH" addresses) through the shard's ring: connect
// (with a timeout, and retries with backoff), accept, send and receive are io_uring requests whose
// completions resume the waiting task on its own shard; no shard blocks in a socket call. TCP streams have
// TCP_NODELAY on: a latency-bound service does not want Nagle's delay.
//
// Set-up calls (socket, bind, listen) are plain syscalls: they happen once, off the hot path.
#pragma once

#include <chrono>
#include <cstddef>
#include <span>
#include <string>
#include <utility>

#include "moirai/core/clock.hpp"
#include "moirai/core/sync.hpp"
#include "moirai/core/task.hpp"
#include "moirai/transport/socket_address.hpp"

namespace moirai::transport {

class SendBuffer;

struct RetryPolicy {
  unsigned attempts = 1;                                // connection attempts in all (1: no retry)
  std::chrono::nanoseconds initial_backoff{1'000'000};  // wait before the second attempt; doubles each time
  std::chrono::nanoseconds max_backoff{100'000'000};
};

// How a TCP connection notices a peer that vanished without a FIN or a reset (power loss, a cable pulled, a
// NAT that forgot it): keepalive probes after `keepalive_idle` of silence, every `keepalive_interval`, and
// the connection is dropped after `keepalive_count` unanswered ones; TCP_USER_TIMEOUT drops it when data it
// sent (or a probe) stays unacknowledged for `user_timeout`. The defaults find a dead peer within about
// 50 s. The keepalive figures take the kernel's bounds (see StreamSocket::set_keepalive); a zero user timeout
// leaves the kernel's default. Unix sockets ignore all of this.
struct TcpLiveness {
  bool keepalive = true;
  std::chrono::seconds keepalive_idle{30};
  std::chrono::seconds keepalive_interval{5};
  unsigned keepalive_count = 4;
  std::chrono::milliseconds user_timeout{50'000};
};

class StreamSocket {
 public:
  StreamSocket() noexcept = default;
  explicit StreamSocket(int fd) noexcept : fd_(fd) {}
  StreamSocket(StreamSocket&& o) noexcept
      : fd_(std::exchange(o.fd_, -1)), zero_copy_refused_(std::exchange(o.zero_copy_refused_, false)) {}
  StreamSocket& operator=(StreamSocket&& o) noexcept;
  StreamSocket(const StreamSocket&) = delete;
  StreamSocket& operator=(const StreamSocket&) = delete;
  ~StreamSocket();

  // Connects to `to` within `timeout` per attempt, retrying refused, timed-out and unreachable attempts (a
  // link that is down comes back) as `retry` says. Throws TransportError(connection_refused), (timeout),
  // (unreachable) or (closed, naming the errno) when every attempt failed.
  // TCP connections get `liveness` set.
  static Task<StreamSocket> connect(SocketAddress to, Duration timeout = std::chrono::seconds(1),
                                    RetryPolicy retry = {}, TcpLiveness liveness = {});

  // set_keepalive() (or keepalive off) and set_user_timeout() on a TCP socket, as `liveness` says (a Unix
  // socket is left as it is). Throws as they do.
  void set_liveness(const TcpLiveness& liveness);

  // Up to buf.size() bytes; 0 when the peer has closed its side. Throws TransportError(connection_reset) or
  // (closed) on an error, (timeout) when nothing arrived within `timeout` (the kernel cancels the receive,
  // so no byte is lost to the timeout).
  Task<std::size_t> recv_some(std::span<std::byte> buf, Duration timeout = Duration::max());
  // All of `data`, in as many sends as the kernel needs. Throws TransportError(connection_reset) when the
  // peer is gone. Several tasks may send on one socket: the sends (this and send(SendBuffer...)) take turns
  // in call order, each whole, so the peer reads each one's bytes together. `more`: more data follows at once
  // (MSG_MORE), so the kernel may hold a TCP segment for it. A send that finds room in the socket's buffer is
  // one non-blocking syscall and does not suspend the task (Shard::take_inline_io); the rest goes through the
  // ring.
  Task<void> send_all(std::span<const std::byte> data, bool more = false);
  // The first `bytes` of a registered send buffer (send_buffers.hpp), whole: zero-copy from the registered
  // memory where the pool and the socket allow it (a Unix socket does not: its first refusal makes this
  // socket send plainly from then on), else a plain send. The buffer goes back to its pool when the kernel
  // is done with it. Throws as send_all, or TransportError(invalid_argument) for an empty buffer or `bytes`
  // over its size.
  Task<void> send(SendBuffer buffer, std::size_t bytes);
  // Graceful close: once the sends already waiting for their turn are out, shuts the sending side down (the
  // peer reads end of stream), then closes the socket.
  Task<void> close();

  // ---- liveness (TCP only; plain setsockopt calls, made once at set-up) ----
  // TCP_USER_TIMEOUT: how long sent data may stay unacknowledged (and, with keepalive on, how long probes
  // may go unanswered) before the kernel gives the connection up. The pending or next send or receive then
  // throws TransportError(timeout) "... Connection timed out (no answer from the peer ...)". Without it a
  // send into a cut link sits in the kernel's buffer while TCP retransmits, about 15 minutes by default
  // (net.ipv4.tcp_retries2), and a full send buffer holds send_all() that long. Zero restores the kernel's
  // default. Throws TransportError(not_supported) on a Unix socket, TransportError(invalid_argument) below
  // zero or over INT_MAX ms.
  void set_user_timeout(std::chrono::milliseconds timeout);
  std::chrono::milliseconds user_timeout() const;
  // SO_KEEPALIVE with TCP_KEEPIDLE, TCP_KEEPINTVL and TCP_KEEPCNT: after `idle` without traffic the kernel
  // probes every `interval`, and drops the connection after `probes` unanswered ones (or at the user
  // timeout, when set), so a side that only receives learns that its peer is gone. The kernel counts in
  // whole seconds: `idle` and `interval` from 1 s to 32767 s, `probes` from 1 to 127, else
  // TransportError(invalid_argument). Throws TransportError(not_supported) on a Unix socket.
  void set_keepalive(std::chrono::seconds idle, std::chrono::seconds interval, int probes);

  int fd() const noexcept { return fd_; }
  bool is_open() const noexcept { return fd_ >= 0; }

 private:
  int fd_ = -1;
  bool zero_copy_refused_ = false;  // the kernel refused a zero-copy send on this socket (EOPNOTSUPP)
  // The turn to send: send_all() and send() take it in call order and keep it until their last byte is
  // sent, so one that waits in the ring for room is not overtaken and no other send's bytes land inside it.
  // A socket that moves starts with the turn free (move it only while no send is under way).
  Semaphore send_turn_{1};
};

struct ListenOptions {
  int backlog = 1024;
  // SO_REUSEPORT: several listeners (one per shard) bind the same address and the kernel spreads new
  // connections across them by a hash of each connection's addresses, so every shard accepts its own, with
  // no hand-off between shards. Every listener on the address must set it, from the same user.
  bool reuse_port = false;
};

class StreamListener {
 public:
  // Listens on `at` (port 0: the kernel picks one; see local_address()). Throws TransportError naming the
  // address and the errno (EADDRINUSE: something listens there already). A Unix socket's path is removed
  // when the listener closes.
  static StreamListener bind(const SocketAddress& at, int backlog = 1024) {
    ListenOptions o;
    o.backlog = backlog;
    return bind(at, o);
  }
  // The same, with `options`; an address another listener holds without reuse_port (or a reuse_port
  // listener of another user) is EADDRINUSE.
  static StreamListener bind(const SocketAddress& at, const ListenOptions& options);
  StreamListener(StreamListener&& o) noexcept
      : fd_(std::exchange(o.fd_, -1)), unix_path_(std::move(o.unix_path_)) {}
  StreamListener(const StreamListener&) = delete;
  StreamListener& operator=(const StreamListener&) = delete;
  ~StreamListener();

  // The next connection, TCP_NODELAY set.
  Task<StreamSocket> accept();
  SocketAddress local_address() const { return SocketAddress::of_socket(fd_); }
  int fd() const noexcept { return fd_; }
  void close() noexcept;

 private:
  StreamListener(int fd, std::string unix_path) noexcept : fd_(fd), unix_path_(std::move(unix_path)) {}
  int fd_ = -1;
  std::string unix_path_;  // removed at close
};

}  // namespace moirai::transport
