#include "stash.hpp"

#include <cstring>

namespace moirai::transport::ipc {

void Stash::reserve(std::uint32_t capacity, std::uint32_t max_payload) {
  capacity_ = capacity;
  max_payload_ = max_payload;
  bytes_ = std::make_unique<std::byte[]>(static_cast<std::size_t>(capacity) * max_payload + 1);
  entries_ = std::make_unique<Entry[]>(capacity + 1);
  order_ = std::make_unique<std::uint32_t[]>(capacity + 1);
  free_ = std::make_unique<std::uint32_t[]>(capacity + 1);
  for (std::uint32_t i = 0; i < capacity; ++i)
    free_[i] = capacity - 1 - i;
  free_count_ = capacity;
}

bool Stash::take(const std::optional<EndpointId>& from, IpcMessage& out) noexcept {
  for (std::uint32_t i = 0; i < count_; ++i) {
    const std::uint32_t idx = order_[i];
    if (from && !(entries_[idx].sender == *from)) continue;
    for (std::uint32_t k = i; k + 1 < count_; ++k)
      order_[k] = order_[k + 1];
    --count_;
    held_ = idx;
    out.sender = entries_[idx].sender;
    out.payload = {bytes_of(idx), entries_[idx].length};
    return true;
  }
  return false;
}

bool Stash::put(EndpointId sender, std::span<const std::byte> payload) noexcept {
  if (free_count_ == 0) return false;
  const std::uint32_t idx = free_[--free_count_];
  if (!payload.empty()) std::memcpy(bytes_of(idx), payload.data(), payload.size());
  entries_[idx] = {sender, static_cast<std::uint32_t>(payload.size())};
  order_[count_++] = idx;
  return true;
}

}  // namespace moirai::transport::ipc
