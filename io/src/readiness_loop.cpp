// The readiness loop: its epoll set, the wake-up eventfd, timeouts (epoll_pwait2, or a timerfd before Linux
// 5.11), parking waiters on handles and completing them from the events. Busy polling is in busy_poll.cpp.
#include "moirai/io/readiness_loop.hpp"

#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <ctime>
#include <string>
#include <utility>

// epoll_pwait2's number where the kernel headers predate it (those of Linux 4.18, as RHEL 8 ships): 441 in
// the table every architecture has shared since Linux 5.1.
#ifndef __NR_epoll_pwait2
#define __NR_epoll_pwait2 441
#endif

namespace moirai::io {
namespace {

using std::chrono::nanoseconds;

// The bits of an event a handle keeps; EPOLLET and the rest are not readiness.
constexpr std::uint32_t kCached =
    ready::readable | ready::writable | ready::read_hangup | ready::hangup | ready::error;

// epoll_pwait2 takes the kernel's 64-bit timespec, which is the C library's on the 64-bit targets Moirai
// builds for.
static_assert(sizeof(timespec) == 16, "epoll_pwait2 and timerfd_settime need a 64-bit timespec");

timespec to_timespec(nanoseconds t) noexcept {
  timespec ts{};
  ts.tv_sec = static_cast<time_t>(t.count() / 1'000'000'000);
  ts.tv_nsec = static_cast<long>(t.count() % 1'000'000'000);
  return ts;
}

int epoll_pwait2_call(int epfd, epoll_event* events, int max, const timespec* timeout) noexcept {
  return static_cast<int>(::syscall(__NR_epoll_pwait2, epfd, events, max, timeout, nullptr, 0));
}

// Whether this kernel has epoll_pwait2 (Linux 5.11), asked once per process on the first loop's set: ENOSYS
// before 5.11, EPERM or ENOSYS where a seccomp filter refuses it. Either way the timerfd takes its place.
bool kernel_has_epoll_pwait2(int epfd) noexcept {
  static const bool has = [epfd] {
    const timespec zero{};
    epoll_event unused{};
    return epoll_pwait2_call(epfd, &unused, 1, &zero) >= 0;
  }();
  return has;
}

std::string fd_limit_hint(int err) {
  if (err == EMFILE) {
    return "the process has as many files open as its limit allows; close some, or raise the limit (ulimit "
           "-n, "
           "RLIMIT_NOFILE)";
  }
  if (err == ENFILE) return "the system has as many files open as fs.file-max allows; raise it";
  if (err == ENOMEM) return "the kernel is out of memory";
  return "see the error below";
}

[[noreturn]] void fail_setup(int err, const char* what) {
  throw ReadinessError(err, std::string("readiness loop set-up: ") + what + ": " + fd_limit_hint(err));
}

std::string describe_add_error(int fd, int err) {
  const std::string head = "readiness loop: cannot watch fd " + std::to_string(fd) + ": ";
  switch (err) {
    case EEXIST:
      return head + "it is in this loop already; remove it first, and register each fd through one handle";
    case EPERM:
      return head +
             "epoll cannot watch this kind of file (a regular file or a directory is always ready); "
             "read and write it directly";
    case EBADF:
      return head + "it is not an open file descriptor; add it before it is closed";
    case ENOSPC:
      return head + "this user watches as many fds as fs.epoll.max_user_watches allows; raise that sysctl";
    case ELOOP:
      return head + "it is an epoll set that watches this loop, which would make a cycle";
    case EINVAL:
      return head + "it is this loop's own epoll fd";
    default:
      return head + "epoll_ctl refused it";
  }
}

}  // namespace

ReadinessLoop::ReadinessLoop(const ReadinessLoopOptions& options) {
  epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) fail_setup(errno, "epoll_create1");
  try {
    wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wake_fd_ < 0) fail_setup(errno, "eventfd for wake-ups");
    // Edge-triggered, and never read: every write to an eventfd wakes its waiters, so each wake() is an edge
    // even while the counter is above zero. Reading it back would cost a syscall per wake-up.
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLET;
    ev.data.ptr = &wake_fd_;
    if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev) != 0) fail_setup(errno, "watching the eventfd");
    if (options.force_timerfd || !kernel_has_epoll_pwait2(epoll_fd_)) {
      timer_fd_ = ::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
      if (timer_fd_ < 0) fail_setup(errno, "timerfd for timeouts");
      // Never read either: arming it again resets its expirations, and an expiry is an edge.
      ev.data.ptr = &timer_fd_;
      if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, timer_fd_, &ev) != 0)
        fail_setup(errno, "watching the timerfd");
    }
  } catch (...) {
    close_fds();
    throw;
  }
}

