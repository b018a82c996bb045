// The socket baselines: two pinned threads with a connected pair of loopback sockets, doing their io with
// plain non-blocking syscalls or through a raw io_uring each.
#include <fcntl.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "baselines.hpp"
#include "moirai/core/cpu_relax.hpp"
#include "pinned_threads.hpp"

namespace moirai::cli {
namespace {

using namespace baselines;

// Closes an fd when it goes out of scope.
struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

int checked(int rc, const char* what) {
  if (rc < 0) throw std::runtime_error(std::string("socket baseline: ") + what + ": " + std::strerror(errno));
  return rc;
}

// Two connected sockets of `kind` over loopback, both non-blocking.
std::pair<int, int> connected_pair(SocketKind kind) {
  int a = -1;
  int b = -1;
  if (kind == SocketKind::unix_stream) {
    int sv[2];
    checked(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), "socketpair");
    a = sv[0];
    b = sv[1];
  } else {
    const int type = kind == SocketKind::tcp ? SOCK_STREAM : SOCK_DGRAM;
    sockaddr_in any{};
    any.sin_family = AF_INET;
    any.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    auto bound = [&](int fd) {
      checked(::bind(fd, reinterpret_cast<const sockaddr*>(&any), sizeof any), "bind");
      sockaddr_in at{};
      socklen_t len = sizeof at;
      checked(::getsockname(fd, reinterpret_cast<sockaddr*>(&at), &len), "getsockname");
      return at;
    };
    if (kind == SocketKind::tcp) {
      Fd listener(checked(::socket(AF_INET, type | SOCK_CLOEXEC, 0), "socket"));
      const sockaddr_in at = bound(listener.fd);
      checked(::listen(listener.fd, 1), "listen");
      a = checked(::socket(AF_INET, type | SOCK_CLOEXEC, 0), "socket");
      checked(::connect(a, reinterpret_cast<const sockaddr*>(&at), sizeof at), "connect");
      b = checked(::accept4(listener.fd, nullptr, nullptr, SOCK_CLOEXEC), "accept");
      const int one = 1;
      ::setsockopt(a, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      ::setsockopt(b, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    } else {
      a = checked(::socket(AF_INET, type | SOCK_CLOEXEC, 0), "socket");
      b = checked(::socket(AF_INET, type | SOCK_CLOEXEC, 0), "socket");
      const sockaddr_in at_a = bound(a);
      const sockaddr_in at_b = bound(b);
      checked(::connect(a, reinterpret_cast<const sockaddr*>(&at_b), sizeof at_b), "connect");
      checked(::connect(b, reinterpret_cast<const sockaddr*>(&at_a), sizeof at_a), "connect");
    }
  }
  for (int fd : {a, b})
    checked(::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK), "fcntl(O_NONBLOCK)");
  return {a, b};
}

// Spins on recv until `n` bytes (one datagram, for UDP) have arrived; false at end of stream or on a stop
// datagram (shorter than a message).
bool recv_spinning(int fd, std::byte* buf, std::size_t n, bool datagram) {
  std::size_t got = 0;
  while (got < n) {
    const ssize_t r = ::recv(fd, buf + got, n - got, MSG_DONTWAIT);
    if (r > 0) {
      if (datagram) return static_cast<std::size_t>(r) == n;
      got += static_cast<std::size_t>(r);
    } else if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
      return false;
    } else {
      cpu_relax();
    }
  }
  return true;
}

void send_whole(int fd, const std::byte* buf, std::size_t n) {
  std::size_t sent = 0;
  while (sent < n) {
    const ssize_t r = ::send(fd, buf + sent, n - sent, MSG_NOSIGNAL);
    if (r > 0) {
      sent += static_cast<std::size_t>(r);
    } else if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      return;
    }
  }
}

// The socket baselines' two ways of doing io: plain non-blocking syscalls spinning on recv, or a raw
// io_uring of the thread's own, set up as Moirai's shards set theirs up (SINGLE_ISSUER | DEFER_TASKRUN |
// TASKRUN_FLAG where the kernel takes them), a one-shot recv or send per request, spinning on the CQ and
// entering the kernel only when it flags deferred work. The second is what any io_uring program pays before a
// line of framework runs: the floor for Moirai's own rows.
struct SyscallIo {
  bool recv(int fd, std::byte* buf, std::size_t n, bool datagram) {
    return recv_spinning(fd, buf, n, datagram);
  }
  void send(int fd, const std::byte* buf, std::size_t n) { send_whole(fd, buf, n); }
};

