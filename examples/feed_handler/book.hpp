// Per-symbol top of book and the feed's sequence check: what the handler keeps on the shard that received the
// feed. Both are sized at construction and never allocate afterwards.
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>

#include "quote.hpp"

namespace moirai::examples::feed {

struct TopOfBook {
  std::int64_t bid = 0;
  std::int64_t ask = 0;
  std::uint32_t bid_size = 0;
  std::uint32_t ask_size = 0;
  std::uint64_t seq = 0;  // the quote that set it
  bool valid = false;
};

class Book {
 public:
  enum class Apply : std::uint8_t { changed, unchanged, unknown_symbol };

  explicit Book(std::uint32_t symbols) : levels_(std::make_unique<TopOfBook[]>(symbols)), symbols_(symbols) {}

  // Takes a quote: `changed` when the symbol's best bid, ask or a size moved (or it had none yet),
  // `unchanged` when the quote repeats what the book holds, `unknown_symbol` for an id past the table.
  Apply apply(std::uint64_t seq, const Quote& q) noexcept {
    if (q.symbol >= symbols_) return Apply::unknown_symbol;
    TopOfBook& t = levels_[q.symbol];
    if (t.valid && t.bid == q.bid && t.ask == q.ask && t.bid_size == q.bid_size && t.ask_size == q.ask_size)
      return Apply::unchanged;
    t = TopOfBook{q.bid, q.ask, q.bid_size, q.ask_size, seq, true};
    return Apply::changed;
  }

  // Throws std::out_of_range for a symbol past the table.
  const TopOfBook& at(std::uint32_t symbol) const {
    if (symbol >= symbols_)
      throw std::out_of_range("book: symbol " + std::to_string(symbol) + " is past the table");
    return levels_[symbol];
  }
  std::uint32_t symbols() const noexcept { return symbols_; }

 private:
  std::unique_ptr<TopOfBook[]> levels_;
  std::uint32_t symbols_;
};

// Sequence numbers across packets. The first packet sets where the feed starts (a handler may join a running
// feed). A packet past the next expected sequence is a gap: its missing quotes are counted and the packet is
// taken. A packet wholly before it is a duplicate (a retransmission or a second path) and is skipped; one
// that overlaps it is taken from the first new quote on.
struct SequenceStats {
  std::uint64_t packets = 0;     // taken, wholly or in part
  std::uint64_t gaps = 0;        // gap events
  std::uint64_t missing = 0;     // quotes never received
  std::uint64_t duplicates = 0;  // packets skipped as already seen
};

class SequenceTracker {
 public:
  struct Verdict {
    std::size_t first = 0;      // index of the first quote to apply (count: none)
    std::uint64_t missing = 0;  // quotes skipped before this packet (0: no gap)
  };

  Verdict on_packet(std::uint64_t seq, std::size_t count) noexcept {
    if (!started_) {
      started_ = true;
      next_ = seq;
      first_seq_ = seq;
    }
    const std::uint64_t end = seq + count;
    if (end <= next_) {
      ++stats_.duplicates;
      return {count, 0};
    }
    Verdict v;
    if (seq > next_) {
      v.missing = seq - next_;
      ++stats_.gaps;
      stats_.missing += v.missing;
    } else {
      v.first = static_cast<std::size_t>(next_ - seq);
    }
    ++stats_.packets;
    next_ = end;
    return v;
  }

  const SequenceStats& stats() const noexcept { return stats_; }
  bool started() const noexcept { return started_; }
  std::uint64_t first_seq() const noexcept { return first_seq_; }
  std::uint64_t next_expected() const noexcept { return next_; }

 private:
  SequenceStats stats_;
  std::uint64_t next_ = 0;
  std::uint64_t first_seq_ = 0;
  bool started_ = false;
};

}  // namespace moirai::examples::feed
