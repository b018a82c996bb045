// Broadcast to every shard: one bounded Channel<T> per shard, and a send that queues a copy of the value on
// each of them at once. Each shard receives its own copy from its own channel, with the sender; messages from
// one sender arrive on every shard in the order it sent them. A full channel on any shard holds the sender
// back (the slowest receiver paces the broadcast); nothing is dropped.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "moirai/core/submit.hpp"
#include "moirai/transport/channel.hpp"

namespace moirai::transport {

template <class T>
class Broadcast {
 public:
  // A channel on each of shards 0..shards-1, holding up to `capacity` messages, numbered `id` on each shard.
  Broadcast(unsigned shards, std::size_t capacity, std::uint16_t id = 0) {
    if (shards == 0)
      throw Error(Errc::invalid_argument, "Broadcast: 0 shards would receive nothing; give at least 1");
    channels_.reserve(shards);
    for (unsigned s = 0; s < shards; ++s)
      channels_.push_back(std::make_unique<Channel<T>>(s, capacity, id));
  }

  unsigned shards() const noexcept { return static_cast<unsigned>(channels_.size()); }
  // The channel on `shard`; Error(no_such_shard) for a shard this broadcast does not reach.
  Channel<T>& on(unsigned shard) {
    if (shard >= channels_.size()) [[unlikely]] {
      throw Error(Errc::no_such_shard, "Broadcast::on(" + std::to_string(shard) +
                                           "): this broadcast reaches " + std::to_string(channels_.size()) +
                                           " shards, numbered from 0");
    }
    return *channels_[shard];
  }

  // From any shard: queues a copy of `value` on every shard's channel, all at once, and resumes when every
  // copy is queued. Throws TransportError(closed) if a channel is closed (the others still get their copy).
  // Takes `value` by value, as Channel::send does: the task may run after the call that made it, when a
  // temporary the caller passed is gone.
  Task<void> send(T value, std::uint16_t from_channel = 0) {
    detail::Countdown cd{shards()};
    for (auto& ch : channels_)
      detail::spawn_forwarder(send_one(ch.get(), value, from_channel, &cd));
    co_await cd;
  }

  // On a shard: the oldest copy in this shard's channel (see Channel::recv and recv_from).
  Task<Envelope<T>> recv(Duration timeout = Duration::max()) { return local().recv(timeout); }
  Task<Envelope<T>> recv_from(EndpointId sender, Duration timeout = Duration::max()) {
    return local().recv_from(sender, timeout);
  }

  // From any shard: closes every shard's channel (on its owner), waking their receivers and senders.
  Task<void> close() {
    for (auto& ch : channels_) {
      Channel<T>* c = ch.get();
      co_await submit_to(c->owner(), [c] {
        c->close();
        return 0;
      });
    }
  }

 private:
  Channel<T>& local() {
    const unsigned here = this_shard_id();
    if (here >= channels_.size()) {
      throw Error(Errc::invalid_argument, "Broadcast::recv on shard " + std::to_string(here) +
                                              ", which has no channel (the broadcast spans " +
                                              std::to_string(channels_.size()) + " shards)");
    }
    return *channels_[here];
  }

  static Task<void> send_one(Channel<T>* ch, T value, std::uint16_t from_channel, detail::Countdown* cd) {
    std::exception_ptr e;
    try {
      co_await ch->send(std::move(value), from_channel);
    } catch (...) {
      e = std::current_exception();
    }
    cd->done(std::move(e));
  }

  std::vector<std::unique_ptr<Channel<T>>> channels_;
};

// Held to the receive vocabulary, with int standing for any T.
static_assert(SelectiveReceiver<Broadcast<int>>);

}  // namespace moirai::transport
