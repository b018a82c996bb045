// A readiness loop on epoll, for where io_uring is refused: one per thread, like io::Ring. Where the ring
// completes an operation, this loop says when a file descriptor is ready for one; the caller then makes the
// non-blocking call itself, and waits again only when that call returns EAGAIN.
//
// The set is edge-triggered: each fd is registered once (ReadinessLoop::add), for reading and writing at
// once, through a ReadyHandle the caller owns (in its socket object); the kernel's record points at that
// handle, so the loop allocates nothing after construction. Edges are not repeated, so the handle caches what
// the last events said: an event sets its bits, and a caller whose call returned EAGAIN clears the bit
// (clear_readable, clear_writable) before it waits. Each handle holds at most one parked reader and one
// parked writer, each an io::Completion, which the loop completes once, from poll(), when its bit is set.
//
// Other threads may call only wake(). Everything else belongs to the thread that created the loop; add() and
// enable_busy_poll() are set-up calls that throw, the rest are noexcept and report errors as values.
#pragma once

#include <sys/epoll.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <string>
#include <system_error>

#include "moirai/io/completion.hpp"
#include "moirai/io/error.hpp"

namespace moirai::io {

// The readiness bits a handle caches, and a waiter's result is made of: epoll's own values.
namespace ready {
inline constexpr std::uint32_t readable = EPOLLIN;
inline constexpr std::uint32_t writable = EPOLLOUT;
inline constexpr std::uint32_t read_hangup = EPOLLRDHUP;  // the peer shut its sending side: a read gives EOF
inline constexpr std::uint32_t hangup = EPOLLHUP;         // both directions are shut
inline constexpr std::uint32_t error = EPOLLERR;          // the next call on the fd returns the error
}  // namespace ready

// One fd's registration in a ReadinessLoop, and its cached readiness. It lives where the fd's owner lives
// (the kernel keeps its address), so it neither copies nor moves. Remove it from its loop before it is
// destroyed and before its fd is closed: an fd closed first stays in the set while a duplicate of it is open,
// with events that would name a dead handle.
class ReadyHandle {
 public:
  ReadyHandle() = default;
  ReadyHandle(const ReadyHandle&) = delete;
  ReadyHandle& operator=(const ReadyHandle&) = delete;

  int fd() const noexcept { return fd_; }
  bool registered() const noexcept { return fd_ >= 0; }
  // What the events since the last clear said (ready:: bits).
  std::uint32_t readiness() const noexcept { return ready_; }
  // A read would not block: data, end of file, or an error to return.
  bool readable() const noexcept { return (ready_ & kReadMask) != 0; }
  // A write would not block: room, or an error to return.
  bool writable() const noexcept { return (ready_ & kWriteMask) != 0; }
  bool hangup() const noexcept { return (ready_ & (ready::read_hangup | ready::hangup)) != 0; }
  bool error() const noexcept { return (ready_ & ready::error) != 0; }

  // A read returned EAGAIN: no data, and no error pending (the call would have returned it). The hangup bits
  // stay: they never end.
  void clear_readable() noexcept { ready_ &= ~(ready::readable | ready::error); }
  // A write returned EAGAIN: no room, and no error pending.
  void clear_writable() noexcept { ready_ &= ~(ready::writable | ready::error); }

 private:
  friend class ReadinessLoop;
  static constexpr std::uint32_t kReadMask =
      ready::readable | ready::read_hangup | ready::hangup | ready::error;
  static constexpr std::uint32_t kWriteMask = ready::writable | ready::hangup | ready::error;

  Completion* reader_ = nullptr;
  Completion* writer_ = nullptr;
  int fd_ = -1;
  std::uint32_t ready_ = 0;
};

struct ReadinessLoopOptions {
  // Take the timerfd path for timeouts even where the kernel has epoll_pwait2 (tests use this to cover the
  // path that kernels before 5.11 take).
  bool force_timerfd = false;
};

// What a code from ReadinessLoop::enable_busy_poll means, in words: the cause and what would let the kernel
// take it.
std::string describe_epoll_busy_poll_error(std::error_code refused);

class ReadinessLoop {
 public:
  // How many events one poll() takes from the kernel; more wait for the next poll().
  static constexpr int kMaxEvents = 256;

  // Creates the epoll set and its eventfd (and timerfd, where timeouts need it). Throws ReadinessError when
  // the kernel refuses one, naming the limit to raise.
  explicit ReadinessLoop(const ReadinessLoopOptions& options = {});
  ~ReadinessLoop();
  ReadinessLoop(const ReadinessLoop&) = delete;
  ReadinessLoop& operator=(const ReadinessLoop&) = delete;

