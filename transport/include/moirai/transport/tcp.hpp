// TCP through the shard's ring: connect (with a timeout, and retries with backoff), accept, send and receive
// are io_uring requests whose completions resume the waiting task on its own shard; no shard blocks in a
// socket call. Streams have TCP_NODELAY on: a latency-bound service does not want Nagle's delay.
//
// Set-up calls (socket, bind, listen) are plain syscalls: they happen once, off the hot path.
#pragma once

#include <chrono>
#include <cstddef>
#include <span>

#include "moirai/core/clock.hpp"
#include "moirai/core/task.hpp"
#include "moirai/transport/socket_address.hpp"

namespace moirai::transport {

struct RetryPolicy {
  unsigned attempts = 1;                                // connection attempts in all (1: no retry)
  std::chrono::nanoseconds initial_backoff{1'000'000};  // wait before the second attempt; doubles each time
  std::chrono::nanoseconds max_backoff{100'000'000};
};

class TcpStream {
 public:
  TcpStream() noexcept = default;
  explicit TcpStream(int fd) noexcept : fd_(fd) {}
  TcpStream(TcpStream&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  TcpStream& operator=(TcpStream&& o) noexcept;
  TcpStream(const TcpStream&) = delete;
  TcpStream& operator=(const TcpStream&) = delete;
  ~TcpStream();

  // Connects to `to` within `timeout` per attempt, retrying refused or timed-out attempts as `retry` says.
  // Throws TransportError(connection_refused), (timeout) or (closed, naming the errno) when every attempt
  // failed.
  static Task<TcpStream> connect(SocketAddress to, Duration timeout = std::chrono::seconds(1),
                                 RetryPolicy retry = {});

  // Up to buf.size() bytes; 0 when the peer has closed its side. Throws TransportError(connection_reset) or
  // (closed) on an error.
  Task<std::size_t> recv_some(std::span<std::byte> buf);
  // All of `data`, in as many sends as the kernel needs. Throws TransportError(connection_reset) when the
  // peer is gone.
  Task<void> send_all(std::span<const std::byte> data);
  // Graceful close: shuts the sending side down (the peer reads end of stream), then closes the socket.
  Task<void> close();

  int fd() const noexcept { return fd_; }
  bool is_open() const noexcept { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

class TcpListener {
 public:
  // Listens on `at` (port 0: the kernel picks one; see local_address()). Throws TransportError naming the
  // address and the errno (EADDRINUSE: something listens there already).
  static TcpListener bind(const SocketAddress& at, int backlog = 1024);
  TcpListener(TcpListener&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  TcpListener(const TcpListener&) = delete;
  TcpListener& operator=(const TcpListener&) = delete;
  ~TcpListener();

  // The next connection, TCP_NODELAY set.
  Task<TcpStream> accept();
  SocketAddress local_address() const { return SocketAddress::of_socket(fd_); }
  void close() noexcept;

 private:
  explicit TcpListener(int fd) noexcept : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace moirai::transport
