// The cross-core queue: one bounded single-producer single-consumer ring of messages per ordered pair of
// shards.
//
// Each message is one cache line: a function pointer the consumer calls and 56 bytes of payload (a pointer to
// an awaiter in the sender's frame, or a small functor stored inline), so sending needs no allocation.
//
// Each slot carries its own readiness: the producer fills a slot and publishes it by storing the slot's
// sequence number (release), so the consumer learns that a message is there from the slot alone and a
// message costs one cache-line transfer. The consumer calls every ready message of a batch and returns their
// slots with one release store of its head; the producer reloads that head only when the ring looks full.
// The producer learns once per batch of commits whether it must wake a sleeping consumer
// (take_new_since_notify), so a fence is paid per batch, not per message.
#pragma once

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>

#include "moirai/base/cache_line.hpp"
#include "moirai/numa/node_memory.hpp"

namespace moirai::detail {

class ShardCore;

struct alignas(kCacheLine) Message {
  using Fn = void (*)(Message& self, ShardCore& here) noexcept;
  static constexpr std::size_t kPayload = kCacheLine - sizeof(Fn) - sizeof(std::uint64_t);
  // Position + 1 of the message in its ring, stored last (release) by the producer: the consumer learns that
  // a slot is ready from the slot itself, so a message costs one cache-line transfer, not two (slot and
  // index).
  std::atomic<std::uint64_t> seq{0};
  Fn invoke;  // runs on the consuming shard; must destroy whatever the payload holds
  alignas(8) unsigned char payload[kPayload];

  template <class T>
  T* as() noexcept {
    return std::launder(reinterpret_cast<T*>(payload));
  }
};
static_assert(sizeof(Message) == kCacheLine);

class SpscRing {
 public:
  // The shard maps the slots on its own node, as their consumer: the consumer reads every slot, the producer
  // only writes them, and a remote write costs the producer less than a remote read costs the consumer.
  // `map(bytes)` returns the mapping for the slots.
  template <class Map>
  SpscRing(std::size_t capacity, Map&& map) {
    const std::size_t cap = std::bit_ceil(std::max<std::size_t>(capacity, 2));
    memory_ = map(cap * sizeof(Message));
    slots_ = static_cast<Message*>(memory_.data());  // page-aligned, so every slot is a whole cache line
    for (std::size_t i = 0; i < cap; ++i)
      ::new (&slots_[i]) Message();
    mask_ = cap - 1;
  }
  SpscRing(const SpscRing&) = delete;
  SpscRing& operator=(const SpscRing&) = delete;

  std::size_t capacity() const noexcept { return mask_ + 1; }
  const numa::NodeMemory& memory() const noexcept { return memory_; }

  // ---- producer side (one thread) ----

  // A free slot to fill, or nullptr when the ring is full. The slot is not visible until commit().
  Message* try_claim() noexcept {
    if (prod_.tail - prod_.head_cache > mask_) {
      // acquire: the consumer's release of these slots happened-before we overwrite them.
      prod_.head_cache = head_.value.load(std::memory_order_acquire);
      if (prod_.tail - prod_.head_cache > mask_) return nullptr;
    }
    return &slots_[prod_.tail & mask_];
  }
  // Publishes the claimed slot. release: its contents are visible to the consumer's acquire of `seq`.
  void commit() noexcept {
    slots_[prod_.tail & mask_].seq.store(prod_.tail + 1, std::memory_order_release);
    ++prod_.tail;
  }

  // True once per batch of commits: the shard then checks whether the consumer sleeps (one fence per batch).
  bool take_new_since_notify() noexcept {
    if (prod_.tail == prod_.notified) return false;
    prod_.notified = prod_.tail;
    return true;
  }

  // ---- consumer side (one thread) ----

  // True when a published message waits. Used by a shard's last check before it sleeps.
  bool readable() const noexcept {
    return slots_[cons_.head & mask_].seq.load(std::memory_order_acquire) == cons_.head + 1;
  }

  // Calls each published message (at most `max`), then returns their slots to the producer in one store.
  std::size_t consume(ShardCore& here, std::size_t max) noexcept {
    std::size_t n = 0;
    while (n < max) {
      Message& m = slots_[(cons_.head + n) & mask_];
      // acquire: pairs with commit()'s release, so the payload read below is the one the producer wrote.
      if (m.seq.load(std::memory_order_acquire) != cons_.head + n + 1) break;
      m.invoke(m, here);
      ++n;
    }
    if (n == 0) return 0;
    cons_.head += n;
    // release: our reads of the slots finish before the producer, after its acquire, overwrites them.
    head_.value.store(cons_.head, std::memory_order_release);
    return n;
  }

 private:
  // Each group below sits on its own cache line: the producer's private indices, the released head (written
  // by the consumer, read by the producer), and the consumer's private index.
  struct alignas(kCacheLine) ProducerState {
    std::size_t tail = 0;        // next slot to claim
    std::size_t notified = 0;    // tail at the last sleep check
    std::size_t head_cache = 0;  // last head_ seen
  };
  struct alignas(kCacheLine) ConsumerState {
    std::size_t head = 0;  // next slot to read
  };
  struct alignas(kCacheLine) SharedIndex {
    std::atomic<std::size_t> value{0};
  };

  ProducerState prod_;
  SharedIndex head_;
  ConsumerState cons_;
  numa::NodeMemory memory_;  // Message is trivially destructible: unmapping the slots is all the cleanup
  Message* slots_ = nullptr;
  std::size_t mask_ = 0;
};

}  // namespace moirai::detail
