// Deadline runnables, earliest absolute deadline first, FIFO among equal deadlines: a calendar of
// kBuckets buckets over a sliding window of deadlines, with the KeyedHeap for whatever the window misses.
//
// Why not the heap alone: with a thousand entries its pop walks five levels of dependent loads and
// compares. A live EDF shard's deadlines are "now + relative deadline", so
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
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "moirai/core/detail/keyed_heap.hpp"
#include "moirai/core/detail/run_fifo.hpp"

namespace moirai::detail {

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
    n.r.handle = r.handle;  // field by field, as in RunFifo::store
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

}  // namespace moirai::detail
