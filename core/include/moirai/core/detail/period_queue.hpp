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
#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <memory>

#include "moirai/core/detail/keyed_heap.hpp"
#include "moirai/core/detail/run_fifo.hpp"

namespace moirai::detail {

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
    RunFifo& f = fifos_[rank];
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
    if (!fifos_) fifos_ = std::make_unique<RunFifo[]>(kMaxPeriods);
    const auto rank = static_cast<unsigned>(std::lower_bound(periods_, periods_ + count_, period) - periods_);
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
  std::unique_ptr<RunFifo[]> fifos_;        // fifos_[r] holds the runnables of periods_[r]
  std::uint8_t slots_[kSlots];              // period -> rank, open addressing; kNoRank ends a probe
  KeyedHeap overflow_;                      // periods that found no rank
};

}  // namespace moirai::detail
