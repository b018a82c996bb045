// The watch of the peer process: a poll on its pidfd through the shard's ring, readable when it exits; where
// that cannot be had, a check of its pid every kLivenessRecheckNs. A dead peer's published messages are still
// delivered (peer_gone); after them a receive ends with closed.
#include <poll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "channel_impl.hpp"

namespace moirai::transport {

void IpcChannel::Impl::watch_peer() noexcept {
  if (shard == nullptr || peer.watching || peer.by_kill || peer.dead.load(std::memory_order_relaxed)) return;
  if (peer.pid == 0) {
    peer.pid = region.hdr->pid[1 - side].load(std::memory_order_acquire);
    if (peer.pid == 0) return;  // not opened yet: looked at again each lap and before each sleep
  }
  if (peer.pidfd < 0) {
    peer.pidfd = static_cast<int>(::syscall(SYS_pidfd_open, peer.pid, 0));
    if (peer.pidfd < 0) {
      if (errno == ESRCH) {
        peer.dead.store(true, std::memory_order_relaxed);
      } else {
        peer.by_kill = true;
      }
      return;
    }
  }
  if (!io::Ring::supports(io::Op::poll_add)) {
    peer.by_kill = true;
    return;
  }
  io_uring_sqe* sqe = shard->ring().get_sqe();
  if (sqe == nullptr) return;  // the SQ is jammed: tried again next lap
  io_uring_prep_poll_add(sqe, peer.pidfd, POLLIN);
  peer.exit.impl = this;
  peer.exit.on_complete = [](io::Completion* c, int res, std::uint32_t) noexcept {
    Impl* self = static_cast<OpCompletion*>(c)->impl;
    self->peer.watching = false;
    if (res > 0 && (res & POLLIN) != 0) self->peer.dead.store(true, std::memory_order_relaxed);
    if (self->orphaned) {
      self->free_if_idle();
    } else if (res < 0 && res != -ECANCELED) {
      self->peer.by_kill = true;  // the poll was refused: check the pid instead
    }
  };
  io::Ring::set_completion(sqe, &peer.exit);
  peer.watching = true;
}

void IpcChannel::Impl::check_liveness() noexcept {
  const std::int64_t now = monotonic_ns();
  if (now < peer.next_check) return;
  peer.next_check = now + ipc::kLivenessRecheckNs;
  if (!ipc::process_alive(peer.pid)) peer.dead.store(true, std::memory_order_relaxed);
}

}  // namespace moirai::transport
