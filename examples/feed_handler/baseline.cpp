#include "baseline.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <exception>
#include <thread>
#include <vector>

#include "moirai/core/clock.hpp"
#include "moirai/core/cpu_relax.hpp"
#include "moirai/core/cpu_set.hpp"
#include "moirai/core/error.hpp"
#include "moirai/core/pacer.hpp"
#include "quote.hpp"

namespace moirai::examples::feed {

namespace {

[[noreturn]] void fail(const std::string& what) {
  throw Error(Errc::invalid_argument, "feed baseline: " + what + ": " + std::strerror(errno));
}

in_addr ipv4(const std::string& text, const char* what) {
  in_addr a{};
  if (::inet_pton(AF_INET, text.c_str(), &a) != 1) {
    errno = EINVAL;
    fail(std::string(what) + " " + text + " is not an IPv4 address");
  }
  return a;
}

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

UdpBaselineStats udp_multicast_baseline(const UdpBaselineOptions& o, LatencyHistogram& latency) {
  const in_addr group = ipv4(o.group, "group");
  const in_addr interface = ipv4(o.interface, "interface");

  // The receiver: bound to the group's port, joined on the interface, as the handler's socket is.
  Fd rx;
  rx.fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (rx.fd < 0) fail("socket");
  sockaddr_in at{};
  at.sin_family = AF_INET;
  at.sin_addr.s_addr = htonl(INADDR_ANY);
  if (::bind(rx.fd, reinterpret_cast<const sockaddr*>(&at), sizeof at) != 0) fail("bind");
  socklen_t len = sizeof at;
  if (::getsockname(rx.fd, reinterpret_cast<sockaddr*>(&at), &len) != 0) fail("getsockname");
  ip_mreq join{group, interface};
  if (::setsockopt(rx.fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &join, sizeof join) != 0)
    fail("join " + o.group + " on " + o.interface);
  const int off = 0;
  ::setsockopt(rx.fd, IPPROTO_IP, IP_MULTICAST_ALL, &off, sizeof off);
  const int rcvbuf = 8 << 20;
  ::setsockopt(rx.fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);

  Fd tx;
  tx.fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (tx.fd < 0) fail("socket");
  const int on = 1;
  if (::setsockopt(tx.fd, IPPROTO_IP, IP_MULTICAST_LOOP, &on, sizeof on) != 0) fail("IP_MULTICAST_LOOP");
  if (::setsockopt(tx.fd, IPPROTO_IP, IP_MULTICAST_IF, &interface, sizeof interface) != 0)
    fail("IP_MULTICAST_IF " + o.interface);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_addr = group;
  to.sin_port = at.sin_port;

  UdpBaselineStats st;
  std::atomic<std::uint64_t> sent{0};  // read by the receiver to know when everything has arrived
  std::atomic<bool> sending_done{false};
  std::exception_ptr receiver_error;
  std::thread receiver([&] {
    try {
      pin_current_thread(o.receiver_cpu);
      std::array<std::byte, kMaxPacketSize> buf;
      std::int64_t quiet_since = 0;
      for (;;) {
        const ssize_t n = ::recv(rx.fd, buf.data(), buf.size(), MSG_DONTWAIT);
        if (n > 0) {
          const std::int64_t now = monotonic_ns();
          const PacketView p =
              decode_packet(std::span<const std::byte>(buf.data(), static_cast<std::size_t>(n)));
          if (p.status == PacketStatus::ok) {
            const std::int64_t intended = p.quote(0).sent_ns;
            latency.record(static_cast<std::uint64_t>(now > intended ? now - intended : 0));
            ++st.received;
          }
          quiet_since = 0;
          continue;
        }
        // The sender is done: what is still in flight arrives within a few milliseconds.
        if (sending_done.load(std::memory_order_acquire)) {
          const std::int64_t now = monotonic_ns();
          if (quiet_since == 0) quiet_since = now;
          if (st.received == sent.load(std::memory_order_relaxed) || now - quiet_since > 50'000'000) break;
        }
      }
    } catch (...) {
      receiver_error = std::current_exception();
      sending_done.store(true);
    }
  });

  std::exception_ptr sender_error;
  std::thread sender([&] {
    try {
      pin_current_thread(o.sender_cpu);
    } catch (...) {
      sender_error = std::current_exception();
      return;
    }
    std::vector<Quote> quotes(o.quotes_per_packet);
    for (std::uint32_t i = 0; i < o.quotes_per_packet; ++i) {
      quotes[i].symbol = i % o.symbols;
      quotes[i].bid = 1'000'000;
      quotes[i].ask = 1'000'100;
      quotes[i].bid_size = quotes[i].ask_size = 100;
    }
    std::array<std::byte, kMaxPacketSize> packet;
    const double step_ns = 1e9 * o.burst * o.quotes_per_packet / o.rate;
    WakeMargin margin;
    const std::int64_t start = monotonic_ns();
    const std::int64_t end = start + static_cast<std::int64_t>(o.seconds * 1e9);
    std::uint64_t seq = 1;
    for (std::uint64_t step = 0; !sending_done.load(std::memory_order_relaxed); ++step) {
      const auto intended = start + static_cast<std::int64_t>(static_cast<double>(step) * step_ns);
      if (intended >= end) break;
      pace_thread_until(intended, margin);  // the generator's pacing, off a shard
      if (monotonic_ns() > intended + static_cast<std::int64_t>(step_ns)) ++st.behind;
      for (unsigned b = 0; b < o.burst; ++b) {
        for (Quote& q : quotes)
          q.sent_ns = intended;
        const std::size_t n = write_packet(seq, quotes, packet);
        if (::sendto(tx.fd, packet.data(), n, 0, reinterpret_cast<const sockaddr*>(&to), sizeof to) ==
            static_cast<ssize_t>(n)) {
          sent.fetch_add(1, std::memory_order_relaxed);
        }
        seq += o.quotes_per_packet;
      }
    }
    sending_done.store(true, std::memory_order_release);
  });
  sender.join();
  sending_done.store(true, std::memory_order_release);
  receiver.join();
  st.sent = sent.load();
  if (receiver_error) std::rethrow_exception(receiver_error);
  if (sender_error) std::rethrow_exception(sender_error);
  return st;
}

}  // namespace moirai::examples::feed
