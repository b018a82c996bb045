#include "moirai/transport/socket_address.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <cerrno>
#include <charconv>
#include <cstring>

#include "moirai/transport/error.hpp"

namespace moirai::transport {
namespace {

[[noreturn]] void bad(std::string_view text, const char* why) {
  // A NUL byte is shown as \0: what() is a C string, and would end there.
  std::string shown;
  for (char c : text)
    shown += c == '\0' ? std::string_view("\\0") : std::string_view(&c, 1);
  throw TransportError(
      TransportErrc::malformed,
      "socket address \"" + shown + "\": " + why +
          "; write HOST:PORT with a numeric IPv4 host or localhost, [IPv6]:PORT, PORT or :PORT (loopback), "
          "or unix:PATH");
}

}  // namespace

SocketAddress SocketAddress::parse(std::string_view text) {
  SocketAddress a;
  if (text.substr(0, 5) == "unix:") {
    const std::string_view path = text.substr(5);
    sockaddr_un un{};
    if (path.empty()) bad(text, "the Unix socket path is empty");
    if (path.size() >= sizeof(un.sun_path)) bad(text, "the Unix socket path is longer than 107 bytes");
    // The kernel reads the path up to its first NUL (or, from a leading one, as an abstract name): one inside
    // would bind or connect somewhere other than the text says.
    if (path.find('\0') != std::string_view::npos) bad(text, "the Unix socket path holds a NUL byte");
    un.sun_family = AF_UNIX;
    std::memcpy(un.sun_path, path.data(), path.size());
    std::memcpy(&a.storage_, &un, sizeof un);
    a.size_ = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
    return a;
  }
  // A port alone, or an empty host, means loopback: a listener reaches beyond this host only when told to
  // (0.0.0.0:PORT or [::]:PORT, written out).
  if (!text.empty() && text.find_first_not_of("0123456789") == std::string_view::npos)
    return parse("127.0.0.1:" + std::string(text));
  const std::size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) bad(text, "there is no :PORT");
  std::string host(text.substr(0, colon));
  if (host.empty()) host = "127.0.0.1";
  const std::string_view port_text = text.substr(colon + 1);
  unsigned port = 0;
  const auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc{} || end != port_text.data() + port_text.size() || port > 65535) {
    bad(text, "the port is not a number from 0 to 65535");
  }
  if (host == "localhost") host = "127.0.0.1";
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    sockaddr_in6 in6{};
    in6.sin6_family = AF_INET6;
    in6.sin6_port = htons(static_cast<unsigned short>(port));
    if (inet_pton(AF_INET6, host.substr(1, host.size() - 2).c_str(), &in6.sin6_addr) != 1) {
      bad(text, "the IPv6 host is not a numeric address");
    }
    std::memcpy(&a.storage_, &in6, sizeof in6);
    a.size_ = sizeof in6;
    return a;
  }
  sockaddr_in in{};
  in.sin_family = AF_INET;
  in.sin_port = htons(static_cast<unsigned short>(port));
  if (inet_pton(AF_INET, host.c_str(), &in.sin_addr) != 1)
    bad(text, "the host is not a numeric IPv4 address");
  std::memcpy(&a.storage_, &in, sizeof in);
  a.size_ = sizeof in;
  return a;
}

SocketAddress SocketAddress::loopback(unsigned short port) {
  return parse("127.0.0.1:" + std::to_string(port));
}

unsigned short SocketAddress::port() const noexcept {
  if (storage_.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_port);
  if (storage_.ss_family == AF_INET6)
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_port);
  return 0;
}

std::string SocketAddress::to_string() const {
  char host[INET6_ADDRSTRLEN] = {};
  if (storage_.ss_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr, host, sizeof host);
    return std::string(host) + ":" + std::to_string(port());
  }
  if (storage_.ss_family == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_addr, host, sizeof host);
    std::string out = "[";
    out.append(host).append("]:").append(std::to_string(port()));
    return out;
  }
  if (storage_.ss_family == AF_UNIX)
    return "unix:" + std::string(reinterpret_cast<const sockaddr_un*>(&storage_)->sun_path);
  return "(no address)";
}

SocketAddress SocketAddress::from_native(const sockaddr* name, socklen_t size) noexcept {
  SocketAddress a;
  if (name == nullptr) return a;
  a.size_ = size < sizeof a.storage_ ? size : static_cast<socklen_t>(sizeof a.storage_);
  std::memcpy(&a.storage_, name, a.size_);
  return a;
}

SocketAddress SocketAddress::of_socket(int fd) {
  return read_name(fd, &getsockname, "getsockname");
}

SocketAddress SocketAddress::of_peer(int fd) {
  return read_name(fd, &getpeername, "getpeername");
}

SocketAddress SocketAddress::read_name(int fd, int (*fn)(int, sockaddr*, socklen_t*), const char* what) {
  SocketAddress a;
  a.size_ = sizeof a.storage_;
  if (fn(fd, reinterpret_cast<sockaddr*>(&a.storage_), &a.size_) != 0) {
    throw TransportError(TransportErrc::closed, std::string(what) + ": " + std::strerror(errno));
  }
  return a;
}

}  // namespace moirai::transport
