// The shard's timers: an intrusive binary min-heap of entries that live in the waiting coroutines' frames.
// Arming is O(log n) with no syscall (the ring's wait is bounded by the earliest deadline instead),
// cancelling is O(log n) through the index each entry keeps, and equal deadlines fire in the order they were
// armed. The heap's array grows to the high-water mark once; after that arming allocates nothing.
#pragma once

#include <cstdint>
#include <vector>

#include "moirai/core/metrics.hpp"

namespace moirai::detail {

struct TimerEntry {
  static constexpr std::uint32_t kNotArmed = ~0u;
  std::int64_t deadline = 0;  // CLOCK_MONOTONIC ns
  std::uint64_t seq = 0;      // arming order, the tie-break
  std::uint32_t index = kNotArmed;
  void (*fire)(TimerEntry* self) noexcept = nullptr;
  bool armed() const noexcept { return index != kNotArmed; }
};

// A TimerEntry that knows the awaiter it belongs to, so `fire` can reach it without offsetof tricks.
template <class Owner>
struct OwnedTimer : TimerEntry {
  Owner* owner = nullptr;
  static Owner* of(TimerEntry* e) noexcept { return static_cast<OwnedTimer*>(e)->owner; }
};

class TimerQueue {
 public:
  TimerQueue() { heap_.reserve(1024); }

  bool empty() const noexcept { return heap_.empty(); }
  std::size_t size() const noexcept { return heap_.size(); }
  std::int64_t next_deadline() const noexcept { return heap_.front()->deadline; }

  void arm(TimerEntry* e) {
    e->seq = next_seq_++;
    e->index = static_cast<std::uint32_t>(heap_.size());
    heap_.push_back(e);
    sift_up(e->index);
  }

  void cancel(TimerEntry* e) noexcept {
    if (!e->armed()) return;
    const std::uint32_t i = e->index;
    const std::uint32_t last = static_cast<std::uint32_t>(heap_.size() - 1);
    e->index = TimerEntry::kNotArmed;
    if (i != last) {
      heap_[i] = heap_[last];
      heap_[i]->index = i;
      heap_.pop_back();
      sift_down(i);
      sift_up(i);
    } else {
      heap_.pop_back();
    }
  }

  // Fires every entry whose deadline is at or before `now`, earliest first. Returns how many fired.
  // Fires every timer due at `now`, recording how late each was (now - deadline, ns) in `lateness` if given.
  unsigned fire_expired(std::int64_t now, SharedHistogram* lateness = nullptr) noexcept {
    unsigned n = 0;
    while (!heap_.empty() && heap_.front()->deadline <= now) {
      TimerEntry* e = heap_.front();
      if (lateness != nullptr) lateness->record(static_cast<std::uint64_t>(now - e->deadline));
      cancel(e);
      e->fire(e);
      ++n;
    }
    return n;
  }

 private:
  static bool before(const TimerEntry* a, const TimerEntry* b) noexcept {
    return a->deadline < b->deadline || (a->deadline == b->deadline && a->seq < b->seq);
  }
  void place(std::uint32_t i, TimerEntry* e) noexcept {
    heap_[i] = e;
    e->index = i;
  }
  void sift_up(std::uint32_t i) noexcept {
    TimerEntry* e = heap_[i];
    while (i > 0) {
      const std::uint32_t parent = (i - 1) / 2;
      if (!before(e, heap_[parent])) break;
      place(i, heap_[parent]);
      i = parent;
    }
    place(i, e);
  }
  void sift_down(std::uint32_t i) noexcept {
    const std::uint32_t n = static_cast<std::uint32_t>(heap_.size());
    TimerEntry* e = heap_[i];
    for (;;) {
      std::uint32_t child = 2 * i + 1;
      if (child >= n) break;
      if (child + 1 < n && before(heap_[child + 1], heap_[child])) ++child;
      if (!before(heap_[child], e)) break;
      place(i, heap_[child]);
      i = child;
    }
    place(i, e);
  }

  std::vector<TimerEntry*> heap_;
  std::uint64_t next_seq_ = 0;
};

}  // namespace moirai::detail
