#include "moirai/transport/stream_socket.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <string>

#include "moirai/core/io.hpp"
#include "moirai/core/timer.hpp"
#include "moirai/transport/detail/send_now.hpp"
#include "moirai/transport/error.hpp"
#include "socket_error.hpp"

namespace moirai::transport {
namespace {

using detail::error_for;

void set_nodelay(int fd) noexcept {
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

int new_socket(int family) {
  const int fd = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw error_for(errno, "socket");
  return fd;
}

bool is_tcp(int fd) noexcept {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  return getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0 &&
         (ss.ss_family == AF_INET || ss.ss_family == AF_INET6);
}

void set_int_option(int fd, int level, int name, long long value, const char* what) {
  const int v = static_cast<int>(value);
  if (setsockopt(fd, level, name, &v, sizeof v) != 0)
    throw error_for(errno, std::string("setsockopt ") + what);
}

Task<int> connect_once(int fd, const SocketAddress& to) {
  co_return co_await io_op(
      [fd, &to](io_uring_sqe* sqe) noexcept { io_uring_prep_connect(sqe, fd, to.data(), to.size()); });
}

}  // namespace

StreamSocket& StreamSocket::operator=(StreamSocket&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(o.fd_, -1);
    zero_copy_refused_ = std::exchange(o.zero_copy_refused_, false);
  }
  return *this;
}

StreamSocket::~StreamSocket() {
  if (fd_ >= 0) ::close(fd_);  // a stream dropped without close(): no graceful shutdown, but no leak
}

void StreamSocket::set_liveness(const TcpLiveness& l) {
  if (!is_tcp(fd_)) return;  // a Unix socket has no peer that can vanish unseen
  if (l.keepalive) {
    set_keepalive(l.keepalive_idle, l.keepalive_interval, static_cast<int>(l.keepalive_count));
  } else {
    set_int_option(fd_, SOL_SOCKET, SO_KEEPALIVE, 0, "SO_KEEPALIVE");
  }
  if (l.user_timeout.count() > 0) set_user_timeout(l.user_timeout);
}

Task<StreamSocket> StreamSocket::connect(SocketAddress to, Duration timeout, RetryPolicy retry,
                                         TcpLiveness liveness) {
  Duration backoff = retry.initial_backoff;
  const unsigned attempts = retry.attempts == 0 ? 1 : retry.attempts;
  int last_error = 0;
  for (unsigned attempt = 1;; ++attempt) {
    StreamSocket s(new_socket(to.family()));
    int res = 0;
    try {
      res = co_await with_timeout(timeout, connect_once(s.fd(), to));
    } catch (const TimedOut&) {
      res = -ETIMEDOUT;
    }
    if (res == 0) {
      if (to.family() != AF_UNIX) {
        set_nodelay(s.fd());
        s.set_liveness(liveness);
      }
      co_return s;
    }
    last_error = -res;
    // Refused and timed out, and unreachable too: a link that flaps or a route being set up comes back.
    const bool worth_retrying = last_error == ECONNREFUSED || last_error == ETIMEDOUT ||
                                last_error == ENETUNREACH || last_error == EHOSTUNREACH ||
                                last_error == ENETDOWN || last_error == EHOSTDOWN;
    if (attempt >= attempts || !worth_retrying) break;
    co_await sleep_for(backoff);
    backoff = backoff * 2 > retry.max_backoff ? retry.max_backoff : backoff * 2;
  }
  throw error_for(last_error, "connect to " + to.to_string() + " (" + std::to_string(attempts) +
                                  (attempts == 1 ? " attempt)" : " attempts)"));
}

Task<std::size_t> StreamSocket::recv_some(std::span<std::byte> buf, Duration timeout) {
  const int fd = fd_;
  const int res = co_await io_op(
      [fd, buf](io_uring_sqe* sqe) noexcept { io_uring_prep_recv(sqe, fd, buf.data(), buf.size(), 0); },
      timeout);
  if (res == -ECANCELED)
    throw TransportError(TransportErrc::timeout, "recv: nothing arrived within the timeout");
  if (res < 0) throw error_for(-res, "recv");
  co_return static_cast<std::size_t>(res);
}

namespace {

// One send of a stream, by the task whose turn it is: InlineIo, as no other send of the socket is under way.
struct StreamSendPrep {
  int fd;
  std::span<const std::byte> data;
  int flags;
  void operator()(io_uring_sqe* sqe) const noexcept {
    io_uring_prep_send(sqe, fd, data.data(), data.size(), flags);
  }
  int try_inline() noexcept { return detail::send_now(fd, data.data(), data.size(), flags); }
};

}  // namespace

Task<void> StreamSocket::send_all(std::span<const std::byte> data, bool more) {
  const Semaphore::Units turn = co_await send_turn_.hold();
  const int fd = fd_;
  const int flags = MSG_NOSIGNAL | (more ? MSG_MORE : 0);
  while (!data.empty()) {
    const int res = co_await io_op(StreamSendPrep{fd, data, flags});
    if (res < 0) throw error_for(-res, "send");
    data = data.subspan(static_cast<std::size_t>(res));
  }
}

Task<void> StreamSocket::close() {
  if (fd_ < 0) co_return;
  const Semaphore::Units turn = co_await send_turn_.hold();  // sends already waiting go out first
  if (fd_ < 0) co_return;                                    // another close() went first
  const int fd = std::exchange(fd_, -1);
  co_await io_op([fd](io_uring_sqe* sqe) noexcept { io_uring_prep_shutdown(sqe, fd, SHUT_WR); });
  co_await io_op([fd](io_uring_sqe* sqe) noexcept { io_uring_prep_close(sqe, fd); });
}

namespace {

// TCP_* options need a TCP socket; a Unix stream has no acknowledgements to time.
void require_tcp(int fd, const char* what) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (fd < 0) throw TransportError(TransportErrc::closed, std::string(what) + ": the socket is not open");
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) throw error_for(errno, what);
  if (ss.ss_family != AF_INET && ss.ss_family != AF_INET6)
    throw TransportError(TransportErrc::not_supported,
                         std::string(what) + ": a TCP option; this stream is not TCP (a Unix socket?)");
}

}  // namespace