  // Registers `fd` (non-blocking, owned by the caller) for reading and writing, edge-triggered, through
  // `handle`, whose cached readiness starts empty: the kernel reports what is ready at the first poll().
  // Throws ReadinessError naming the fd and the fix: the handle already registered or the fd already in the
  // set (EEXIST), an fd epoll cannot watch (EPERM: regular files and directories are always ready), a closed
  // fd (EBADF), the per-user watch limit reached (ENOSPC: fs.epoll.max_user_watches).
  void add(int fd, ReadyHandle& handle);

  // Takes the handle out of the set and completes each waiter still parked on it with -ECANCELED. Events of
  // the handle that the current poll() has not dispatched yet are dropped, so a waiter's callback may remove
  // (and free) another handle. Returns 0, or -errno from epoll_ctl (-EBADF when the fd was closed first);
  // the handle is unregistered either way.
  int remove(ReadyHandle& handle) noexcept;

  // Parks `c` until the handle is readable (writable). Returns 0 when parked: poll() then calls
  // c->on_complete once with the handle's readiness (ready:: bits), or remove() or cancel() with -ECANCELED.
  // When the cached readiness already says so, returns it (a positive value) and parks nothing, so the
  // caller goes on without a callback. -EBUSY when another waiter of the same kind is parked, -EBADF when the
  // handle is not registered.
  int wait_readable(ReadyHandle& handle, Completion* c) noexcept;
  int wait_writable(ReadyHandle& handle, Completion* c) noexcept;

  // Completes `c` with -ECANCELED if it is parked on `handle`; returns whether it was.
  bool cancel(ReadyHandle& handle, Completion* c) noexcept;

  // One epoll wait, then dispatches every event it returned. `timeout` 0 does not block; a negative one, or
  // nanoseconds::max(), waits until an event or a wake(). Returns how many waiters it completed (0 on
  // timeout, wake or signal). Callbacks run inside it and may call any method of the loop but poll().
  unsigned poll(std::chrono::nanoseconds timeout) noexcept;

  // Makes a poll() in progress, or the next one, return. Any thread; no lock, no allocation: one write to an
  // eventfd, which is also async-signal-safe.
  void wake() noexcept;
  // How many wake-ups poll() has seen (several wake() calls before one poll() may be seen as one).
  std::uint64_t wakes_seen() const noexcept { return wakes_seen_; }

  // Turns on the kernel's busy polling for this epoll set (EPIOCSPARAMS, Linux 6.9): a poll() that would
  // sleep first polls the network device its sockets receive from for up to `window`, `budget` packets at a
  // time (over 64 needs CAP_NET_ADMIN). It spins only for sockets that came through a NAPI device (not
  // loopback or Unix sockets). Returns an empty code when the kernel took it, otherwise the errno in
  // io_category(): ENOTTY before Linux 6.9, EOPNOTSUPP without CONFIG_NET_RX_BUSY_POLL, EPERM for a budget
  // over 64; describe_epoll_busy_poll_error() says it in words. A window outside 1 us to 1 s, or a budget of
  // 0, throws ReadinessError(EINVAL). A second call sets the new window and budget.
  [[nodiscard]] std::error_code enable_busy_poll(std::chrono::microseconds window, std::uint16_t budget = 8);
  bool busy_poll_enabled() const noexcept { return busy_poll_; }

  int fd() const noexcept { return epoll_fd_; }
  // Whether timeouts go through epoll_pwait2 (Linux 5.11) or through the timerfd.
  bool uses_epoll_pwait2() const noexcept { return timer_fd_ < 0; }

 private:
  int wait_for_events(std::chrono::nanoseconds timeout) noexcept;
  int wait_on_timer(std::chrono::nanoseconds timeout) noexcept;
  int park(ReadyHandle& handle, Completion*& slot, Completion* c, std::uint32_t mask) noexcept;
  void close_fds() noexcept;

  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  int timer_fd_ = -1;  // -1 where epoll_pwait2 serves
  bool timer_armed_ = false;
  bool busy_poll_ = false;
  std::uint64_t wakes_seen_ = 0;
  // The events of the poll() in progress not dispatched yet: [dispatch_next_, dispatch_end_).
  int dispatch_next_ = 0;
  int dispatch_end_ = 0;
  std::array<epoll_event, kMaxEvents> events_{};
};

}  // namespace moirai::io
