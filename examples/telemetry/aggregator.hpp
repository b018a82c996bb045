// One shard's aggregates: per key, how many samples came, their sum, smallest, largest and latest value. A
// fixed-size open-addressing table, laid out once: adding a sample allocates nothing and takes no lock (the
// table belongs to its shard). Past `max_keys` distinct keys a new key is refused and counted, so a client
// inventing keys cannot grow the collector's memory.
//
// Shards aggregate on their own; a scrape merges them (merge()): counters add up, a gauge's latest value is
// the one whose sample was meant to be sent last.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sample.hpp"

namespace moirai::examples::telemetry {

struct Aggregate {
  Kind kind = Kind::counter;
  std::uint64_t count = 0;
  double sum = 0;
  double min = 0;
  double max = 0;
  double last = 0;
  std::int64_t last_ns = 0;  // intended_ns of the sample `last` came from

  void add(double v, std::int64_t intended_ns) noexcept;
  void merge(const Aggregate& o) noexcept;
};

struct KeyAggregate {
  std::string key;
  Aggregate value;
};

enum class AddResult : std::uint8_t { added, table_full, kind_mismatch };

class Aggregator {
 public:
  static constexpr std::size_t kMostKeys = std::size_t{1} << 24;
  // Room for `max_keys` (1..kMostKeys, clamped) distinct keys; the table is twice that, rounded up to a power
  // of two.
  explicit Aggregator(std::size_t max_keys);

  // On the table's shard. A key first seen as a counter stays one: a gauge sample for it is refused.
  AddResult add(const Sample& s) noexcept;

  std::size_t keys() const noexcept { return keys_; }
  std::size_t max_keys() const noexcept { return max_keys_; }
  // A copy of every key's aggregate, in the order the keys came (allocates: for a scrape, not the hot path;
  // O(keys), not O(max_keys)).
  std::vector<KeyAggregate> snapshot() const;

 private:
  struct Slot {
    std::uint64_t hash = 0;  // 0: empty
    std::uint8_t key_size = 0;
    char key[kMaxKeySize] = {};
    Aggregate value;
  };
  static std::uint64_t hash_of(std::string_view key) noexcept;

  struct Free {
    void operator()(Slot* p) const noexcept;
  };
  // calloc'd: an all-zero Slot is an empty one, so the table costs no page until a key lands on it (a large
  // max_keys is cheap to give, and setting up does not stall the shard touching every page).
  std::unique_ptr<Slot[], Free> slots_;
  // The slots that hold a key, in the order they were taken (reserved for max_keys at construction, so
  // adding a key allocates nothing): a snapshot reads these, not the whole table.
  std::vector<std::uint32_t> used_;
  std::size_t mask_ = 0;
  std::size_t keys_ = 0;
  std::size_t max_keys_ = 0;
};

// Folds `more` into `into` by key (both as snapshot() returns them); the result is sorted by key.
void merge(std::vector<KeyAggregate>& into, const std::vector<KeyAggregate>& more);

}  // namespace moirai::examples::telemetry
