// The producer: a message written into the outgoing ring in place, and the awaiter that waits for room.
#include <algorithm>
#include <cstring>

#include "channel_impl.hpp"

namespace moirai::transport {

bool IpcChannel::Impl::try_send(std::span<const std::byte> payload, EndpointId from) {
  if (payload.size() > region.max_payload) [[unlikely]] {
    throw TransportError(TransportErrc::message_too_large,
                         ipc::where(name) + ": a message of " + std::to_string(payload.size()) +
                             " bytes is over the slot payload of " + std::to_string(region.max_payload) +
                             " bytes; nothing was written. Create the channel with a larger "
                             "IpcOptions::slot_size (payload + 16, rounded up to 64)");
  }
  if (self_closed || peer_gone()) [[unlikely]] {
    throw TransportError(TransportErrc::closed, closed_text());
  }
  if (shard == nullptr) [[unlikely]] {
    if (Shard* s = this_shard_or_null()) bind(*s);
  }
  if (out.tail - out.head_cache > region.mask) {
    // acquire: the reader's reads of these slots happened-before we overwrite them (its release of head).
    out.head_cache = out.ctl->head.load(std::memory_order_acquire);
    if (out.tail - out.head_cache > region.mask) return false;
  }
  ipc::SlotHeader* s = region.slot(out.slots, out.tail);
  if (!payload.empty()) std::memcpy(ipc::Region::payload_of(s), payload.data(), payload.size());
  s->length = static_cast<std::uint32_t>(payload.size());
  s->sender = from.packed();
  // release: the payload, length and sender are visible to the reader's acquire of seq.
  s->seq.store(static_cast<std::uint32_t>(out.tail + 1), std::memory_order_release);
  ++out.tail;
  // Dekker with the reader's prepare_sleep: we store seq, fence, load its sleeping word; it stores the
  // word, fences, loads seq. With both fences seq_cst one of us sees the other's store, so a sleeping
  // reader is never left with an unseen message, and a spinning one costs us this fence and no syscall.
  wake_peer_if_asleep();
  return true;
}

bool IpcChannel::try_send(std::span<const std::byte> payload) {
  return impl_->try_send(payload, impl_->sender);
}
bool IpcChannel::try_send(std::span<const std::byte> payload, EndpointId sender) {
  return impl_->try_send(payload, sender);
}

IpcChannel::SendAwaiter IpcChannel::send(std::span<const std::byte> payload, Duration timeout) {
  return SendAwaiter(impl_, payload, impl_->sender, timeout);
}
IpcChannel::SendAwaiter IpcChannel::send(std::span<const std::byte> payload, EndpointId sender,
                                         Duration timeout) {
  return SendAwaiter(impl_, payload, sender, timeout);
}

IpcChannel::SendAwaiter::SendAwaiter(Impl* impl, std::span<const std::byte> payload, EndpointId sender,
                                     Duration timeout) noexcept
    : impl_(impl),
      payload_(payload),
      sender_(sender),
      deadline_(timeout == Duration::max() ? INT64_MAX : deadline_after(timeout)) {}

bool IpcChannel::SendAwaiter::await_ready() {
  shard_ = &this_shard();
  task_ = shard_->current_task();
  moirai::detail::throw_if_cancelled(task_);
  sent_ = impl_->try_send(payload_, sender_);
  if (!sent_ && deadline_ != INT64_MAX && monotonic_ns() >= deadline_) timed_out_ = true;
  return sent_ || timed_out_;
}

// A full ring: the reader is behind. Look again from the shard's timers, at once for the first 64 laps (a
// reader on another CPU frees slots within microseconds), then every 20 us.
void IpcChannel::SendAwaiter::arm_retry() noexcept {
  const std::int64_t now = monotonic_ns();
  timer_.owner = this;
  timer_.fire = &SendAwaiter::retry;
  timer_.deadline = now + (retries_++ < 64 ? 1 : 20'000);
  if (deadline_ != INT64_MAX) timer_.deadline = std::min(timer_.deadline, std::max(deadline_, now + 1));
  shard_->timers().arm(&timer_);
}

void IpcChannel::SendAwaiter::retry(moirai::detail::TimerEntry* e) noexcept {
  SendAwaiter* a = moirai::detail::OwnedTimer<SendAwaiter>::of(e);
  try {
    a->sent_ = a->impl_->try_send(a->payload_, a->sender_);
  } catch (...) {
    a->error_ = std::current_exception();  // closed meanwhile: rethrown in await_resume
  }
  if (!a->sent_ && !a->error_) {
    if (a->deadline_ == INT64_MAX || monotonic_ns() < a->deadline_) {
      a->arm_retry();
      return;
    }
    a->timed_out_ = true;
  }
  moirai::detail::disarm_cancel(a->task_, a);
  a->shard_->schedule(a->h_, a->task_);
}

void IpcChannel::SendAwaiter::await_suspend(std::coroutine_handle<> h) noexcept {
  h_ = h;
  arm_retry();
  fn = [](moirai::detail::CancelHook* hook) noexcept {
    auto* a = static_cast<SendAwaiter*>(hook);
    a->shard_->timers().cancel(&a->timer_);
    a->shard_->schedule(a->h_, a->task_);
  };
  moirai::detail::arm_cancel(task_, this);
}

void IpcChannel::SendAwaiter::await_resume() {
  moirai::detail::disarm_cancel(task_, this);
  if (error_) std::rethrow_exception(error_);
  if (sent_) return;
  moirai::detail::throw_if_cancelled(task_);
  throw TransportError(TransportErrc::timeout,
                       ipc::where(impl_->name) + ": the ring stayed full for the whole send timeout");
}

}  // namespace moirai::transport
