// Where a socket connects or listens: an IPv4 or IPv6 address and port ("127.0.0.1:9000", "[::1]:9000",
// "localhost:9000"), or a Unix socket path ("unix:/run/feed.sock"). A port alone ("9000", ":9000") is
// 127.0.0.1: nothing listens beyond this host unless the text says so ("0.0.0.0:9000", "[::]:9000"). Parsed
// once, off the hot path; bad text is an error that names it.
#pragma once

#include <sys/socket.h>

#include <string>
#include <string_view>

namespace moirai::transport {

class SocketAddress {
 public:
  // Throws TransportError(malformed) naming the text and the accepted forms. Host names other than
  // "localhost" are not resolved (no DNS on the hot path, nor a blocking resolver on a shard).
  static SocketAddress parse(std::string_view text);
  static SocketAddress loopback(unsigned short port);  // 127.0.0.1:port

  int family() const noexcept { return storage_.ss_family; }
  const sockaddr* data() const noexcept { return reinterpret_cast<const sockaddr*>(&storage_); }
  socklen_t size() const noexcept { return size_; }
  unsigned short port() const noexcept;  // 0 for a Unix socket
  std::string to_string() const;

  // A copy of a kernel socket address (`size` bytes at `name`, at most sizeof(sockaddr_storage)).
  static SocketAddress from_native(const sockaddr* name, socklen_t size) noexcept;

  // The address a bound or connected socket has (getsockname).
  static SocketAddress of_socket(int fd);
  // The address of a connected socket's peer (getpeername).
  static SocketAddress of_peer(int fd);

 private:
  static SocketAddress read_name(int fd, int (*fn)(int, sockaddr*, socklen_t*), const char* what);
  sockaddr_storage storage_{};
  socklen_t size_ = 0;
};

}  // namespace moirai::transport
