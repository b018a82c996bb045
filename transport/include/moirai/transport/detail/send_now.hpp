// Sends as non-blocking syscalls (internal), for the send preps' try_inline() (InlineIo in core/io.hpp): a
// send that finds room in the socket's buffer finishes in this one syscall, where the ring would take an
// enter to submit it, a CQE to reap and a suspension of the task. The result is as the ring's CQE would give
// it: the bytes sent or -errno, and -EAGAIN when there is no room now (the request then goes through the
// ring, which waits for room). MSG_DONTWAIT and MSG_NOSIGNAL are added to `flags`.
#pragma once

#include <sys/socket.h>

#include <cstddef>

namespace moirai::transport::detail {

int send_now(int fd, const void* data, std::size_t bytes, int flags, const sockaddr* to = nullptr,
             socklen_t to_size = 0) noexcept;
int sendmsg_now(int fd, const msghdr& msg, int flags) noexcept;

}  // namespace moirai::transport::detail
