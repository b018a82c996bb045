#include "moirai/transport/datagram_socket.hpp"

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "moirai/core/timer.hpp"
#include "moirai/transport/error.hpp"
#include "socket_error.hpp"

namespace moirai::transport {
namespace {

std::string udp_what(const char* op, const SocketAddress* to) {
  std::string text = "udp ";
  text.append(op);
  if (to != nullptr) text.append(" ").append(to->to_string());
  return text;
}

void set_option(int fd, int level, int name, int value, const char* what) {
  if (setsockopt(fd, level, name, &value, sizeof value) != 0) {
    const int err = errno;
    std::string text = "udp socket option ";
    text.append(what).append(": ").append(std::strerror(err));
    throw TransportError(TransportErrc::not_supported, text);
  }
}

int family_of(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  return ss.ss_family;
}

// An interface given as a name ("lo") or an IPv4 address of it ("127.0.0.1"), for IPv4 options.
void interface_v4(std::string_view interface, ip_mreqn& m, const std::string& what) {
  if (interface.empty()) return;
  const std::string text(interface);
  if (inet_pton(AF_INET, text.c_str(), &m.imr_address) == 1) return;
  m.imr_ifindex = static_cast<int>(if_nametoindex(text.c_str()));
  if (m.imr_ifindex == 0) {
    std::string msg = what;
    msg.append(": there is no interface named \"")
        .append(text)
        .append(
            "\" (give a name from `ip link` or an "
            "IPv4 address of the interface)");
    throw TransportError(TransportErrc::invalid_argument, msg);
  }
}

unsigned interface_v6(std::string_view interface, const std::string& what) {
  if (interface.empty()) return 0;
  const std::string text(interface);
  const unsigned index = if_nametoindex(text.c_str());
  if (index == 0) {
    std::string msg = what;
    msg.append(": there is no interface named \"")
        .append(text)
        .append("\" (IPv6 groups take an interface name)");
    throw TransportError(TransportErrc::invalid_argument, msg);
  }
  return index;
}

}  // namespace

namespace detail {
void fail(int err, const char* op, const SocketAddress* to) {
  throw error_for(err, udp_what(op, to));
}
}  // namespace detail

DatagramSocket DatagramSocket::bind(const SocketAddress& at, const DatagramOptions& options) {
  if (at.family() != AF_INET && at.family() != AF_INET6) {
    throw TransportError(TransportErrc::not_supported,
                         "udp bind to " + at.to_string() + ": UDP needs an IPv4 or IPv6 address (HOST:PORT)");
  }
  const int fd = ::socket(at.family(), SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw detail::error_for(errno, "udp socket");
  try {
    if (options.reuse_address) set_option(fd, SOL_SOCKET, SO_REUSEADDR, 1, "SO_REUSEADDR");
    // The kernel's drop count comes with each datagram (a 4-byte control message; see kernel_drops()).
    set_option(fd, SOL_SOCKET, SO_RXQ_OVFL, 1, "SO_RXQ_OVFL");
    if (::bind(fd, at.data(), at.size()) != 0) {
      std::string what = "udp bind to " + at.to_string();
      if (errno == EADDRINUSE) what.append(" (another socket has that port; pick another, or port 0)");
      throw detail::error_for(errno, what);
    }
    return DatagramSocket(fd, detail::ReceiveEngine::create(fd, detail::ReceiveKind::datagram, options.recv));
  } catch (...) {
    ::close(fd);
    throw;
  }
}

DatagramSocket& DatagramSocket::operator=(DatagramSocket&& o) noexcept {
  if (this != &o) {
    close();
    fd_ = std::exchange(o.fd_, -1);
    engine_ = std::exchange(o.engine_, nullptr);
  }
  return *this;
}

DatagramSocket::~DatagramSocket() {
  close();
}

void DatagramSocket::close() noexcept {
  detail::ReceiveEngine::destroy(std::exchange(engine_, nullptr));
  if (fd_ >= 0) ::close(std::exchange(fd_, -1));
}

void DatagramSocket::connect(const SocketAddress& peer) {
  if (::connect(fd_, peer.data(), peer.size()) != 0)
    throw detail::error_for(errno, "udp connect to " + peer.to_string());
}

DatagramSocket::RecvAwaiter DatagramSocket::recv() {
  return RecvAwaiter(engine_, 0, Duration::zero());
}

DatagramSocket::RecvAwaiter DatagramSocket::recv(Duration timeout) {
  return RecvAwaiter(engine_, deadline_after(timeout), timeout);
}

Datagram DatagramSocket::RecvAwaiter::await_resume() {
  const detail::Received r = inner_.await_resume();
  if (r.bid < 0) [[unlikely]] {
    if (r.res == detail::kTimedOut) throw detail::timeout_error("udp recv", timeout_);
    throw detail::error_for(r.res < 0 ? -r.res : EIO, "udp recv");
  }
  engine_->hold(r.bid);
  std::byte* buf = engine_->bytes(r.bid);
  msghdr& layout = engine_->layout();
  io_uring_recvmsg_out* out = io_uring_recvmsg_validate(buf, r.res, &layout);
  if (out == nullptr) [[unlikely]]
    throw TransportError(TransportErrc::malformed,
                         "udp recv: the kernel returned a datagram buffer too short "
                         "for its own header");
  Datagram d;
  d.sender_name = static_cast<const sockaddr*>(io_uring_recvmsg_name(out));
  d.sender_size = out->namelen < layout.msg_namelen ? out->namelen : layout.msg_namelen;
  d.payload =
      std::span<const std::byte>(static_cast<const std::byte*>(io_uring_recvmsg_payload(out, &layout)),
                                 io_uring_recvmsg_payload_length(out, r.res, &layout));
  d.truncated = (out->flags & MSG_TRUNC) != 0;
  for (cmsghdr* c = io_uring_recvmsg_cmsg_firsthdr(out, &layout); c != nullptr;
       c = io_uring_recvmsg_cmsg_nexthdr(out, &layout, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL) {
      std::uint32_t drops = 0;
      std::memcpy(&drops, CMSG_DATA(c), sizeof drops);
      engine_->note_kernel_drops(drops);
    }
  }
  return d;
}

void DatagramSocket::membership(bool join, std::string_view group, std::string_view interface) {
  std::string g(group);
  if (g.size() >= 2 && g.front() == '[' && g.back() == ']') g = g.substr(1, g.size() - 2);
  std::string what = join ? "join multicast group " : "leave multicast group ";
  what.append(g);
  if (!interface.empty()) what.append(" on interface ").append(interface);
  in_addr a4{};
  in6_addr a6{};
  int rc = 0;
  if (inet_pton(AF_INET, g.c_str(), &a4) == 1) {
    if (!IN_MULTICAST(ntohl(a4.s_addr))) {
      throw TransportError(TransportErrc::invalid_argument,
                           what +
                               ": not a multicast address (IPv4 multicast groups are 224.0.0.0/4; "
                               "239.0.0.0/8 is for local use)");
    }
    ip_mreqn m{};
    m.imr_multiaddr = a4;
    interface_v4(interface, m, what);
    // Only the groups this socket joined: by default (IP_MULTICAST_ALL) Linux gives a socket bound to
    // 0.0.0.0:PORT every group that any socket of the host joined with that port, so a socket that left
    // would go on receiving while another still listens.
    if (join) set_option(fd_, IPPROTO_IP, IP_MULTICAST_ALL, 0, "IP_MULTICAST_ALL");
    rc = setsockopt(fd_, IPPROTO_IP, join ? IP_ADD_MEMBERSHIP : IP_DROP_MEMBERSHIP, &m, sizeof m);
  } else if (inet_pton(AF_INET6, g.c_str(), &a6) == 1) {
    if (!IN6_IS_ADDR_MULTICAST(&a6)) {
      throw TransportError(TransportErrc::invalid_argument,
                           what + ": not a multicast address (IPv6 multicast groups are ff00::/8)");
    }
    ipv6_mreq m{};
    m.ipv6mr_multiaddr = a6;
    m.ipv6mr_interface = interface_v6(interface, what);
    // As IP_MULTICAST_ALL above; the option came with Linux 4.20, and an older kernel keeps its default.
    const int off = 0;
    if (join) setsockopt(fd_, IPPROTO_IPV6, IPV6_MULTICAST_ALL, &off, sizeof off);
    rc = setsockopt(fd_, IPPROTO_IPV6, join ? IPV6_JOIN_GROUP : IPV6_LEAVE_GROUP, &m, sizeof m);
  } else {
    throw TransportError(TransportErrc::invalid_argument,
                         what + ": not a numeric IPv4 or IPv6 address (write e.g. 239.1.2.3 or ff15::1)");
  }
  if (rc != 0) {
    const int err = errno;
    what.append(": ").append(std::strerror(err));
    if (err == ENODEV) what.append(" (no route to the group: name the interface, or add a multicast route)");
    if (err == EADDRNOTAVAIL && !join) what.append(" (this socket had not joined it)");
    if (err == EINVAL || err == EAFNOSUPPORT) what.append(" (does the group's family match the socket's?)");
    throw TransportError(TransportErrc::not_supported, what);
  }
}

void DatagramSocket::join(std::string_view group, std::string_view interface) {
  membership(true, group, interface);
}

void DatagramSocket::leave(std::string_view group, std::string_view interface) {
  membership(false, group, interface);
}

void DatagramSocket::set_multicast_loopback(bool on) {
  if (family_of(fd_) == AF_INET6) {
    set_option(fd_, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, on ? 1 : 0, "IPV6_MULTICAST_LOOP");
  } else {
    set_option(fd_, IPPROTO_IP, IP_MULTICAST_LOOP, on ? 1 : 0, "IP_MULTICAST_LOOP");
  }
}

void DatagramSocket::set_multicast_ttl(int ttl) {
  if (family_of(fd_) == AF_INET6) {
    set_option(fd_, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, ttl, "IPV6_MULTICAST_HOPS");
  } else {
    set_option(fd_, IPPROTO_IP, IP_MULTICAST_TTL, ttl, "IP_MULTICAST_TTL");
  }
}

void DatagramSocket::set_multicast_interface(std::string_view interface) {
  std::string what = "udp multicast interface ";
  what.append(interface);
  if (family_of(fd_) == AF_INET6) {
    set_option(fd_, IPPROTO_IPV6, IPV6_MULTICAST_IF, static_cast<int>(interface_v6(interface, what)),
               "IPV6_MULTICAST_IF");
    return;
  }
  ip_mreqn m{};
  interface_v4(interface, m, what);
  if (setsockopt(fd_, IPPROTO_IP, IP_MULTICAST_IF, &m, sizeof m) != 0) {
    what.append(": ").append(std::strerror(errno));
    throw TransportError(TransportErrc::not_supported, what);
  }
}

}  // namespace moirai::transport
