// Private: a node bitmask in the layout the mempolicy syscalls take (an array of unsigned long).
#pragma once

#include <climits>
#include <cstddef>
#include <vector>

namespace moirai::numa::detail {

class NodeMask {
 public:
  // 1024 nodes: the largest CONFIG_NODES_SHIFT (10) a kernel is built with, so that get_mempolicy never
  // refuses the mask as too small (it wants maxnode >= the kernel's node count).
  static constexpr std::size_t kMaxNodes = 1024;

  NodeMask() = default;
  explicit NodeMask(const std::vector<int>& nodes) noexcept {
    for (int n : nodes) {
      if (n >= 0 && static_cast<std::size_t>(n) < kMaxNodes) {
        words_[static_cast<std::size_t>(n) / kBits] |= 1UL << (static_cast<std::size_t>(n) % kBits);
        empty_ = false;
      }
    }
  }
  unsigned long* bits() noexcept { return words_; }
  const unsigned long* bits() const noexcept { return words_; }
  // The kernel drops the last bit of maxnode (a historical off-by-one that libnuma also compensates for).
  unsigned long max_node() const noexcept { return kMaxNodes + 1; }
  bool empty() const noexcept { return empty_; }
  std::vector<int> nodes() const {
    std::vector<int> out;
    for (std::size_t i = 0; i < kMaxNodes; ++i) {
      if ((words_[i / kBits] >> (i % kBits)) & 1UL) out.push_back(static_cast<int>(i));
    }
    return out;
  }

 private:
  static constexpr std::size_t kBits = sizeof(unsigned long) * CHAR_BIT;
  unsigned long words_[kMaxNodes / kBits] = {};
  bool empty_ = true;
};

}  // namespace moirai::numa::detail
