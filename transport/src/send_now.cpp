#include "moirai/transport/detail/send_now.hpp"

#include <cerrno>
#include <climits>

namespace moirai::transport::detail {
namespace {

int result_of(ssize_t n) noexcept {
  if (n >= 0) return n > INT_MAX ? INT_MAX : static_cast<int>(n);
  // No room, or a signal before any byte went: the ring's request tries again and waits.
  if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return -EAGAIN;
  return -errno;
}

}  // namespace

int send_now(int fd, const void* data, std::size_t bytes, int flags, const sockaddr* to,
             socklen_t to_size) noexcept {
  if (bytes > INT_MAX) bytes = INT_MAX;  // a count the result can carry; the caller sends the rest after
  return result_of(::sendto(fd, data, bytes, flags | MSG_DONTWAIT | MSG_NOSIGNAL, to, to_size));
}

int sendmsg_now(int fd, const msghdr& msg, int flags) noexcept {
  return result_of(::sendmsg(fd, &msg, flags | MSG_DONTWAIT | MSG_NOSIGNAL));
}

}  // namespace moirai::transport::detail
