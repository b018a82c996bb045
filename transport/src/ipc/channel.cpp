// IpcChannel itself: create and open, the binding to its shard, closing, and what it tells about itself.
#include <sys/mman.h>
#include <unistd.h>

#include <memory>
#include <utility>

#include "channel_impl.hpp"
#include "moirai/core/error.hpp"

namespace moirai::transport {

IpcChannel::Impl::Impl(std::string_view channel_name, const ipc::Mapping& m, int end_side,
                       EndpointId sender_id, const IpcOptions& options)
    : side(end_side), sender(sender_id), creator(end_side == 0), name(channel_name) {
  region.base = m.base;
  region.bytes = m.bytes;
  region.hdr = std::launder(static_cast<ipc::RegionHeader*>(m.base));
  region.slot_size = m.slot_size;
  region.mask = m.capacity - 1;
  region.max_payload = m.slot_size - ipc::kSlotHeaderBytes;
  out.ctl = region.control(side);
  out.slots = region.slots(side);
  in.ctl = region.control(1 - side);
  in.slots = region.slots(1 - side);
  in.head = in.ctl->head.load(std::memory_order_acquire);
  out.head_cache = out.ctl->head.load(std::memory_order_acquire);
  out.tail = out.head_cache;  // a fresh writer: nothing of ours is in flight
  spin_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(options.spin_before_wait).count();
  wake.asked = options.wake;
  // Room for stash_capacity messages of the largest size: allocated here, never later.
  stash = detail::RecvStash(options.stash_capacity * stash.record_bytes(region.max_payload), 0,
                            options.stash_capacity);
  stash.reserve();
}

IpcChannel IpcChannel::create(std::string_view name, const IpcOptions& options) {
  const ipc::Mapping m = ipc::create_region(name, options);
  auto impl = std::make_unique<Impl>(name, m, 0, options.sender, options);
  return IpcChannel(impl.release());
}

IpcChannel IpcChannel::open(std::string_view name, EndpointId sender, const IpcOptions& options) {
  const ipc::Mapping m = ipc::open_region(name);
  auto impl = std::make_unique<Impl>(name, m, 1, sender, options);
  impl->peer.pid = impl->region.hdr->pid[0].load(std::memory_order_relaxed);
  // The creator may sleep in a receive, waiting for a peer to watch: wake it, through the FIFO end this
  // channel keeps for its sends.
  impl->wake_peer_if_asleep();
  return IpcChannel(impl.release());
}

void IpcChannel::Impl::bind_first(Shard& s) {
  if (shard != nullptr) {
    throw Error(Errc::invalid_argument, ipc::where(name) + ": used on shard " + std::to_string(s.id()) +
                                            ", but it belongs to shard " + std::to_string(shard->id()) +
                                            " (the first that used it); send and receive on that shard");
  }
  shard = &s;
  wake.futex_supported = (wake.asked == IpcWake::automatic || wake.asked == IpcWake::futex) &&
                         io::Ring::supports(io::Op::futex_wait);
  watch_peer();
}

std::string IpcChannel::Impl::closed_text() const {
  if (self_closed) return ipc::where(name) + ": this end is closed";
  if (peer.dead.load(std::memory_order_relaxed))
    return ipc::where(name) + ": the peer process (pid " + std::to_string(peer.pid) +
           ") died; every message it had published was delivered first";
  return ipc::where(name) + ": the peer (pid " + std::to_string(region.hdr->pid[1 - side].load()) +
         ") closed the channel";
}

void IpcChannel::Impl::close() noexcept {
  if (self_closed) return;
  self_closed = true;
  if (waiter != nullptr && shard != nullptr) waiter->finish(Outcome::closed);
  if (region.hdr != nullptr) {
    // release: every message we published is visible to a peer that sees the flag (acquire).
    region.hdr->closed[side].store(1, std::memory_order_release);
    wake_peer_if_asleep();  // the peer may sleep in a receive
  }
  cancel_armed();
  if (peer.pidfd >= 0) ::close(std::exchange(peer.pidfd, -1));
  close_wake_fifos();
  if (region.base != nullptr) ::munmap(std::exchange(region.base, nullptr), region.bytes);
  region.hdr = nullptr;
  if (creator) ::shm_unlink(ipc::shm_path(name).c_str());
}

// Requests armed in the ring reference this object: cancel them and wait (bounded, at close, never on a
// message path) for their CQEs. Off the shard, the runtime has ended and its ring with them.
void IpcChannel::Impl::cancel_armed() noexcept {
  if (shard != nullptr && this_shard_or_null() == shard) {
    io::Ring& ring = shard->ring();
    if (wake.futex_armed) ring.cancel(&wake.futex_done);
    if (peer.watching) ring.cancel(&peer.exit);
    if (wake.fifo_armed) ring.cancel(&wake.fifo_done);
    for (int i = 0; i < 1000 && (wake.futex_armed || peer.watching || wake.fifo_armed); ++i)
      ring.wait(1'000'000);
  } else {
    wake.futex_armed = peer.watching = wake.fifo_armed = false;
  }
}

void IpcChannel::Impl::free_if_idle() noexcept {
  if (!wake.futex_armed && !peer.watching && !wake.fifo_armed) delete this;
}

void IpcChannel::Impl::destroy(Impl* impl) noexcept {
  if (impl == nullptr) return;
  impl->close();
  if (impl->wake.futex_armed || impl->peer.watching || impl->wake.fifo_armed) {
    impl->orphaned = true;
    return;
  }
  delete impl;
}

IpcChannel::IpcChannel(IpcChannel&& o) noexcept : impl_(std::exchange(o.impl_, nullptr)) {}
IpcChannel& IpcChannel::operator=(IpcChannel&& o) noexcept {
  if (this != &o) {
    Impl::destroy(std::exchange(impl_, nullptr));
    impl_ = std::exchange(o.impl_, nullptr);
  }
  return *this;
}
IpcChannel::~IpcChannel() {
  Impl::destroy(impl_);
}

void IpcChannel::close() noexcept {
  if (impl_ != nullptr) impl_->close();
}

std::size_t IpcChannel::max_payload() const noexcept {
  return impl_->region.max_payload;
}
int IpcChannel::peer_pid() const noexcept {
  if (impl_->peer.pid != 0 || impl_->region.hdr == nullptr) return impl_->peer.pid;
  return impl_->region.hdr->pid[1 - impl_->side].load(std::memory_order_acquire);
}
const char* to_string(IpcWake w) noexcept {
  switch (w) {
    case IpcWake::automatic:
      return "automatic";
    case IpcWake::futex:
      return "futex";
    case IpcWake::fifo:
      return "fifo";
    case IpcWake::recheck:
      return "recheck";
  }
  return "?";
}

std::uint64_t IpcChannel::wakeups() const noexcept {
  return impl_->wake.wakeups;
}

IpcWake IpcChannel::wake() const noexcept {
  const Impl::Wake& w = impl_->wake;
  if (w.futex_supported) return IpcWake::futex;
  if (w.fifo >= 0) return IpcWake::fifo;
  return w.fifo_tried || w.asked == IpcWake::recheck ? IpcWake::recheck : IpcWake::automatic;
}

const std::string& IpcChannel::name() const noexcept {
  return impl_->name;
}

}  // namespace moirai::transport
