// The wake paths. A reader about to sleep raises its ring's sleeping word and arms a wait through its shard's
// io_uring: a futex wait on that word where the kernel has it, else a poll on a FIFO of its own next to the
// region, else nothing (its shard's sleep is bounded by kIpcFallbackRecheck). The writer wakes it only when
// it sees the word raised (wake_reader).
#include <fcntl.h>
#include <linux/futex.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <utility>

#include "channel_impl.hpp"

namespace moirai::transport {
namespace ipc {
namespace {

// A wake-up's FIFO could not be reached: said once on stderr, with what to do.
void report_unreachable_fifo(std::string_view name, int reader_side, int err) noexcept {
  std::fprintf(
      stderr,
      "moirai: IpcChannel '%.*s': cannot wake its sleeping reader through /dev/shm/%.*s.wake%d (%s); "
      "it finds each message at its next look, within %lld ms. Let both processes open that FIFO "
      "(same user, or its mode), and do not remove it while the channel is open\n",
      static_cast<int>(name.size()), name.data(), static_cast<int>(name.size()), name.data(), reader_side,
      std::strerror(err),
      static_cast<long long>(
          std::chrono::duration_cast<std::chrono::milliseconds>(kIpcFifoSafetyRecheck).count()));
}

}  // namespace

std::string wake_fifo_path(std::string_view name, int reader_side) {
  std::string path = "/dev/shm/";
  path.append(name).append(".wake").append(std::to_string(reader_side));
  return path;
}

// Whoever takes the word from sleeping to kAwake makes the one wake-up. A FIFO that cannot be opened or
// written (a full one already holds a wake-up) is logged once; the reader then finds the message at its
// safety recheck.
void wake_reader(RingControl& ctl, std::string_view name, int reader_side, PeerFifo& fifo) noexcept {
  // relaxed: the word is only a "please wake me" flag; the fences around it order the message itself.
  const std::uint32_t was = ctl.reader_sleeping.exchange(kAwake, std::memory_order_relaxed);
  if (was == kSleepsOnFutex) {
    ::syscall(SYS_futex, &ctl.reader_sleeping, FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0);
    return;
  }
  if (was != kSleepsOnFifo) return;
  int err = ENOMEM;
  try {
    if (fifo.fd < 0)
      // Read and write, so the FIFO always has a reader: a byte into one whose reader died (its process
      // killed while asleep) stays there, where write-only it would raise SIGPIPE and kill this process.
      fifo.fd = ::open(wake_fifo_path(name, reader_side).c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
    const char one = 1;
    if (fifo.fd >= 0 && (::write(fifo.fd, &one, 1) == 1 || errno == EAGAIN)) return;
    err = errno;
  } catch (...) {  // no memory for the path
  }
  if (!std::exchange(fifo.reported, true)) report_unreachable_fifo(name, reader_side, err);
}

}  // namespace ipc

bool IpcChannel::Impl::prepare_sleep(long long& timeout_ns) noexcept {
  auto cap = [&timeout_ns](long long limit) {
    timeout_ns = timeout_ns < 0 ? limit : std::min(timeout_ns, limit);
  };
  const long long recheck = std::chrono::duration_cast<std::chrono::nanoseconds>(kIpcFallbackRecheck).count();
  if (!wake.futex_supported && !wake.fifo_tried && wake.asked != IpcWake::recheck) open_wake_fifo();
  const std::uint32_t word = wake.futex_supported ? ipc::kSleepsOnFutex
                             : wake.fifo >= 0     ? ipc::kSleepsOnFifo
                                                  : ipc::kAwake;
  if (word == ipc::kAwake) {
    cap(recheck);
  } else {
    // relaxed store + seq_cst fence: the Dekker half that pairs with try_send's fence (see there).
    in.ctl->reader_sleeping.store(word, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_seq_cst);
  }
  if (in_readable() || peer_gone() || peer_arrived()) {
    end_sleep();
    return true;
  }
  if (word == ipc::kSleepsOnFutex) {
    if (!wake.futex_armed) arm_futex_wait();
    if (!wake.futex_armed) cap(recheck);
  } else if (word == ipc::kSleepsOnFifo) {
    if (!wake.fifo_armed) arm_fifo_poll();
    cap(wake.fifo_armed ? ipc::kFifoSafetyRecheckNs : recheck);
  }
  if (peer.by_kill) cap(ipc::kLivenessRecheckNs);
  return false;
}

void IpcChannel::Impl::end_sleep() noexcept {
  // relaxed: only spares the writer a needless wake-up; the next sleep raises the word again first. Stored
  // only when raised, so a reader that never sleeps never writes the line the writer reads.
  if (in.ctl->reader_sleeping.load(std::memory_order_relaxed) != ipc::kAwake)
    in.ctl->reader_sleeping.store(ipc::kAwake, std::memory_order_relaxed);
}

// A FUTEX_WAIT for "reader_sleeping == kSleepsOnFutex" through the ring: the CQE comes when the writer's
// futex_wake does, or at once (-EAGAIN) if the writer already took the word back to kAwake. It stays armed
// across sleeps until it completes.
void IpcChannel::Impl::arm_futex_wait() noexcept {
  io_uring_sqe* sqe = shard->ring().get_sqe();
  if (sqe == nullptr) return;
  // Shared: the writer that wakes it is another process.
  io::prep_futex_wait(sqe, in.ctl->reader_sleeping, ipc::kSleepsOnFutex, io::FutexScope::shared);
  wake.futex_done.impl = this;
  wake.futex_done.on_complete = [](io::Completion* c, int res, std::uint32_t) noexcept {
    Impl* self = static_cast<OpCompletion*>(c)->impl;
    self->wake.futex_armed = false;
    if (self->orphaned) {
      self->free_if_idle();
      return;
    }
    if (res == 0) ++self->wake.wakeups;  // the writer's futex_wake (-EAGAIN: it came before the wait)
    // Refused (a kernel without the flags, or a seccomp filter): the FIFO or the recheck from now on.
    if (res == -EINVAL || res == -EOPNOTSUPP || res == -ENOSYS) self->wake.futex_supported = false;
  };
  io::Ring::set_completion(sqe, &wake.futex_done);
  wake.futex_armed = true;
}

// The FIFO of our incoming ring, made (or, left by an earlier process of ours, reused) at the first sleep.
// Opened for reading and writing, so it never reports the end of a writer; a path that is not a FIFO, or
// one we may not make, leaves the bounded recheck.
void IpcChannel::Impl::open_wake_fifo() noexcept {
  wake.fifo_tried = true;
  try {
    const std::string path = ipc::wake_fifo_path(name, side);
    if (::mkfifo(path.c_str(), 0600) != 0 && errno != EEXIST) return;
    const int fd = ::open(path.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return;
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISFIFO(st.st_mode)) {
      ::close(fd);
      return;
    }
    wake.fifo = fd;
  } catch (...) {  // no memory for the path: the recheck
  }
}

// A poll for "the FIFO is readable" through the ring: the CQE comes with the writer's byte. The bytes are
// drained then, so the next poll waits for the next wake-up. Stays armed across sleeps until it completes.
void IpcChannel::Impl::arm_fifo_poll() noexcept {
  io_uring_sqe* sqe = shard->ring().get_sqe();
  if (sqe == nullptr) return;
  io_uring_prep_poll_add(sqe, wake.fifo, POLLIN);
  wake.fifo_done.impl = this;
  wake.fifo_done.on_complete = [](io::Completion* c, int, std::uint32_t) noexcept {
    Impl* self = static_cast<OpCompletion*>(c)->impl;
    self->wake.fifo_armed = false;
    if (self->orphaned) {
      self->free_if_idle();
      return;
    }
    char drain[64];
    ssize_t n = 0;
    bool woken = false;
    while ((n = ::read(self->wake.fifo, drain, sizeof drain)) > 0) {
      woken = true;
      if (n < static_cast<ssize_t>(sizeof drain)) break;
    }
    if (woken) ++self->wake.wakeups;
  };
  io::Ring::set_completion(sqe, &wake.fifo_done);
  wake.fifo_armed = true;
}

// At close: our end of the peer's FIFO, and our own FIFO, which goes with its name.
void IpcChannel::Impl::close_wake_fifos() noexcept {
  if (wake.peer_fifo.fd >= 0) ::close(std::exchange(wake.peer_fifo.fd, -1));
  if (wake.fifo >= 0) {
    ::close(std::exchange(wake.fifo, -1));
    try {
      ::unlink(ipc::wake_fifo_path(name, side).c_str());
    } catch (...) {  // no memory for the path: the FIFO stays, and is reused by the next of this name
    }
  }
}

}  // namespace moirai::transport