class RawRingIo {
 public:
  RawRingIo() {
    io_uring_params p{};
    p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_TASKRUN_FLAG;
    if (io_uring_queue_init_params(64, &ring_, &p) < 0) {
      io_uring_params plain{};
      const int rc = io_uring_queue_init_params(64, &ring_, &plain);
      if (rc < 0) throw std::runtime_error(std::string("raw io_uring baseline: ") + std::strerror(-rc));
    }
  }
  ~RawRingIo() { io_uring_queue_exit(&ring_); }
  RawRingIo(const RawRingIo&) = delete;
  RawRingIo& operator=(const RawRingIo&) = delete;

  bool recv(int fd, std::byte* buf, std::size_t n, bool datagram) {
    std::size_t got = 0;
    while (got < n) {
      io_uring_prep_recv(sqe(), fd, buf + got, n - got, 0);
      const int r = complete();
      if (r <= 0) return false;
      if (datagram) return static_cast<std::size_t>(r) == n;
      got += static_cast<std::size_t>(r);
    }
    return true;
  }
  void send(int fd, const std::byte* buf, std::size_t n) {
    std::size_t sent = 0;
    while (sent < n) {
      io_uring_prep_send(sqe(), fd, buf + sent, n - sent, MSG_NOSIGNAL);
      const int r = complete();
      if (r <= 0) return;
      sent += static_cast<std::size_t>(r);
    }
  }

 private:
  io_uring_sqe* sqe() { return io_uring_get_sqe(&ring_); }  // one request at a time: never null
  // Submits the one request and spins until its CQE.
  int complete() {
    io_uring_submit(&ring_);
    for (;;) {
      io_uring_cqe* cqe = nullptr;
      if (io_uring_peek_cqe(&ring_, &cqe) == 0) {
        const int res = cqe->res;
        io_uring_cqe_seen(&ring_, cqe);
        return res;
      }
      if ((IO_URING_READ_ONCE(*ring_.sq.kflags) & (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW)) != 0) {
        io_uring_get_events(&ring_);
      } else {
        cpu_relax();
      }
    }
  }
  io_uring ring_{};
};

template <class Io>
void socket_spin(SocketKind kind, int cpu_a, int cpu_b, std::size_t bytes, const RunBudget& budget,
                 LatencyHistogram& hist) {
  check_two_cpus(cpu_a, cpu_b, "the socket baseline");
  const auto [fa, fb] = connected_pair(kind);
  Fd a(fa);
  Fd b(fb);
  const bool datagram = kind == SocketKind::udp;

  PinnedThread responder(cpu_b, Policy::time_shared, [&b, bytes, datagram] {
    Io io;
    std::vector<std::byte> buf(bytes);
    while (io.recv(b.fd, buf.data(), bytes, datagram))
      io.send(b.fd, buf.data(), bytes);
  });

  PinnedThread initiator(cpu_a, Policy::time_shared, [&a, bytes, datagram, &budget, &hist] {
    Io io;
    std::vector<std::byte> out(bytes, std::byte{0x5a});
    std::vector<std::byte> in(bytes);
    bool peer_gone = false;
    time_round_trips(budget, hist, [&] {
      io.send(a.fd, out.data(), bytes);
      peer_gone = !io.recv(a.fd, in.data(), bytes, datagram);
      return !peer_gone;
    });
    if (peer_gone) return;
    // Stop the responder: end of stream, or for UDP a datagram shorter than a message.
    if (datagram) {
      const std::byte stop{0};
      ::send(a.fd, &stop, 1, MSG_NOSIGNAL);
    } else {
      ::shutdown(a.fd, SHUT_WR);
    }
  });

  responder.start();
  initiator.start();
  initiator.join();
  responder.join();
}

}  // namespace

void socket_syscall_spin(SocketKind kind, int cpu_a, int cpu_b, std::size_t bytes, const RunBudget& budget,
                         LatencyHistogram& hist) {
  socket_spin<SyscallIo>(kind, cpu_a, cpu_b, bytes, budget, hist);
}

void socket_raw_ring_spin(SocketKind kind, int cpu_a, int cpu_b, std::size_t bytes, const RunBudget& budget,
                          LatencyHistogram& hist) {
  socket_spin<RawRingIo>(kind, cpu_a, cpu_b, bytes, budget, hist);
}

}  // namespace moirai::cli
