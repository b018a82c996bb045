// A 4-ary min-heap ordered by (key, arrival). The arrival counter makes every entry distinct, so equal keys
// leave in the order they came. Four children per node halves the depth of a binary heap. It is the exact
// fallback of both keyed classes: what the deadline calendar misses, the periods the rate-monotonic table
// has no rank for.
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
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "moirai/base/cache_line.hpp"
#include "moirai/core/detail/run_fifo.hpp"

namespace moirai::detail {

class KeyedHeap {
 public:
  bool empty() const noexcept { return size_ == 0; }
  std::size_t size() const noexcept { return size_; }

  // Precondition: !empty().
  std::int64_t min_key() const noexcept {
    const auto biased = static_cast<std::uint64_t>(groups_[0].orders[3] >> 64);
    return static_cast<std::int64_t>(biased ^ (std::uint64_t{1} << 63));
  }

  __extension__ typedef unsigned __int128 Order;  // GCC and Clang both have it; __extension__ for -Wpedantic

  // The key's sign bit flipped makes signed order unsigned order, so a negative deadline sorts first.
  static Order make_order(std::int64_t key, std::uint64_t seq) noexcept {
    const std::uint64_t biased = static_cast<std::uint64_t>(key) ^ (std::uint64_t{1} << 63);
    return (static_cast<Order>(biased) << 64) | seq;
  }

  // Precondition: !empty().
  Order min_order() const noexcept { return groups_[0].orders[3]; }

  void push(std::int64_t key, Runnable r) { push(key, next_seq_++, r); }

  // With the arrival number given by the caller, who keeps its own count (DeadlineQueue, whose entries
  // move between this heap and its calendar); it must be below 2^64 - 1.
  void push(std::int64_t key, std::uint64_t seq, Runnable r) {
    if (size_ == capacity_) [[unlikely]]
      grow();
    const Order o = make_order(key, seq);
    std::size_t hole = size_++;
    while (hole > 0) {
      const std::size_t parent = (hole - 1) / 4;
      if (!(o < order(parent))) break;
      order(hole) = order(parent);
      runnables_[hole] = runnables_[parent];
      hole = parent;
    }
    order(hole) = o;
    runnables_[hole].handle = r.handle;  // field by field, as in RunFifo::store
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

  // Hands every entry to `f(order, runnable)`, in no particular order, and leaves the heap empty with its
  // storage.
  template <typename F>
  void drain(F f) {
    for (std::size_t j = 0; j < size_; ++j) {
      f(order(j), runnables_[j]);
      order(j) = kVacant;
    }
    size_ = 0;
  }

 private:
  static constexpr Order kVacant = ~Order{0};  // an arrival number never reaches 2^64 - 1
  static constexpr std::size_t kInitialCapacity = 64;

  struct alignas(kCacheLine) Group {
    Order orders[4];
  };

  // `yes ? a : b` without a branch.
  static Order select(std::size_t yes, Order a, Order b) noexcept { return b ^ ((a ^ b) & (Order{0} - yes)); }

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

}  // namespace moirai::detail
