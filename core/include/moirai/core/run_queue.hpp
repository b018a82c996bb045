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
#include <vector>

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
  class KeyedHeap {
   public:
    bool empty() const noexcept { return size_ == 0; }
    std::size_t size() const noexcept { return size_; }

    // Precondition: !empty().
    std::int64_t min_key() const noexcept {
      const auto biased = static_cast<std::uint64_t>(groups_[0].orders[3] >> 64);
      return static_cast<std::int64_t>(biased ^ (std::uint64_t{1} << 63));
    }

    __extension__ typedef unsigned __int128
        Order;  // GCC and Clang both have it; __extension__ for -Wpedantic

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

    struct alignas(64) Group {
      Order orders[4];
    };

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

  // Deadline runnables, earliest absolute deadline first, FIFO among equal deadlines: a calendar of
  // kBuckets buckets over a sliding window of deadlines, with the KeyedHeap for whatever the window misses.
  //
  // Why not the heap alone: with a thousand entries its pop walks five levels of dependent loads and
  // compares (40 ns for a push and a pop). A live EDF shard's deadlines are "now + relative deadline", so
  // what is queued spans a window that slides forward with the clock; cut into buckets 2^shift_ ns wide,
  // that window holds about one runnable per bucket, and the earliest is the first non-empty bucket after
  // the last one served: a two-level bitmap names it in a count of trailing zeros or two.
  //
  // Bucket number b is the biased key (sign bit flipped, as in KeyedHeap) shifted right by shift_; bucket b
  // lives in slot b % kBuckets. Every calendar entry has its bucket in [lo_, lo_ + kBuckets), so slots are
  // unambiguous and the scan for the earliest starts at lo_'s slot and wraps. Each bucket is a circular
  // singly-linked list sorted by (key, arrival), of nodes in one pool, named by its tail (whose next is the
  // head): appending (a later or equal deadline, the common case) and taking the head are O(1) and a
  // deadline earlier than its bucket's tail walks the list.
  //
  // Exactness does not depend on where an entry sits. A push goes to the heap when its bucket is outside the
  // window (far in the future, or earlier than the window and too far from its end to move it back), or
  // when its bucket is crowded (the walk passes kMaxWalk nodes). Every entry carries its arrival number, and
  // pop compares the calendar's earliest with the heap's by (key, arrival), so any key pattern is served
  // exactly; a pattern that the calendar misses only costs the heap's price plus a compare.
  //
  // The width adapts: every size() + 64 pushes (at least) the queue looks at how many pushes went to the
  // heap and how far the walks went; if either is high it rebuilds, taking the width from the spread of
  // what is queued (7/8 of it over half the window) and placing everything again. A rebuild is O(n log n)
  // after at least n pushes; one that does not help (the pattern is hostile at every width) doubles the
  // interval to the next one, up to kMaxBackoff times.
  class DeadlineQueue {
   public:
    bool empty() const noexcept { return size() == 0; }
    std::size_t size() const noexcept { return count_ + overflow_.size(); }

    // Inlined, as are place and link: passed whole to an out-of-line function, the runnable goes through the
    // stack and stalls (see push_ordered).
    [[gnu::always_inline]] void push(std::int64_t key, Runnable r) {
      if (++pushes_ >= check_at_) [[unlikely]]
        check();
      place(key, next_seq_++, r);
    }

    // Precondition: !empty().
    Runnable pop() noexcept {
      if (overflow_.empty()) [[likely]]
        return take(first_slot());
      if (count_ == 0) return overflow_.pop();
      const std::size_t s = first_slot();
      const Node& h = nodes_[nodes_[tails_[s]].next];
      if (overflow_.min_order() < KeyedHeap::make_order(h.key, h.seq)) return overflow_.pop();
      return take(s);
    }

   private:
    // 4096 buckets: the most one summary word covers. At a thousand entries spread over half of them, most
    // buckets hold none or one, so whether a push finds its bucket empty or appends is rarely mispredicted
    // (2048 measured a fifth slower); the tails are 16 KiB, allocated at the first deadline push.
    static constexpr std::size_t kBuckets = 4096;
    static constexpr std::size_t kMask = kBuckets - 1;
    static constexpr unsigned kHalfBits = 11;  // log2(kBuckets / 2)
    static constexpr unsigned kMaxWalk = 8;
    static constexpr std::uint64_t kMaxBackoff = 64;
    static constexpr std::uint32_t kNil = ~std::uint32_t{0};
    static_assert(kBuckets / 64 <= 64, "one summary word");
    static_assert(std::size_t{1} << (kHalfBits + 1) == kBuckets);

    struct Node {
      std::int64_t key;
      std::uint64_t seq;
      Runnable r;
      std::uint32_t next;  // in its bucket's circle, or in the free list
    };

    struct Item {  // an entry on its way through a rebuild
      std::int64_t key;
      std::uint64_t seq;
      Runnable r;
    };

    static std::uint64_t biased(std::int64_t key) noexcept {
      return static_cast<std::uint64_t>(key) ^ (std::uint64_t{1} << 63);
    }

    [[gnu::always_inline]] void place(std::int64_t key, std::uint64_t seq, Runnable r) {
      const std::uint64_t b = biased(key) >> shift_;
      if (count_ == 0) {
        lo_ = hi_ = b;
      } else if (b < lo_ || b - lo_ >= kBuckets) {  // not `b - lo_` alone: near 2^64 the window wraps
        if (b < lo_ && hi_ - b < kBuckets) {
          lo_ = b;  // earlier than the window, but everything queued still fits from there
        } else {
          ++diverted_;
          overflow_.push(key, seq, r);
          return;
        }
      }
      if (!link(b & kMask, key, seq, r)) {
        ++diverted_;
        overflow_.push(key, seq, r);
        return;
      }
      hi_ = std::max(hi_, b);
    }

    // Puts the entry into slot s's circle after every entry with a key <= `key`; false if that is more than
    // kMaxWalk nodes into the circle.
    //
    // Whether the bucket was empty is a coin toss at one entry per bucket, so it is not a branch: an empty
    // bucket's tail is taken to be the new node itself, whose key equals `key` and whose next is itself, and
    // the append below then makes the one-node circle.
    [[gnu::always_inline]] bool link(std::size_t s, std::int64_t key, std::uint64_t seq, Runnable r) {
      if (free_ == kNil) [[unlikely]]
        grow();
      // Members read once into locals: the stores to nodes could alias them (int64 and uint64 may), and the
      // compilers would otherwise load each again after every store.
      Node* const nodes = nodes_.get();
      std::uint32_t* const tails = tails_.get();
      const std::uint32_t x = free_;
      Node& n = nodes[x];
      const std::uint32_t free_next = n.next;
      n.key = key;
      n.next = x;
      const std::uint64_t bit = std::uint64_t{1} << (s % 64);
      const std::uint64_t word = words_[s / 64];
      // `empty ? x : tails[s]` with a mask: the compilers make the `?:` a branch.
      const std::uint32_t empty = std::uint32_t{0} - static_cast<std::uint32_t>((word & bit) == 0);
      const std::uint32_t tail = tails[s];
      const std::uint32_t t = tail ^ ((tail ^ x) & empty);
      std::uint32_t prev = t;
      if (key >= nodes[t].key) [[likely]] {
        tails[s] = x;
      } else {
        // Before the tail: find the first node with a greater key (the tail at the latest).
        std::uint32_t cur = nodes[t].next;
        unsigned steps = 0;
        while (nodes[cur].key <= key) {
          if (++steps > kMaxWalk) {
            walked_ += steps;
            n.next = free_next;  // x stays at the head of the free list
            return false;
          }
          prev = cur;
          cur = nodes[cur].next;
        }
        walked_ += steps;
      }
      n.next = nodes[prev].next;
      nodes[prev].next = x;
      n.seq = seq;
      n.r.handle = r.handle;  // field by field, as in Fifo::store
      n.r.task = r.task;
      free_ = free_next;
      words_[s / 64] = word | bit;
      summary_ |= std::uint64_t{1} << (s / 64);
      ++count_;
      return true;
    }

    // The slot of the earliest bucket; lo_ moves up to it. Precondition: count_ > 0.
    std::size_t first_slot() noexcept {
      const std::size_t start = lo_ & kMask;
      std::size_t w = start / 64;
      std::uint64_t m = words_[w] & (~std::uint64_t{0} << (start % 64));
      if (m == 0) {
        // Words after w, else wrap around to the first occupied one (possibly w itself, below start).
        const std::uint64_t later = summary_ & (~std::uint64_t{1} << w);
        w = static_cast<std::size_t>(std::countr_zero(later != 0 ? later : summary_));
        m = words_[w];
      }
      const std::size_t s = w * 64 + static_cast<std::size_t>(std::countr_zero(m));
      lo_ += (s - start) & kMask;
      return s;
    }

    // Removes and returns the head of slot s's circle. Whether that empties the bucket is again a coin toss,
    // so the bitmaps are updated with masks: unlinking the only node writes its own next, which is harmless.
    Runnable take(std::size_t s) noexcept {
      Node* const nodes = nodes_.get();
      const std::uint32_t t = tails_[s];
      const std::uint32_t h = nodes[t].next;
      Node& n = nodes[h];
      const Runnable r = n.r;
      const std::uint64_t last = std::uint64_t{0} - (h == t);
      const std::uint64_t word = words_[s / 64] & ~((std::uint64_t{1} << (s % 64)) & last);
      nodes[t].next = n.next;
      n.next = free_;
      free_ = h;  // reused first by the next push, while its line is still in cache
      words_[s / 64] = word;
      summary_ &= ~(std::uint64_t{word == 0} << (s / 64));
      --count_;
      return r;
    }

    void grow() {
      if (!tails_)
        tails_ =
            std::make_unique<std::uint32_t[]>(kBuckets);  // zeroed: link reads it before the bitmap decides
      const std::size_t capacity = capacity_ == 0 ? kInitialNodes : capacity_ * 2;
      auto bigger = std::make_unique_for_overwrite<Node[]>(capacity);
      std::copy(nodes_.get(), nodes_.get() + capacity_, bigger.get());
      nodes_ = std::move(bigger);
      for (std::size_t i = capacity_; i < capacity; ++i)
        nodes_[i].next = static_cast<std::uint32_t>(i + 1);
      nodes_[capacity - 1].next = free_;
      free_ = static_cast<std::uint32_t>(capacity_);
      capacity_ = capacity;
    }

    [[gnu::noinline]] void check() {
      const std::uint64_t window = pushes_ - window_start_;
      if (window > 0 && (diverted_ * 8 > window || walked_ * 2 > window)) {
        rebuild();
        backoff_ = rebuilt_last_ ? std::min(backoff_ * 2, kMaxBackoff) : 1;
        rebuilt_last_ = true;
      } else {
        backoff_ = 1;
        rebuilt_last_ = false;
      }
      diverted_ = 0;
      walked_ = 0;
      window_start_ = pushes_;
      check_at_ = pushes_ + (size() + 64) * backoff_;
    }

    void rebuild() {
      scratch_.clear();
      for (std::uint64_t sum = summary_; sum != 0; sum &= sum - 1) {
        const auto w = static_cast<std::size_t>(std::countr_zero(sum));
        for (std::uint64_t m = words_[w]; m != 0; m &= m - 1) {
          const std::size_t s = w * 64 + static_cast<std::size_t>(std::countr_zero(m));
          const std::uint32_t t = tails_[s];
          std::uint32_t i = t;
          do {
            i = nodes_[i].next;
            scratch_.push_back({nodes_[i].key, nodes_[i].seq, nodes_[i].r});
          } while (i != t);
        }
      }
      overflow_.drain([this](KeyedHeap::Order o, Runnable r) {
        const auto key =
            static_cast<std::int64_t>(static_cast<std::uint64_t>(o >> 64) ^ (std::uint64_t{1} << 63));
        scratch_.push_back({key, static_cast<std::uint64_t>(o), r});
      });
      std::sort(scratch_.begin(), scratch_.end(),
                [](const Item& a, const Item& b) { return a.key != b.key ? a.key < b.key : a.seq < b.seq; });
      std::fill(std::begin(words_), std::end(words_), std::uint64_t{0});
      summary_ = 0;
      count_ = 0;
      if (capacity_ > 0) {
        for (std::size_t i = 0; i + 1 < capacity_; ++i)
          nodes_[i].next = static_cast<std::uint32_t>(i + 1);
        nodes_[capacity_ - 1].next = kNil;
        free_ = 0;
      }
      if (scratch_.empty()) return;
      // Half the window over 7/8 of the spread: room ahead for what arrives, and a few outliers far in the
      // future do not widen the buckets for everyone.
      const std::uint64_t spread =
          biased(scratch_[scratch_.size() - 1 - scratch_.size() / 8].key) - biased(scratch_[0].key);
      shift_ = spread >> kHalfBits == 0 ? 0 : static_cast<unsigned>(std::bit_width(spread)) - kHalfBits;
      // In order of (key, arrival), so every link is an append.
      for (const Item& it : scratch_)
        place(it.key, it.seq, it.r);
    }

    static constexpr std::size_t kInitialNodes = 64;

    std::size_t count_ = 0;      // entries in the calendar
    std::uint64_t lo_ = 0;       // no calendar entry has an earlier bucket (the earliest's, after a pop)
    std::uint64_t hi_ = 0;       // no calendar entry has a later bucket
    unsigned shift_ = 10;        // bucket width 2^shift_ ns until the first rebuild measures the spread
    std::uint64_t summary_ = 0;  // bit w: words_[w] != 0
    std::uint64_t words_[kBuckets / 64] = {};  // bit s % 64 of word s / 64: slot s is not empty
    std::unique_ptr<std::uint32_t[]> tails_;   // tails_[s]: the tail of slot s's circle, if not empty
    std::unique_ptr<Node[]> nodes_;
    std::size_t capacity_ = 0;
    std::uint32_t free_ = kNil;
    KeyedHeap overflow_;  // what the calendar missed
    std::uint64_t next_seq_ = 0;

    // Adaptation: pushes so far, the next check, and this interval's pushes to the heap and walk steps.
    std::uint64_t pushes_ = 0;
    std::uint64_t check_at_ = 64;
    std::uint64_t window_start_ = 0;
    std::uint64_t diverted_ = 0;
    std::uint64_t walked_ = 0;
    std::uint64_t backoff_ = 1;
    bool rebuilt_last_ = false;
    std::vector<Item> scratch_;  // kept between rebuilds, so they allocate only when the queue has grown
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

  DeadlineQueue deadline_;  // key: absolute deadline
  PeriodQueue rate_monotonic_;
  std::unique_ptr<Fifo[]> levels_;
  std::uint64_t level_words_[kLevelWords] = {};  // bit l % 64 of word l / 64: level l is not empty
  std::uint64_t level_summary_ = 0;              // bit w: level_words_[w] != 0
  std::size_t fixed_count_ = 0;
};

}  // namespace moirai::detail