void StreamSocket::set_user_timeout(std::chrono::milliseconds timeout) {
  if (timeout.count() < 0 || timeout.count() > INT_MAX)
    throw TransportError(TransportErrc::invalid_argument,
                         "StreamSocket::set_user_timeout: " + std::to_string(timeout.count()) +
                             " ms; give 0 (the kernel's default) to " + std::to_string(INT_MAX) + " ms");
  require_tcp(fd_, "set_user_timeout");
  set_int_option(fd_, IPPROTO_TCP, TCP_USER_TIMEOUT, timeout.count(), "TCP_USER_TIMEOUT");
}

std::chrono::milliseconds StreamSocket::user_timeout() const {
  require_tcp(fd_, "user_timeout");
  int ms = 0;
  socklen_t len = sizeof ms;
  if (getsockopt(fd_, IPPROTO_TCP, TCP_USER_TIMEOUT, &ms, &len) != 0)
    throw error_for(errno, "getsockopt(TCP_USER_TIMEOUT)");
  return std::chrono::milliseconds(ms);
}

void StreamSocket::set_keepalive(std::chrono::seconds idle, std::chrono::seconds interval, int probes) {
  // The kernel's own bounds (MAX_TCP_KEEPIDLE, MAX_TCP_KEEPINTVL, MAX_TCP_KEEPCNT).
  const auto bad_seconds = [](std::chrono::seconds s) { return s.count() < 1 || s.count() > 32767; };
  if (bad_seconds(idle) || bad_seconds(interval) || probes < 1 || probes > 127)
    throw TransportError(TransportErrc::invalid_argument,
                         "StreamSocket::set_keepalive: idle " + std::to_string(idle.count()) +
                             " s, interval " + std::to_string(interval.count()) + " s, probes " +
                             std::to_string(probes) +
                             "; the kernel takes 1 to 32767 s for each time and 1 to 127 "
                             "probes");
  require_tcp(fd_, "set_keepalive");
  set_int_option(fd_, IPPROTO_TCP, TCP_KEEPIDLE, idle.count(), "TCP_KEEPIDLE");
  set_int_option(fd_, IPPROTO_TCP, TCP_KEEPINTVL, interval.count(), "TCP_KEEPINTVL");
  set_int_option(fd_, IPPROTO_TCP, TCP_KEEPCNT, probes, "TCP_KEEPCNT");
  set_int_option(fd_, SOL_SOCKET, SO_KEEPALIVE, 1, "SO_KEEPALIVE");
}

StreamListener StreamListener::bind(const SocketAddress& at, const ListenOptions& options) {
  const int fd = new_socket(at.family());
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (options.reuse_port && at.family() != AF_UNIX &&
      setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
    const int err = errno;
    ::close(fd);
    throw error_for(err, "SO_REUSEPORT on " + at.to_string());
  }
  if (::bind(fd, at.data(), at.size()) != 0 || ::listen(fd, options.backlog) != 0) {
    const int err = errno;
    ::close(fd);
    throw error_for(err, "listen on " + at.to_string());
  }
  std::string unix_path;
  if (at.family() == AF_UNIX) unix_path = reinterpret_cast<const sockaddr_un*>(at.data())->sun_path;
  return StreamListener(fd, std::move(unix_path));
}

StreamListener::~StreamListener() {
  close();
}

void StreamListener::close() noexcept {
  if (fd_ >= 0) ::close(std::exchange(fd_, -1));
  if (!unix_path_.empty()) ::unlink(std::exchange(unix_path_, std::string()).c_str());
}

Task<StreamSocket> StreamListener::accept() {
  const int fd = fd_;
  const int res = co_await io_op(
      [fd](io_uring_sqe* sqe) noexcept { io_uring_prep_accept(sqe, fd, nullptr, nullptr, SOCK_CLOEXEC); });
  if (res < 0) throw error_for(-res, "accept");
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (getsockname(res, reinterpret_cast<sockaddr*>(&ss), &len) == 0 && ss.ss_family != AF_UNIX)
    set_nodelay(res);
  co_return StreamSocket(res);
}

}  // namespace moirai::transport
