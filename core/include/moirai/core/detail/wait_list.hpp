// The waiter list shared by the shard-local primitives (Event, Semaphore, Gate): an intrusive FIFO of
// awaiters that live in their tasks' frames, each cancellable. Waking one schedules it on the shard; nothing
// allocates.
#pragma once

#include <coroutine>
#include <cstddef>

#include "moirai/core/detail/shard_core.hpp"

namespace moirai::detail {

class WaitList;

struct Waiter : CancelHook {
  WaitList* list = nullptr;
  Waiter* prev = nullptr;
  Waiter* next = nullptr;
  std::coroutine_handle<> handle{};
  TaskControl* task = nullptr;
  Shard* shard = nullptr;
  std::size_t want = 0;  // units a semaphore waiter needs
  bool linked = false;
  bool granted = false;  // a semaphore waiter was given its units by release()
};

class WaitList {
 public:
  bool empty() const noexcept { return head_ == nullptr; }
  Waiter* front() const noexcept { return head_; }

  // Links `w` (suspending `h`) and makes it cancellable: a cancel unlinks it and resumes it to throw. A
  // primitive that must react to a waiter leaving (a semaphore) passes its own `on_cancel`, which must do the
  // same.
  void park(Waiter* w, std::coroutine_handle<> h, void (*on_cancel)(CancelHook*) noexcept = nullptr) {
    w->shard = &this_shard();
    w->task = w->shard->current_task();
    w->handle = h;
    w->list = this;
    link(w);
    w->fn = on_cancel != nullptr ? on_cancel : [](CancelHook* hook) noexcept {
      auto* self = static_cast<Waiter*>(hook);
      self->list->unlink(self);
      self->shard->schedule(self->handle, self->task);
    };
    arm_cancel(w->task, w);
  }
  // Unlinks the first waiter and schedules it.
  void wake_front() noexcept {
    Waiter* w = head_;
    unlink(w);
    disarm_cancel(w->task, w);
    w->shard->schedule(w->handle, w->task);
  }
  void wake_all() noexcept {
    while (head_ != nullptr)
      wake_front();
  }
  void unlink(Waiter* w) noexcept {
    if (!w->linked) return;
    if (w->prev != nullptr) w->prev->next = w->next;
    if (w->next != nullptr) w->next->prev = w->prev;
    if (head_ == w) head_ = w->next;
    if (tail_ == w) tail_ = w->prev;
    w->prev = w->next = nullptr;
    w->linked = false;
  }

 private:
  void link(Waiter* w) noexcept {
    w->prev = tail_;
    w->next = nullptr;
    if (tail_ != nullptr) {
      tail_->next = w;
    } else {
      head_ = w;
    }
    tail_ = w;
    w->linked = true;
  }
  Waiter* head_ = nullptr;
  Waiter* tail_ = nullptr;
};

}  // namespace moirai::detail
