#include "aggregator.hpp"

#include <algorithm>
#include <bit>
#include <cstdlib>
#include <cstring>
#include <new>
#include <type_traits>

namespace moirai::examples::telemetry {

void Aggregate::add(double v, std::int64_t intended_ns) noexcept {
  if (count == 0) {
    min = max = v;
  } else {
    min = std::min(min, v);
    max = std::max(max, v);
  }
  ++count;
  sum += v;
  if (count == 1 || intended_ns >= last_ns) {
    last = v;
    last_ns = intended_ns;
  }
}

void Aggregate::merge(const Aggregate& o) noexcept {
  if (o.count == 0) return;
  if (count == 0) {
    *this = o;
    return;
  }
  count += o.count;
  sum += o.sum;
  min = std::min(min, o.min);
  max = std::max(max, o.max);
  if (o.last_ns > last_ns) {
    last = o.last;
    last_ns = o.last_ns;
  }
}

void Aggregator::Free::operator()(Slot* p) const noexcept {
  std::free(p);
}

Aggregator::Aggregator(std::size_t max_keys) : max_keys_(std::clamp<std::size_t>(max_keys, 1, kMostKeys)) {
  static_assert(std::is_trivially_destructible_v<Slot> && std::is_aggregate_v<Slot>,
                "calloc makes the slots: all zero must be an empty slot");
  const std::size_t size = std::bit_ceil(2 * max_keys_);
  slots_.reset(static_cast<Slot*>(std::calloc(size, sizeof(Slot))));
  if (!slots_) throw std::bad_alloc();
  mask_ = size - 1;
  used_.reserve(max_keys_);
}

std::uint64_t Aggregator::hash_of(std::string_view key) noexcept {
  std::uint64_t h = 1469598103934665603ull;  // FNV-1a, then a final mix so that the low bits spread
  for (char c : key) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ull;
  }
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  return h | 1;  // never 0, which marks an empty slot
}

AddResult Aggregator::add(const Sample& s) noexcept {
  const std::string_view key = s.key_view();
  const std::uint64_t h = hash_of(key);
  for (std::size_t i = h & mask_;; i = (i + 1) & mask_) {
    Slot& slot = slots_[i];
    if (slot.hash == 0) {
      if (keys_ >= max_keys_) return AddResult::table_full;
      slot.hash = h;
      slot.key_size = s.key_size;
      std::memcpy(slot.key, s.key, s.key_size);
      slot.value.kind = s.kind;
      slot.value.add(s.value, s.intended_ns);
      used_.push_back(static_cast<std::uint32_t>(i));
      ++keys_;
      return AddResult::added;
    }
    if (slot.hash == h && std::string_view(slot.key, slot.key_size) == key) {
      if (slot.value.kind != s.kind) return AddResult::kind_mismatch;
      slot.value.add(s.value, s.intended_ns);
      return AddResult::added;
    }
  }
}

std::vector<KeyAggregate> Aggregator::snapshot() const {
  std::vector<KeyAggregate> out;
  out.reserve(keys_);
  for (const std::uint32_t i : used_) {
    const Slot& slot = slots_[i];
    out.push_back({std::string(slot.key, slot.key_size), slot.value});
  }
  return out;
}

void merge(std::vector<KeyAggregate>& into, const std::vector<KeyAggregate>& more) {
  auto by_key = [](const KeyAggregate& a, const KeyAggregate& b) { return a.key < b.key; };
  std::sort(into.begin(), into.end(), by_key);
  std::vector<KeyAggregate> added;
  for (const KeyAggregate& m : more) {
    auto [it, end] = std::equal_range(into.begin(), into.end(), m, by_key);
    while (it != end && it->value.kind != m.value.kind)
      ++it;
    if (it != end) {
      it->value.merge(m.value);
    } else {
      added.push_back(m);  // a key only `more` has (or one another shard took as the other kind)
    }
  }
  if (added.empty()) return;
  into.insert(into.end(), added.begin(), added.end());
  std::sort(into.begin(), into.end(), by_key);
}

}  // namespace moirai::examples::telemetry
