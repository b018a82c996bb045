// The consumer: the oldest message taken in place from the incoming ring (or the stash), the channel as a
// Poller of its shard while a receive waits, and the receive awaiter with its optional spin.
#include <algorithm>

#include "channel_impl.hpp"
#include "moirai/core/cpu_relax.hpp"

namespace moirai::transport {

// The oldest message (from `from`, if given) into `out_msg`: from the stash first (everything there is older
// than the ring), then the ring, setting other senders' messages aside on the way. Inline, as
// take_for_waiter: each receive path of this file (await_ready, the spin, poll) has it in place, without a
// call.
inline IpcChannel::Impl::Outcome IpcChannel::Impl::take(const std::optional<EndpointId>& from,
                                                        IpcMessage& out_msg) noexcept {
  if (stash.has_waiting()) {
    if (const std::optional<detail::RecvStash::Kept> k = stash.take(from)) {
      out_msg.sender = k->sender;
      out_msg.payload = k->payload;
      return Outcome::message;
    }
  }
  for (bool last_look = false;; last_look = true) {
    while (in_readable()) {
      ipc::SlotHeader* s = region.slot(in.slots, in.head);
      const EndpointId who = EndpointId::unpack(s->sender);
      const std::uint32_t len = s->length;
      if (len > region.max_payload) [[unlikely]]
        return Outcome::malformed;
      if (!from || who == *from) {
        in.holding = true;
        out_msg.sender = who;
        out_msg.payload = {ipc::Region::payload_of(s), len};
        return Outcome::message;
      }
      if (!stash.put(who, 0, {ipc::Region::payload_of(s), len})) return Outcome::stash_full;
      release_ring_slot();
    }
    if (self_closed) return Outcome::closed;
    if (last_look || !peer_gone()) return Outcome::none;
    // The peer is gone: what it published before is visible now (see peer_gone); look once more.
  }
}

inline IpcChannel::Impl::Outcome IpcChannel::Impl::take_for_waiter(RecvAwaiter& w) noexcept {
  const Outcome o = take(w.from_, w.message_);
  if (o == Outcome::none && peer_gone()) return Outcome::closed;
  return o;
}

bool IpcChannel::Impl::poll() noexcept {
  RecvAwaiter* w = waiter;
  if (w == nullptr) {
    shard->remove_poller(this);
    return false;
  }
  if (peer.pid == 0 || (!peer.watching && !peer.by_kill)) watch_peer();
  if (peer.by_kill) check_liveness();
  const Outcome o = take_for_waiter(*w);
  if (o == Outcome::none) return false;
  w->finish(o);
  return true;
}

IpcChannel::RecvAwaiter IpcChannel::recv(Duration timeout) {
  return RecvAwaiter(impl_, std::nullopt, timeout);
}
IpcChannel::RecvAwaiter IpcChannel::recv_from(EndpointId sender, Duration timeout) {
  return RecvAwaiter(impl_, sender, timeout);
}

IpcChannel::RecvAwaiter::RecvAwaiter(Impl* impl, std::optional<EndpointId> from, Duration timeout) noexcept
    : impl_(impl), from_(from), deadline_(timeout == Duration::max() ? INT64_MAX : deadline_after(timeout)) {}

bool IpcChannel::RecvAwaiter::await_ready() {
  shard_ = &this_shard();
  task_ = shard_->current_task();
  moirai::detail::throw_if_cancelled(task_);
  if (impl_->self_closed) {
    outcome_ = Outcome::closed;
    return true;
  }
  impl_->bind(*shard_);
  if (impl_->waiter != nullptr) {
    outcome_ = Outcome::busy;
    return true;
  }
  impl_->release_held();
  outcome_ = impl_->take_for_waiter(*this);
  if (outcome_ != Outcome::none) return true;
  if (impl_->spin_ns > 0 && spin_for_message()) return true;
  if (deadline_ != INT64_MAX && deadline_ <= monotonic_ns()) {
    outcome_ = Outcome::timeout;
    return true;
  }
  return false;
}

// IpcOptions::spin_before_wait: watch the ring's next slot from here, without suspending, while nothing else
// on the shard wants to run. A message that lands meanwhile costs its cache-line transfer and no lap of the
// shard loop, no suspension and no resumption. The clock and the shard are looked at every 64 turns (a clock
// read costs more than a look at the slot), so the spin ends within about 64 turns of its budget, the
// receive's deadline, or anything else becoming ready.
bool IpcChannel::RecvAwaiter::spin_for_message() noexcept {
  // The budget starts at the first look at the clock, 64 turns in: a message that comes sooner (the common
  // case in a ping-pong) then costs no clock read at all.
  std::int64_t until = 0;
  for (unsigned turn = 1;; ++turn) {
    if (impl_->in_readable()) {
      outcome_ = impl_->take_for_waiter(*this);
      if (outcome_ != Outcome::none) return true;
    }
    if (turn % 64 == 0) {
      const std::int64_t now = monotonic_ns();
      if (until == 0) until = std::min(now + impl_->spin_ns, deadline_);
      if (now >= until || shard_->others_waiting(now)) return false;
      if (impl_->peer_gone()) return false;  // the slow path says closed, after the last message
    }
    cpu_relax();
  }
}

void IpcChannel::RecvAwaiter::await_suspend(std::coroutine_handle<> h) noexcept {
  h_ = h;
  impl_->waiter = this;
  shard_->add_poller(impl_);
  if (deadline_ != INT64_MAX) {
    timer_.owner = this;
    timer_.deadline = deadline_;
    timer_.fire = [](moirai::detail::TimerEntry* e) noexcept {
      moirai::detail::OwnedTimer<RecvAwaiter>::of(e)->finish(Outcome::timeout);
    };
    shard_->timers().arm(&timer_);
  }
  fn = [](moirai::detail::CancelHook* hook) noexcept {
    static_cast<RecvAwaiter*>(hook)->finish(Outcome::none);
  };
  moirai::detail::arm_cancel(task_, this);
}

void IpcChannel::RecvAwaiter::finish(Outcome o) noexcept {
  outcome_ = o;
  impl_->waiter = nullptr;
  shard_->remove_poller(impl_);
  if (timer_.armed()) shard_->timers().cancel(&timer_);
  moirai::detail::disarm_cancel(task_, this);
  shard_->schedule(h_, task_);
}

IpcMessage IpcChannel::RecvAwaiter::await_resume() {
  moirai::detail::disarm_cancel(task_, this);
  moirai::detail::throw_if_cancelled(task_);
  switch (outcome_) {
    case Outcome::message:
      return message_;
    case Outcome::closed:
      throw TransportError(TransportErrc::closed, impl_->closed_text());
    case Outcome::stash_full:
      throw TransportError(TransportErrc::message_too_large,
                           ipc::where(impl_->name) + ": recv_from found the stash full (" +
                               std::to_string(impl_->stash.max_records()) +
                               " messages of other senders set aside); the next one stays in the ring. "
                               "Receive those with recv(), or raise IpcOptions::stash_capacity");
    case Outcome::malformed:
      throw TransportError(TransportErrc::malformed,
                           ipc::where(impl_->name) +
                               ": the peer wrote a slot with a length over the slot payload; "
                               "the region is corrupt, close the channel");
    case Outcome::timeout:
      throw TransportError(TransportErrc::timeout,
                           ipc::where(impl_->name) + ": no message within the timeout");
    case Outcome::busy:
      throw TransportError(TransportErrc::not_supported,
                           ipc::where(impl_->name) +
                               ": another receive already waits on this channel; receive "
                               "from one task at a time");
    case Outcome::none:
      break;
  }
  throw TransportError(TransportErrc::closed,
                       ipc::where(impl_->name) + ": the receive ended without a message");
}

}  // namespace moirai::transport
