#include "moirai/numa/node_pool.hpp"

#include <cerrno>
#include <cstdint>
#include <string>

#include "moirai/numa/error.hpp"
#include "moirai/numa/topology.hpp"
#include "pool_abort.hpp"

namespace moirai::numa {
namespace {

std::size_t rounded_block_size(std::size_t block_size) {
  if (block_size == 0) {
    throw NumaError(EINVAL, "numa: pool block size 0; give the size of the objects the pool will hold");
  }
  if (block_size > SIZE_MAX - NodePool::kAlignment) {
    throw NumaError(EINVAL,
                    "numa: pool block size " + std::to_string(block_size) + " is absurd; ask for less");
  }
  return (block_size + NodePool::kAlignment - 1) / NodePool::kAlignment * NodePool::kAlignment;
}

std::size_t pool_bytes(std::size_t block_size, std::size_t block_count) {
  if (block_count == 0) {
    throw NumaError(EINVAL, "numa: pool of 0 blocks; give the number of blocks the pool must hold");
  }
  if (block_count > SIZE_MAX / block_size) {
    throw NumaError(EINVAL, "numa: pool of " + std::to_string(block_count) + " blocks of " +
                                std::to_string(block_size) +
                                " bytes overflows the address space; ask for less");
  }
  return block_size * block_count;
}

}  // namespace

NodePool::NodePool(int node, std::size_t block_size, std::size_t block_count, const PoolOptions& options) {
  const std::size_t size = rounded_block_size(block_size);
  memory_ = allocate_on_node(node, pool_bytes(size, block_count), options.memory);
  checked_ = options.checked;
  init(size, block_count);
}

NodePool::NodePool(NodeMemory memory, std::size_t block_size, std::size_t block_count, bool checked) {
  const std::size_t size = rounded_block_size(block_size);
  const std::size_t bytes = pool_bytes(size, block_count);
  if (!memory || memory.size() < bytes) {
    throw NumaError(EINVAL, "numa: pool of " + std::to_string(block_count) + " blocks of " +
                                std::to_string(size) + " bytes needs " + std::to_string(bytes) +
                                " bytes but was given " + std::to_string(memory.size()) + "; map more");
  }
  memory_ = std::move(memory);
  checked_ = checked;
  init(size, block_count);
}

void NodePool::init(std::size_t block_size, std::size_t block_count) {
  block_size_ = block_size;
  capacity_ = block_count;
  base_ = static_cast<char*>(memory_.data());
  span_ = block_size * block_count;
  owner_.store(detail::thread_identity(), std::memory_order_relaxed);
  if (checked_) live_bits_ = new std::atomic<std::uint64_t>[(block_count + 63) / 64] {};
  // Blocks are carved lazily (carved_), so constructing a big pool does not walk its memory.
}

NodePool::~NodePool() {
  delete[] live_bits_;
}

std::size_t NodePool::in_use() const noexcept {
  const std::size_t out = outstanding_.load(std::memory_order_relaxed);
  const std::size_t back = remote_frees_.load(std::memory_order_relaxed);
  // Read from another thread the two counters may disagree for a moment; never report "negative".
  return out >= back ? out - back : 0;
}

void* NodePool::allocate_slow() noexcept {
  // Take back what other threads freed before carving a fresh block: that keeps the working set small and
  // makes carved_ the high-water mark. The relaxed peek spares the exchange (a locked RMW) when nothing came
  // back; the acquire exchange pairs with the release CAS of every push, so the blocks' `next` links (and
  // whatever the freeing threads wrote before freeing) are visible here.
  if (remote_head_.load(std::memory_order_relaxed) != nullptr) {
    free_ = remote_head_.exchange(nullptr, std::memory_order_acquire);
    if (FreeBlock* block = free_; block != nullptr) {
      free_ = block->next;
      note_allocated();
      return block;
    }
  }
  const std::size_t carved = carved_.load(std::memory_order_relaxed);
  if (carved == capacity_) return nullptr;
  carved_.store(carved + 1, std::memory_order_relaxed);
  note_allocated();
  return base_ + carved * block_size_;
}

void* NodePool::allocate_checked() noexcept {
  if (detail::thread_identity() != owner_.load(std::memory_order_relaxed)) {
    detail::pool_abort(
        "NodePool::allocate called from a thread that is not the pool's owner; call "
        "adopt_current_thread() on the thread that allocates",
        nullptr);
  }
  void* p = nullptr;
  if (FreeBlock* block = free_; block != nullptr) {
    // A free block's link is the only thing in it we trust; a write after free shows up here as a bad link.
    if (block->next != nullptr &&
        (!owns(block->next) || (reinterpret_cast<char*>(block->next) - base_) % block_size_ != 0)) {
      detail::pool_abort(
          "NodePool free list corrupt: a freed block was written to after its free (use after free)", block);
    }
    free_ = block->next;
    note_allocated();
    p = block;
  } else {
    p = allocate_slow();
    if (p == nullptr) return nullptr;
  }
  const auto index = static_cast<std::size_t>(static_cast<char*>(p) - base_) / block_size_;
  const std::uint64_t bit = std::uint64_t{1} << (index % 64);
  // Relaxed: the bit orders nothing else; RMWs on one word are totally ordered, which is all detection needs.
  if (live_bits_[index / 64].fetch_or(bit, std::memory_order_relaxed) & bit) {
    detail::pool_abort(
        "NodePool handed out a block that is already in use: the free list is corrupt (a block "
        "was freed twice or written after free)",
        p);
  }
  return p;
}

void NodePool::deallocate_slow(void* p) noexcept {
  if (checked_) {
    if (!owns(p)) {
      detail::pool_abort(
          "NodePool::deallocate of a pointer this pool does not own (freed into the wrong pool, or "
          "never allocated from one)",
          p);
    }
    const auto offset = static_cast<std::size_t>(static_cast<char*>(p) - base_);
    if (offset % block_size_ != 0) {
      detail::pool_abort(
          "NodePool::deallocate of a misaligned pointer (not the start of a block: an interior "
          "pointer?)",
          p);
    }
    const std::size_t index = offset / block_size_;
    const std::uint64_t bit = std::uint64_t{1} << (index % 64);
    if ((live_bits_[index / 64].fetch_and(~bit, std::memory_order_relaxed) & bit) == 0) {
      detail::pool_abort("NodePool: double free detected (the block is already free)", p);
    }
  }
  auto* block = static_cast<FreeBlock*>(p);
  if (detail::thread_identity() == owner_.load(std::memory_order_relaxed)) {
    push_local(block);
  } else {
    push_remote(block);
  }
}

void NodePool::push_remote(FreeBlock* block) noexcept {
  // Treiber push. Only pushes happen concurrently (the owner takes the whole stack with one exchange and
  // never pops a single node), so there is no ABA hazard and no tag is needed. Release on success publishes
  // block->next and the caller's writes into the block to the owner's acquire exchange.
  FreeBlock* head = remote_head_.load(std::memory_order_relaxed);
  do {
    block->next = head;
  } while (
      !remote_head_.compare_exchange_weak(head, block, std::memory_order_release, std::memory_order_relaxed));
  remote_frees_.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace moirai::numa
