// A power-of-two ring of runnables; head_ and tail_ run freely and are masked on use, so push_front is a
// decrement that wraps like any other index. A default-constructed RunFifo holds no storage: mask_ + 1 == 0
// reads as "full at size 0", so the first push allocates.
#pragma once

#include <algorithm>
#include <bit>
#include <coroutine>
#include <cstddef>
#include <memory>

#include "moirai/core/detail/task_control.hpp"

namespace moirai::detail {

struct Runnable {
  std::coroutine_handle<> handle;
  TaskControl* task;  // whose cancellation and stall accounting this resumption belongs to (may be null)
};

class RunFifo {
 public:
  RunFifo() noexcept = default;
  explicit RunFifo(std::size_t capacity) { grow_to(std::bit_ceil(std::max(capacity, kMinCapacity))); }

  bool empty() const noexcept { return head_ == tail_; }
  std::size_t size() const noexcept { return tail_ - head_; }

  void push_back(Runnable r) {
    if (size() == mask_ + 1) [[unlikely]]
      grow_to(std::max(kMinCapacity, (mask_ + 1) * 2));
    store(items_[tail_++ & mask_], r);
  }
  void push_front(Runnable r) {
    if (size() == mask_ + 1) [[unlikely]]
      grow_to(std::max(kMinCapacity, (mask_ + 1) * 2));
    store(items_[--head_ & mask_], r);
  }
  Runnable pop_front() noexcept { return items_[head_++ & mask_]; }

 private:
  static constexpr std::size_t kMinCapacity = 16;

  // Field by field: g++ otherwise may spill `r` as two 8-byte halves and reload it as one 16-byte value,
  // which the store buffer cannot forward (a stall of a dozen cycles).
  static void store(Runnable& slot, Runnable r) noexcept {
    slot.handle = r.handle;
    slot.task = r.task;
  }

  void grow_to(std::size_t capacity) {
    auto bigger = std::make_unique_for_overwrite<Runnable[]>(capacity);
    std::size_t n = 0;
    for (std::size_t i = head_; i != tail_; ++i)
      bigger[n++] = items_[i & mask_];
    items_ = std::move(bigger);
    mask_ = capacity - 1;
    head_ = 0;
    tail_ = n;
  }

  std::unique_ptr<Runnable[]> items_;
  std::size_t mask_ = ~std::size_t{0};
  std::size_t head_ = 0;
  std::size_t tail_ = 0;
};

}  // namespace moirai::detail
