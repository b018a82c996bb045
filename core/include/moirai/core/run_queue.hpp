// The shard's queue of runnable coroutines: a power-of-two ring of (coroutine, task) pairs. It grows by
// doubling when a burst exceeds it, so in steady state push and pop are a store and a load, never an
// allocation.
#pragma once

#include <coroutine>
#include <cstddef>
#include <memory>

#include "moirai/core/task_control.hpp"

namespace moirai::detail {

struct Runnable {
  std::coroutine_handle<> handle;
  TaskControl* task;  // whose cancellation and stall accounting this resumption belongs to (may be null)
};

class RunQueue {
 public:
  explicit RunQueue(std::size_t capacity = 4096) { reset(capacity); }

  bool empty() const noexcept { return head_ == tail_; }
  std::size_t size() const noexcept { return tail_ - head_; }

  void push(Runnable r) {
    if (tail_ - head_ == mask_ + 1) [[unlikely]]
      grow();
    items_[tail_++ & mask_] = r;
  }
  Runnable pop() noexcept { return items_[head_++ & mask_]; }

 private:
  void reset(std::size_t capacity) {
    std::size_t cap = 16;
    while (cap < capacity)
      cap <<= 1;
    items_ = std::make_unique<Runnable[]>(cap);
    mask_ = cap - 1;
    head_ = tail_ = 0;
  }
  void grow() {
    const std::size_t cap = (mask_ + 1) * 2;
    auto bigger = std::make_unique<Runnable[]>(cap);
    std::size_t n = 0;
    for (std::size_t i = head_; i != tail_; ++i)
      bigger[n++] = items_[i & mask_];
    items_ = std::move(bigger);
    mask_ = cap - 1;
    head_ = 0;
    tail_ = n;
  }

  std::unique_ptr<Runnable[]> items_;
  std::size_t mask_ = 0;
  std::size_t head_ = 0;
  std::size_t tail_ = 0;
};

}  // namespace moirai::detail