ReadinessLoop::~ReadinessLoop() {
  close_fds();
}

void ReadinessLoop::close_fds() noexcept {
  for (int* fd : {&timer_fd_, &wake_fd_, &epoll_fd_}) {
    if (*fd >= 0) ::close(*fd);
    *fd = -1;
  }
}

void ReadinessLoop::add(int fd, ReadyHandle& handle) {
  if (handle.registered()) {
    throw ReadinessError(EEXIST, "readiness loop: cannot watch fd " + std::to_string(fd) +
                                     ": its handle already watches fd " + std::to_string(handle.fd_) +
                                     "; remove it first, or give each fd a handle of its own");
  }
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  ev.data.ptr = &handle;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
    const int err = errno;
    throw ReadinessError(err, describe_add_error(fd, err));
  }
  handle.fd_ = fd;
  handle.ready_ = 0;
  handle.reader_ = nullptr;
  handle.writer_ = nullptr;
}

int ReadinessLoop::remove(ReadyHandle& handle) noexcept {
  if (!handle.registered()) return -EBADF;
  epoll_event unused{};  // kernels before 2.6.9 wanted one even for a removal
  const int rc = ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, handle.fd_, &unused) == 0 ? 0 : -errno;
  // Events of this handle later in the batch being dispatched must not reach it: its owner may free it now.
  for (int i = dispatch_next_; i < dispatch_end_; ++i) {
    if (events_[static_cast<std::size_t>(i)].data.ptr == &handle)
      events_[static_cast<std::size_t>(i)].data.ptr = nullptr;
  }
  handle.fd_ = -1;
  handle.ready_ = 0;
  Completion* reader = std::exchange(handle.reader_, nullptr);
  Completion* writer = std::exchange(handle.writer_, nullptr);
  if (reader != nullptr) reader->on_complete(reader, -ECANCELED, 0);
  if (writer != nullptr) writer->on_complete(writer, -ECANCELED, 0);
  return rc;
}

int ReadinessLoop::park(ReadyHandle& handle, Completion*& slot, Completion* c, std::uint32_t mask) noexcept {
  if (!handle.registered()) return -EBADF;
  if ((handle.ready_ & mask) != 0) return static_cast<int>(handle.ready_);
  if (slot != nullptr) return -EBUSY;
  slot = c;
  return 0;
}

int ReadinessLoop::wait_readable(ReadyHandle& handle, Completion* c) noexcept {
  return park(handle, handle.reader_, c, ReadyHandle::kReadMask);
}

int ReadinessLoop::wait_writable(ReadyHandle& handle, Completion* c) noexcept {
  return park(handle, handle.writer_, c, ReadyHandle::kWriteMask);
}

bool ReadinessLoop::cancel(ReadyHandle& handle, Completion* c) noexcept {
  Completion** slot = nullptr;
  if (c == nullptr) return false;
  if (handle.reader_ == c) slot = &handle.reader_;
  if (handle.writer_ == c) slot = &handle.writer_;
  if (slot == nullptr) return false;
  *slot = nullptr;
  c->on_complete(c, -ECANCELED, 0);
  return true;
}

