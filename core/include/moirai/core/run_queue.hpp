// The shard's queue of runnable coroutines, served in policy order: every deadline runnable (earliest
// absolute deadline first), then rate-monotonic (shortest period first), then fixed priority (highest level
// first, FIFO within a level), then best effort (FIFO). The class and key come from the task's SchedParams at
// push time; a runnable without a task is best effort.
//
// One shard owns it, so nothing here is atomic. Most shards run only best-effort tasks, so that path is the
// old plain ring: push reads the task's class and stores; pop tests one counter of the other classes (zero)
// and loads. Each structure grows by doubling when a burst exceeds it and never shrinks, so in steady state
// no push or pop allocates.
#pragma once

#include <algorithm>
#include <bit>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "moirai/core/sched_params.hpp"
#include "moirai/core/task_control.hpp"

namespace moirai::detail {

struct Runnable {
  std::coroutine_handle<> handle;
  TaskControl* task;  // whose cancellation and stall accounting this resumption belongs to (may be null)
};

class RunQueue {
 public:
  // `capacity` sizes the best-effort ring up front. The other classes allocate at their first use (a shard
  // that never sees a deadline task pays nothing for the heap) and then grow like the ring.
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
  // the heap classes the key alone decides, so this is push.
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
  // A power-of-two ring of runnables; head_ and tail_ run freely and are masked on use, so push_front is a
  // decrement that wraps like any other index. A default-constructed Fifo holds no storage: mask_ + 1 == 0
  // reads as "full at size 0", so the first push allocates.
  class Fifo {
   public:
    Fifo() noexcept = default;
    explicit Fifo(std::size_t capacity) { grow_to(std::bit_ceil(std::max(capacity, kMinCapacity))); }

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

  // A 4-ary min-heap ordered by (key, arrival). The arrival counter makes every entry distinct, so equal keys
  // leave in the order they came. Four children per node halves the depth of a binary heap.
  //
  // Pop's walk down the tree is a chain of dependent loads and compares, so the layout serves it: the orders
  // (key and arrival, 16 bytes) live apart from the runnables, and entry j is stored at slot j + 3 of an
  // array of 64-byte-aligned groups of four, so the children of j (4j+1 .. 4j+4) are exactly group j + 1, one
  // cache line. An order is one 128-bit integer (biased key high, arrival low): a compare is cmp and sbb.
  // Every slot past the last entry holds kVacant, greater than any order, so every node on the walk has four
  // children and the walk has no partial-node case.
  //
  // Pop moves the hole to a leaf promoting the least child, then lifts the last entry from there: that entry
  // came from the bottom, so it rarely climbs, and the walk skips a comparison with it at every level.
  class KeyedHeap {
   public:
    bool empty() const noexcept { return size_ == 0; }
    std::size_t size() const noexcept { return size_; }

    // Precondition: !empty().
    std::int64_t min_key() const noexcept {
      const auto biased = static_cast<std::uint64_t>(groups_[0].orders[3] >> 64);
      return static_cast<std::int64_t>(biased ^ (std::uint64_t{1} << 63));
    }

    void push(std::int64_t key, Runnable r) {
      if (size_ == capacity_) [[unlikely]]
        grow();
      const Order o = make_order(key, next_seq_++);
      std::size_t hole = size_++;
      while (hole > 0) {
        const std::size_t parent = (hole - 1) / 4;
        if (!(o < order(parent))) break;
        order(hole) = order(parent);
        runnables_[hole] = runnables_[parent];
        hole = parent;
      }
      order(hole) = o;
      runnables_[hole].handle = r.handle;  // field by field, as in Fifo::store
      runnables_[hole].task = r.task;
    }

    // Precondition: !empty().
    Runnable pop() noexcept {
      const Runnable top = runnables_[0];
      const std::size_t n = --size_;
      const Order last = order(n);
      order(n) = kVacant;  // before the walk, so the walk never picks the entry being moved
      if (n == 0) return top;
      std::size_t hole = 0;
      for (;;) {
        const std::size_t first = 4 * hole + 1;
        if (first >= n) break;
        // The least of four as two pairs, then their winners, chosen with masks rather than `?:`: which child
        // wins is a coin toss that a branch would mispredict half the time, and the compilers turn `?:` on
        // 128-bit values into branches. The winners stay in registers instead of being loaded again. Orders
        // are distinct but for vacant slots, and some child is not vacant.
        const Order* c = groups_[hole + 1].orders;
        const std::size_t l = c[1] < c[0];
        const std::size_t r = 2 + (c[3] < c[2]);
        const Order lo = select(l, c[1], c[0]);
        const Order hi = select(r & 1, c[3], c[2]);
        const std::size_t pick_r = std::size_t{0} - (hi < lo);
        const std::size_t least = first + (l ^ ((l ^ r) & pick_r));
        order(hole) = order(least);
        runnables_[hole] = runnables_[least];
        hole = least;
      }
      while (hole > 0) {
        const std::size_t parent = (hole - 1) / 4;
        if (!(last < order(parent))) break;
        order(hole) = order(parent);
        runnables_[hole] = runnables_[parent];
        hole = parent;
      }
      order(hole) = last;
      runnables_[hole] = runnables_[n];
      return top;
    }

