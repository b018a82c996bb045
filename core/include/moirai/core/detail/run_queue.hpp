// The shard's queue of runnable coroutines, served in policy order: every deadline runnable (earliest
// absolute deadline first), then rate-monotonic (shortest period first), then fixed priority (highest level
// first, FIFO within a level), then best effort (FIFO). The class and key come from the task's SchedParams at
// push time; a runnable without a task is best effort.
//
// One shard owns it, so nothing here is atomic. Most shards run only best-effort tasks, so that path is a
// plain ring: push reads the task's class and stores; pop tests one counter of the other classes (zero)
// and loads. Each structure grows by doubling when a burst exceeds it and never shrinks, so in steady state
// no push or pop allocates.
#pragma once

#include <algorithm>
#include <bit>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "moirai/core/detail/deadline_queue.hpp"
#include "moirai/core/detail/period_queue.hpp"
#include "moirai/core/detail/run_fifo.hpp"
#include "moirai/core/detail/sched_params.hpp"
#include "moirai/core/detail/task_control.hpp"

namespace moirai::detail {

class RunQueue {
 public:
  // `capacity` sizes the best-effort ring up front. The other classes allocate at their first use (a shard
  // that never sees a deadline task pays nothing for the calendar) and then grow like the ring.
  explicit RunQueue(std::size_t capacity = 4096) : best_effort_(capacity) {}

  bool empty() const noexcept { return size() == 0; }
  std::size_t size() const noexcept { return best_effort_.size() + urgent_; }

  std::size_t size(SchedClass c) const noexcept {
    switch (c) {
      case SchedClass::deadline:
        return deadline_.size();
      case SchedClass::rate_monotonic:
        return rate_monotonic_.size();
      case SchedClass::fixed_priority:
        return fixed_count_;
      case SchedClass::best_effort:
        return best_effort_.size();
    }
    return 0;
  }

  // At the back of its class (of its level, for fixed priority).
  void push(Runnable r) {
    if (r.task == nullptr || r.task->sched.cls == SchedClass::best_effort) [[likely]] {
      best_effort_.push_back(r);
      return;
    }
    push_ordered(r.handle, r.task, /*front=*/false);
  }

  // At the front of its class or level: a round-robin task that yields with slice left keeps its turn. For
  // the keyed classes (deadline, rate monotonic) the key and arrival alone decide, so this is push.
  void push_front(Runnable r) {
    if (r.task == nullptr || r.task->sched.cls == SchedClass::best_effort) [[likely]] {
      best_effort_.push_front(r);
      return;
    }
    push_ordered(r.handle, r.task, /*front=*/true);
  }

  // Precondition: !empty().
  Runnable pop() noexcept {
    if (urgent_ == 0) [[likely]]
      return best_effort_.pop_front();
    return pop_ordered();
  }

 private:
  static constexpr unsigned kLevels = 256;  // SchedParams::priority is a uint8_t
  static constexpr unsigned kLevelWords = kLevels / 64;

  // The runnable arrives as its two fields: passed whole to an out-of-line function, g++ rebuilds it through
  // the stack (two 8-byte stores, one 16-byte load) and stalls on the store buffer.
  void push_ordered(std::coroutine_handle<> handle, TaskControl* task, bool front) {
    const Runnable r{handle, task};
    const SchedParams& s = task->sched;
    switch (s.cls) {
      case SchedClass::deadline:
        deadline_.push(s.key, r);
        break;
      case SchedClass::rate_monotonic:
        rate_monotonic_.push(s.key, r);
        break;
      case SchedClass::fixed_priority:
        push_fixed(s.priority, r, front);
        break;
      default:  // best_effort is handled inline; an out-of-range class is served as best effort
        if (front) {
          best_effort_.push_front(r);
        } else {
          best_effort_.push_back(r);
        }
        return;
    }
    ++urgent_;
  }

  void push_fixed(unsigned level, Runnable r, bool front) {
    // 256 empty level headers are 8 KiB: allocated once, at the first fixed-priority push, so a shard (and
    // the Shard object) that never uses priorities does not carry them.
    if (!levels_) [[unlikely]]
      levels_ = std::make_unique<RunFifo[]>(kLevels);
    RunFifo& f = levels_[level];
    if (front) {
      f.push_front(r);
    } else {
      f.push_back(r);
    }
    const unsigned w = level / 64;
    level_words_[w] |= std::uint64_t{1} << (level % 64);
    level_summary_ |= std::uint64_t{1} << w;
    ++fixed_count_;
  }

  Runnable pop_ordered() noexcept {
    --urgent_;
    if (!deadline_.empty()) return deadline_.pop();
    if (!rate_monotonic_.empty()) return rate_monotonic_.pop();
    // urgent_ was nonzero, so some level is occupied: the summary names the highest non-empty word, the word
    // the highest level in it.
    const unsigned w = static_cast<unsigned>(std::bit_width(level_summary_)) - 1;
    const unsigned b = static_cast<unsigned>(std::bit_width(level_words_[w])) - 1;
    RunFifo& f = levels_[w * 64 + b];
    const Runnable r = f.pop_front();
    if (f.empty()) {
      level_words_[w] &= ~(std::uint64_t{1} << b);
      if (level_words_[w] == 0) level_summary_ &= ~(std::uint64_t{1} << w);
    }
    --fixed_count_;
    return r;
  }

  // The best-effort fast path first: its ring and the count it checks share a cache line.
  RunFifo best_effort_;
  std::size_t urgent_ = 0;  // runnables in every class but best effort

  DeadlineQueue deadline_;  // key: absolute deadline
  PeriodQueue rate_monotonic_;
  std::unique_ptr<RunFifo[]> levels_;
  std::uint64_t level_words_[kLevelWords] = {};  // bit l % 64 of word l / 64: level l is not empty
  std::uint64_t level_summary_ = 0;              // bit w: level_words_[w] != 0
  std::size_t fixed_count_ = 0;
};

}  // namespace moirai::detail