unsigned ReadinessLoop::poll(nanoseconds timeout) noexcept {
  const int n = wait_for_events(timeout);
  if (n <= 0) return 0;
  unsigned completed = 0;
  dispatch_next_ = 0;
  dispatch_end_ = n;
  while (dispatch_next_ < dispatch_end_) {
    const epoll_event& ev = events_[static_cast<std::size_t>(dispatch_next_++)];
    void* tag = ev.data.ptr;
    if (tag == nullptr) continue;  // its handle was removed by a callback of this batch
    if (tag == &wake_fd_) {
      ++wakes_seen_;
      continue;
    }
    if (tag == &timer_fd_) {
      timer_armed_ = false;
      continue;
    }
    auto* handle = static_cast<ReadyHandle*>(tag);
    handle->ready_ |= ev.events & kCached;
    const std::uint32_t now = handle->ready_;
    // Both waiters are taken before either runs: a callback may remove the handle, or free it.
    Completion* reader =
        (now & ReadyHandle::kReadMask) != 0 ? std::exchange(handle->reader_, nullptr) : nullptr;
    Completion* writer =
        (now & ReadyHandle::kWriteMask) != 0 ? std::exchange(handle->writer_, nullptr) : nullptr;
    if (reader != nullptr) {
      reader->on_complete(reader, static_cast<int>(now), 0);
      ++completed;
    }
    if (writer != nullptr) {
      writer->on_complete(writer, static_cast<int>(now), 0);
      ++completed;
    }
  }
  dispatch_next_ = 0;
  dispatch_end_ = 0;
  return completed;
}

// Which wait serves a timeout:
//   0                      epoll_wait(0), which does not block;
//   forever                epoll_wait(-1);
//   otherwise, Linux 5.11+ epoll_pwait2, to the nanosecond;
//   otherwise, before 5.11 epoll_wait(ms) for a whole number of milliseconds, else the timerfd armed to the
//                          timeout and epoll_wait(-1), which the timer's expiry ends.
int ReadinessLoop::wait_for_events(nanoseconds timeout) noexcept {
  int n = 0;
  if (timeout.count() == 0) {
    n = ::epoll_wait(epoll_fd_, events_.data(), kMaxEvents, 0);
  } else if (timer_fd_ < 0 && timeout.count() > 0 && timeout != nanoseconds::max()) {
    const timespec ts = to_timespec(timeout);
    n = epoll_pwait2_call(epoll_fd_, events_.data(), kMaxEvents, &ts);
  } else {
    n = wait_on_timer(timeout);
  }
  return n < 0 ? 0 : n;  // EINTR: a signal ended the wait, which is a timeout with nothing done
}

int ReadinessLoop::wait_on_timer(nanoseconds timeout) noexcept {
  const bool forever = timeout.count() < 0 || timeout == nanoseconds::max();
  const bool whole_ms =
      !forever && timeout.count() % 1'000'000 == 0 && timeout.count() / 1'000'000 <= INT_MAX;
  if (forever || whole_ms) {
    // A timer still armed by an earlier poll() that ended before it would end this wait early.
    if (timer_armed_) {
      const itimerspec disarm{};
      ::timerfd_settime(timer_fd_, 0, &disarm, nullptr);
      timer_armed_ = false;
    }
    return ::epoll_wait(epoll_fd_, events_.data(), kMaxEvents,
                        forever ? -1 : static_cast<int>(timeout.count() / 1'000'000));
  }
  itimerspec spec{};
  spec.it_value = to_timespec(timeout);
  if (::timerfd_settime(timer_fd_, 0, &spec, nullptr) != 0) {
    // Not expected (the arguments are valid); whole milliseconds, rounded up, rather than no timeout.
    const long long ms = std::min<long long>((timeout.count() + 999'999) / 1'000'000, INT_MAX);
    return ::epoll_wait(epoll_fd_, events_.data(), kMaxEvents, static_cast<int>(ms));
  }
  timer_armed_ = true;
  return ::epoll_wait(epoll_fd_, events_.data(), kMaxEvents, -1);
}

void ReadinessLoop::wake() noexcept {
  const int saved_errno = errno;  // a signal handler may call this
  const std::uint64_t one = 1;
  while (::write(wake_fd_, &one, sizeof one) < 0) {
    if (errno == EAGAIN) {
      // The counter is at its maximum (2^64 - 2 writes never read): empty it, then write again.
      std::uint64_t count = 0;
      if (::read(wake_fd_, &count, sizeof count) < 0 && errno != EAGAIN) break;
    } else if (errno != EINTR) {
      break;
    }
  }
  errno = saved_errno;
}

}  // namespace moirai::io
