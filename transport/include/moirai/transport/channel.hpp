// A typed, bounded cross-core channel: any shard sends, the shard that owns the channel receives. Sending to
// a full channel suspends the sender until there is room (backpressure); nothing is dropped. Every message
// carries its sender, so a receiver can take the messages of one sender and leave the others queued.
//
// The queue lives on the owner shard and only its thread touches it: a send from another shard travels as one
// cross-core message (submit_to) that waits on the owner for room, queues the value and answers. Storage is a
// ring of `capacity` slots made when the channel is, so steady-state traffic allocates nothing.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <utility>

#include "moirai/core/detail/shard_core.hpp"
#include "moirai/core/error.hpp"
#include "moirai/core/submit.hpp"
#include "moirai/core/sync.hpp"
#include "moirai/core/timer.hpp"
#include "moirai/transport/endpoint.hpp"
#include "moirai/transport/error.hpp"
#include "moirai/transport/receiver.hpp"

namespace moirai::transport {

// A received message: who sent it and the value.
template <class T>
struct Envelope {
  EndpointId sender;
  T payload;
};

template <class T>
class Channel {
 public:
  // A channel received on shard `owner`, holding up to `capacity` messages, numbered `id` on that shard.
  Channel(unsigned owner, std::size_t capacity, std::uint16_t id = 0)
      : owner_(owner),
        id_(id),
        capacity_(capacity),
        slots_(new std::optional<Envelope<T>>[capacity]),
        space_(capacity) {
    if (capacity == 0) {
      throw Error(Errc::invalid_argument,
                  "Channel: a capacity of 0 could never hold a message; give at least 1");
    }
  }
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;

  EndpointId id() const noexcept { return EndpointId{0, static_cast<std::uint16_t>(owner_), id_}; }
  unsigned owner() const noexcept { return owner_; }
  // Messages queued now (owner shard).
  std::size_t size() const noexcept { return count_; }

  // From any shard: queues `value` from channel `from_channel` of the calling shard, suspending while the
  // channel is full. Throws TransportError(closed) once the channel is closed.
  Task<void> send(T value, std::uint16_t from_channel = 0) {
    const EndpointId from{0, static_cast<std::uint16_t>(this_shard_id()), from_channel};
    if (this_shard_id() == owner_) {
      co_await push(from, std::move(value));
    } else {
      co_await submit_to(owner_,
                         [this, from, v = std::move(value)]() mutable { return push(from, std::move(v)); });
    }
  }

  // On the owner shard: the oldest message. Throws TransportError(timeout) when none comes within `timeout`,
  // TransportError(closed) once the channel is closed and empty.
  Task<Envelope<T>> recv(Duration timeout = Duration::max()) { return receive(std::nullopt, timeout); }

  // On the owner shard: the oldest message from `sender`; messages from others stay queued, in order, for
  // later receives (they still count against the capacity, which is what bounds them).
  Task<Envelope<T>> recv_from(EndpointId sender, Duration timeout = Duration::max()) {
    return receive(sender, timeout);
  }

  // On the owner shard: refuses further sends (they throw closed) and wakes every waiting sender and
  // receiver. Messages already queued can still be received.
  void close() noexcept {
    closed_ = true;
    arrived_.set();
    space_.release(capacity_);  // waiting senders wake, see closed_ and throw
  }
  bool closed() const noexcept { return closed_; }

 private:
  Task<void> push(EndpointId from, T value) {
    check_owner("send");
    if (closed_) throw TransportError(TransportErrc::closed, "Channel::send: the channel is closed");
    co_await space_.acquire();
    if (closed_)
      throw TransportError(TransportErrc::closed, "Channel::send: the channel closed while waiting");
    slots_[(head_ + count_) % capacity_].emplace(Envelope<T>{from, std::move(value)});
    ++count_;
    arrived_.set();
  }

  Task<Envelope<T>> receive(std::optional<EndpointId> from, Duration timeout) {
    check_owner("recv");
    if (timeout == Duration::max()) co_return co_await wait_for_message(from);
    try {
      co_return co_await with_timeout(timeout, wait_for_message(from));
    } catch (const TimedOut&) {
    }
    throw TransportError(TransportErrc::timeout, "Channel::recv: no message within the timeout");
  }

  Task<Envelope<T>> wait_for_message(std::optional<EndpointId> from) {
    for (;;) {
      for (std::size_t i = 0; i < count_; ++i) {
        std::optional<Envelope<T>>& slot = slots_[(head_ + i) % capacity_];
        if (from && !(slot->sender == *from)) continue;
        Envelope<T> out = std::move(*slot);
        take(i);
        co_return out;
      }
      if (closed_) throw TransportError(TransportErrc::closed, "Channel::recv: the channel is closed");
      // Everything here runs on the owner's thread, so no send can slip in between the scan and the wait.
      arrived_.reset();
      co_await arrived_.wait();
    }
  }

  // Removes the i-th queued message, keeping the others in order, and gives its slot back to the senders.
  void take(std::size_t i) noexcept {
    for (std::size_t k = i; k > 0; --k)
      slots_[(head_ + k) % capacity_] = std::move(slots_[(head_ + k - 1) % capacity_]);
    slots_[head_].reset();
    head_ = (head_ + 1) % capacity_;
    --count_;
    if (!closed_) space_.release();
  }

  void check_owner(const char* what) const {
    if (this_shard_id() != owner_) {
      throw Error(Errc::invalid_argument, std::string("Channel::") + what + " ran on shard " +
                                              std::to_string(this_shard_id()) +
                                              ", but the channel belongs to shard " + std::to_string(owner_) +
                                              "; receive on the owner");
    }
  }

  const unsigned owner_;
  const std::uint16_t id_;
  const std::size_t capacity_;
  std::unique_ptr<std::optional<Envelope<T>>[]> slots_;
  std::size_t head_ = 0;
  std::size_t count_ = 0;
  bool closed_ = false;
  Semaphore space_;
  Event arrived_;
};

// Held to the receive vocabulary, with int standing for any T.
static_assert(SelectiveReceiver<Channel<int>>);

}  // namespace moirai::transport