   private:
    __extension__ typedef unsigned __int128
        Order;  // GCC and Clang both have it; __extension__ for -Wpedantic

    static constexpr Order kVacant = ~Order{0};  // an arrival number never reaches 2^64 - 1
    static constexpr std::size_t kInitialCapacity = 64;

    struct alignas(64) Group {
      Order orders[4];
    };

    // The key's sign bit flipped makes signed order unsigned order, so a negative deadline sorts first.
    static Order make_order(std::int64_t key, std::uint64_t seq) noexcept {
      const std::uint64_t biased = static_cast<std::uint64_t>(key) ^ (std::uint64_t{1} << 63);
      return (static_cast<Order>(biased) << 64) | seq;
    }

    // `yes ? a : b` without a branch.
    static Order select(std::size_t yes, Order a, Order b) noexcept {
      return b ^ ((a ^ b) & (Order{0} - yes));
    }

    Order& order(std::size_t j) noexcept { return groups_[(j + 3) / 4].orders[(j + 3) % 4]; }

    void grow() {
      const std::size_t capacity = capacity_ == 0 ? kInitialCapacity : capacity_ * 2;
      // The walk reads the children of any j < size, up to slot size + 2 < capacity + 3: groups of slots 3 ..
      // capacity + 6, all vacant but for the entries.
      const std::size_t groups = capacity / 4 + 2;
      auto new_groups = std::make_unique_for_overwrite<Group[]>(groups);
      for (std::size_t g = 0; g < groups; ++g)
        for (Order& o : new_groups[g].orders)
          o = kVacant;
      auto new_runnables = std::make_unique_for_overwrite<Runnable[]>(capacity);
      for (std::size_t j = 0; j < size_; ++j) {
        new_groups[(j + 3) / 4].orders[(j + 3) % 4] = order(j);
        new_runnables[j] = runnables_[j];
      }
      groups_ = std::move(new_groups);
      runnables_ = std::move(new_runnables);
      capacity_ = capacity;
    }

    std::unique_ptr<Group[]> groups_;
    std::unique_ptr<Runnable[]> runnables_;  // runnables_[j] belongs to order(j)
    std::size_t size_ = 0;
    std::size_t capacity_ = 0;
    std::uint64_t next_seq_ = 0;  // 2^64 - 1 pushes outlast any process
  };

  // Rate-monotonic runnables, one FIFO per distinct period. A task set has few distinct periods, so the
  // periods in use sit in a small sorted table and a bitmap over their ranks names the shortest occupied one:
  // pop is a count of trailing zeros and a FIFO pop, push a hash probe and a FIFO push, whatever the count.
  //
  // A period the table lacks is added (shifting the longer periods' ranks up, rare by assumption). When all
  // kMaxPeriods ranks are taken, the periods whose FIFOs are empty are dropped first; if none is, the
  // runnable goes to a 4-ary heap that orders by (period, arrival) like the other keyed class. A period is in
  // the table or in the heap, never both, so the two are compared by period alone and FIFO order within a
  // period holds: while the heap is not empty no period is added, since the heap may hold runnables of that
  // very period that must leave before the new ones.
  class PeriodQueue {
   public:
    PeriodQueue() noexcept { std::fill(std::begin(slots_), std::end(slots_), std::uint8_t{kNoRank}); }

    bool empty() const noexcept { return size_ == 0; }
    std::size_t size() const noexcept { return size_; }

    void push(std::int64_t period, Runnable r) {
      unsigned rank = find(period);
      if (rank == kNoRank) [[unlikely]] {
        rank = add(period);
        if (rank == kNoRank) {
          overflow_.push(period, r);
          ++size_;
          return;
        }
      }
      fifos_[rank].push_back(r);
      occupied_ |= std::uint64_t{1} << rank;
      ++size_;
    }

    // Precondition: !empty().
    Runnable pop() noexcept {
      --size_;
      if (!overflow_.empty()) [[unlikely]] {
        if (occupied_ == 0 || overflow_.min_key() < periods_[std::countr_zero(occupied_)])
          return overflow_.pop();
      }
      const unsigned rank = static_cast<unsigned>(std::countr_zero(occupied_));
      Fifo& f = fifos_[rank];
      const Runnable r = f.pop_front();
      if (f.empty()) occupied_ &= ~(std::uint64_t{1} << rank);
      return r;
    }

