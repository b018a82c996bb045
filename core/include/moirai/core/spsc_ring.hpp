// The cross-core queue: one bounded single-producer single-consumer ring of messages per ordered pair of
// shards.
//
// Each message is one cache line: a function pointer the consumer calls and 56 bytes of payload (a pointer to
// an awaiter in the sender's frame, or a small functor stored inline), so sending needs no allocation.
//
// The producer claims and fills slots privately and publishes its tail once per batch (the shard flushes
// after each run of tasks); the consumer reads everything published with one acquire load and returns the
// slots with one release store. Each side caches the other's index and reloads it only when the ring looks
// full or empty, so in steady state the shared lines move once per batch, not once per message.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>

namespace moirai {
class Shard;
}

namespace moirai::detail {

inline constexpr std::size_t kCacheLine = 64;

struct alignas(kCacheLine) Message {
  using Fn = void (*)(Message& self, Shard& here) noexcept;
  static constexpr std::size_t kPayload = kCacheLine - sizeof(Fn);
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
  explicit SpscRing(std::size_t capacity) {
    std::size_t cap = 2;
    while (cap < capacity)
      cap <<= 1;
    slots_ = std::unique_ptr<Message[]>(new Message[cap]);
    mask_ = cap - 1;
  }
  SpscRing(const SpscRing&) = delete;
  SpscRing& operator=(const SpscRing&) = delete;

  std::size_t capacity() const noexcept { return mask_ + 1; }

  // ---- producer side (one thread) ----

  // A free slot to fill, or nullptr when the ring is full. The slot is not visible until commit() +
  // publish().
  Message* try_claim() noexcept {
    if (prod_.tail - prod_.head_cache > mask_) {
      // acquire: the consumer's release of these slots happened-before we overwrite them.
      prod_.head_cache = head_.value.load(std::memory_order_acquire);
      if (prod_.tail - prod_.head_cache > mask_) return nullptr;
    }
    return &slots_[prod_.tail & mask_];
  }
  void commit() noexcept { ++prod_.tail; }

  // Makes every committed message visible to the consumer. Returns true if there was anything new.
  bool publish() noexcept {
    if (prod_.tail == prod_.published) return false;
    // release: the slot contents written before this store are visible to the consumer's acquire load.
    tail_.value.store(prod_.tail, std::memory_order_release);
    prod_.published = prod_.tail;
    return true;
  }
  bool has_unpublished() const noexcept { return prod_.tail != prod_.published; }

  // ---- consumer side (one thread) ----

  // True when a published message waits. Used by a shard's last check before it sleeps.
  bool readable() const noexcept { return tail_.value.load(std::memory_order_acquire) != cons_.head; }

  // Calls each published message (at most `max`), then returns their slots to the producer in one store.
  std::size_t consume(Shard& here, std::size_t max) noexcept {
    if (cons_.tail_cache == cons_.head) {
      cons_.tail_cache = tail_.value.load(std::memory_order_acquire);
      if (cons_.tail_cache == cons_.head) return 0;
    }
    std::size_t n = cons_.tail_cache - cons_.head;
    if (n > max) n = max;
    for (std::size_t i = 0; i < n; ++i) {
      Message& m = slots_[(cons_.head + i) & mask_];
      m.invoke(m, here);
    }
    cons_.head += n;
    // release: our reads of the slots (and the messages' side effects on them) finish before the producer
    // reuses.
    head_.value.store(cons_.head, std::memory_order_release);
    return n;
  }

 private:
  // Each group below sits on its own cache line: the producer's private indices, the published tail (written
  // by the producer, read by the consumer), the released head (the reverse), and the consumer's private
  // indices.
  struct alignas(kCacheLine) ProducerState {
    std::size_t tail = 0;        // next slot to claim
    std::size_t published = 0;   // last tail stored to tail_
    std::size_t head_cache = 0;  // last head_ seen
  };
  struct alignas(kCacheLine) ConsumerState {
    std::size_t head = 0;        // next slot to read
    std::size_t tail_cache = 0;  // last tail_ seen
  };
  struct alignas(kCacheLine) SharedIndex {
    std::atomic<std::size_t> value{0};
  };

  ProducerState prod_;
  SharedIndex tail_;
  SharedIndex head_;
  ConsumerState cons_;
  std::unique_ptr<Message[]> slots_;
  std::size_t mask_ = 0;
};

}  // namespace moirai::detail