   private:
    static constexpr unsigned kMaxPeriods = 64;  // one bitmap word
    static constexpr unsigned kSlots = 128;      // hash slots: at most half full, so probes stay short
    static constexpr unsigned kNoRank = 0xff;

    static unsigned slot_of(std::int64_t period) noexcept {
      // Fibonacci hashing: periods are often round multiples, which the multiply spreads over the top bits.
      return static_cast<unsigned>((static_cast<std::uint64_t>(period) * 0x9e3779b97f4a7c15ULL) >> 57);
    }

    unsigned find(std::int64_t period) const noexcept {
      for (unsigned s = slot_of(period);; s = (s + 1) % kSlots) {
        const unsigned rank = slots_[s];
        if (rank == kNoRank || periods_[rank] == period) return rank;
      }
    }

    // Enters `period` in the table and returns its rank, or kNoRank if it must go to the heap.
    [[gnu::noinline]] unsigned add(std::int64_t period) {
      if (!overflow_.empty()) return kNoRank;
      if (count_ == kMaxPeriods) reclaim();
      if (count_ == kMaxPeriods) return kNoRank;
      // Every FIFO ever used is kept with its storage, so a table that churns through periods reuses them.
      if (!fifos_) fifos_ = std::make_unique<Fifo[]>(kMaxPeriods);
      const auto rank =
          static_cast<unsigned>(std::lower_bound(periods_, periods_ + count_, period) - periods_);
      std::copy_backward(periods_ + rank, periods_ + count_, periods_ + count_ + 1);
      periods_[rank] = period;
      // The spare FIFO past the last rank (empty) moves to `rank`; the longer periods move up one rank.
      std::rotate(&fifos_[rank], &fifos_[count_], &fifos_[count_ + 1]);
      const std::uint64_t below = (std::uint64_t{1} << rank) - 1;
      occupied_ = (occupied_ & below) | ((occupied_ & ~below) << 1);
      ++count_;
      rehash();
      return rank;
    }

    // Drops the periods with no runnables, keeping the others in order and the empty FIFOs' storage.
    void reclaim() noexcept {
      unsigned kept = 0;
      for (unsigned rank = 0; rank < count_; ++rank) {
        if ((occupied_ >> rank & 1) == 0) continue;
        periods_[kept] = periods_[rank];
        std::swap(fifos_[kept], fifos_[rank]);
        ++kept;
      }
      count_ = kept;
      occupied_ = kept == 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << kept) - 1;
    }

    void rehash() noexcept {
      std::fill(std::begin(slots_), std::end(slots_), std::uint8_t{kNoRank});
      for (unsigned rank = 0; rank < count_; ++rank) {
        unsigned s = slot_of(periods_[rank]);
        while (slots_[s] != kNoRank)
          s = (s + 1) % kSlots;
        slots_[s] = static_cast<std::uint8_t>(rank);
      }
    }

    std::size_t size_ = 0;
    std::uint64_t occupied_ = 0;              // bit r: fifos_[r] is not empty
    unsigned count_ = 0;                      // periods in the table
    std::int64_t periods_[kMaxPeriods] = {};  // ascending, the first count_ in use
    std::unique_ptr<Fifo[]> fifos_;           // fifos_[r] holds the runnables of periods_[r]
    std::uint8_t slots_[kSlots];              // period -> rank, open addressing; kNoRank ends a probe
    KeyedHeap overflow_;                      // periods that found no rank
  };

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
      levels_ = std::make_unique<Fifo[]>(kLevels);
    Fifo& f = levels_[level];
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
    Fifo& f = levels_[w * 64 + b];
    const Runnable r = f.pop_front();
    if (f.empty()) {
      level_words_[w] &= ~(std::uint64_t{1} << b);
      if (level_words_[w] == 0) level_summary_ &= ~(std::uint64_t{1} << w);
    }
    --fixed_count_;
    return r;
  }

  // The best-effort fast path first: its ring and the count it checks share a cache line.
  Fifo best_effort_;
  std::size_t urgent_ = 0;  // runnables in every class but best effort

  KeyedHeap deadline_;  // key: absolute deadline
  PeriodQueue rate_monotonic_;
  std::unique_ptr<Fifo[]> levels_;
  std::uint64_t level_words_[kLevelWords] = {};  // bit l % 64 of word l / 64: level l is not empty
  std::uint64_t level_summary_ = 0;              // bit w: level_words_[w] != 0
  std::size_t fixed_count_ = 0;
};

}  // namespace moirai::detail
