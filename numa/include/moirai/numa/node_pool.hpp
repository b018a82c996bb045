// Fixed-size blocks carved from one node's mapping, for one owner thread (a shard).
//
// The owner allocates and frees with no atomic read-modify-write at all: a singly-linked free list threaded
// through the free blocks themselves. Other threads may free too: they push onto a lock-free "remote" stack
// that the owner takes whole (one exchange) when its own list runs dry, so a block freed elsewhere finds its
// way home without a lock and without the owner paying for it on every call.
//
// Checked mode (PoolOptions::checked, the default in builds without NDEBUG) catches a double free, a foreign
// or misaligned pointer and an allocation from a thread that is not the owner: it prints what happened and
// aborts, as glibc does for "double free detected".
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "moirai/base/cache_line.hpp"
#include "moirai/numa/node_memory.hpp"

namespace moirai::numa {

struct PoolOptions {
  AllocationOptions memory{};
#ifdef NDEBUG
  bool checked = false;
#else
  bool checked = true;
#endif
};

namespace detail {
// The calling thread's identity, for one register read: its thread pointer (the TCB address, which is also
// what pthread_self() returns on glibc). Unique among live threads; a new thread may reuse a dead one's.
inline const void* thread_identity() noexcept {
  return __builtin_thread_pointer();
}
}  // namespace detail

class NodePool {
 public:
  static constexpr std::size_t kAlignment =
      16;  // block sizes are rounded up to this; blocks are aligned to it

  // `block_count` blocks of `block_size` bytes (rounded up to 16) mapped on `node` of Topology::system().
  // Throws NumaError on bad input (node, zero sizes, overflow) or when the memory cannot be had.
  NodePool(int node, std::size_t block_size, std::size_t block_count, const PoolOptions& options = {});
  // The same over memory the caller mapped (e.g. allocate_on_node on a simulated topology); it must hold
  // block_count blocks of the rounded size.
  NodePool(NodeMemory memory, std::size_t block_size, std::size_t block_count, bool checked);
  ~NodePool();
  NodePool(const NodePool&) = delete;
  NodePool& operator=(const NodePool&) = delete;

  // Owner thread only. O(1); nullptr when every block is out (after taking back the blocks other threads
  // freed).
  void* allocate() noexcept {
    if (checked_) [[unlikely]]
      return allocate_checked();
    FreeBlock* block = free_;
    if (block != nullptr) [[likely]] {
      free_ = block->next;
      note_allocated();
      return block;
    }
    return allocate_slow();
  }

  // Any thread. On the owner: an O(1) push with no atomic RMW. Elsewhere: a lock-free push the owner drains.
  // nullptr is ignored.
  void deallocate(void* p) noexcept {
    if (p == nullptr) return;
    if (checked_ || detail::thread_identity() != owner_.load(std::memory_order_relaxed)) [[unlikely]] {
      deallocate_slow(p);
      return;
    }
    push_local(static_cast<FreeBlock*>(p));
  }

  bool owns(const void* p) const noexcept {
    return reinterpret_cast<std::uintptr_t>(p) - reinterpret_cast<std::uintptr_t>(base_) < span_;
  }
  // The calling thread becomes the owner. The previous owner must have stopped using the pool (hand-over is
  // the caller's synchronisation, e.g. the thread start).
  void adopt_current_thread() noexcept { owner_.store(detail::thread_identity(), std::memory_order_relaxed); }

  int node() const noexcept { return memory_.node(); }
  std::size_t block_size() const noexcept { return block_size_; }
  std::size_t capacity() const noexcept { return capacity_; }
  // Blocks out now. Exact on the owner when no other thread is freeing; a snapshot elsewhere.
  std::size_t in_use() const noexcept;
  // The most blocks out at once (counting blocks on their way back from other threads).
  std::size_t high_water() const noexcept { return carved_.load(std::memory_order_relaxed); }
  bool checked() const noexcept { return checked_; }
  const NodeMemory& memory() const noexcept { return memory_; }

 private:
  struct FreeBlock {
    FreeBlock* next;
  };

  // Owner-written counters are atomics only so that other threads may read them without a data race; the
  // owner updates them with a relaxed load and store, which compile to plain moves (no lock prefix).
  void note_allocated() noexcept {
    outstanding_.store(outstanding_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
  void push_local(FreeBlock* block) noexcept {
    block->next = free_;
    free_ = block;
    outstanding_.store(outstanding_.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
  }
  void* allocate_slow() noexcept;
  void* allocate_checked() noexcept;
  void deallocate_slow(void* p) noexcept;
  void push_remote(FreeBlock* block) noexcept;
  void init(std::size_t block_size, std::size_t block_count);

  // --- Owner's cache line(s): read and written by the owner on every call.
  FreeBlock* free_ = nullptr;  // the owner's free list
  char* base_ = nullptr;       // first block
  std::uintptr_t span_ = 0;    // capacity_ * block_size_
  std::size_t block_size_ = 0;
  std::size_t capacity_ = 0;
  std::atomic<const void*> owner_{nullptr};  // read by every deallocating thread; written by adopt only
  std::atomic<std::size_t> outstanding_{0};  // owner's allocations minus owner's frees
  std::atomic<std::size_t> carved_{0};       // blocks handed out at least once: the next fresh one is carved_
  bool checked_ = false;
  std::atomic<std::uint64_t>* live_bits_ = nullptr;  // checked mode: bit i set while block i is out
  NodeMemory memory_;

  // --- Other threads' cache line: written by remote frees, read by the owner only when its list is empty.
  // Own line so that remote frees do not invalidate the owner's fields above (false sharing).
  alignas(kCacheLine) std::atomic<FreeBlock*> remote_head_{nullptr};
  std::atomic<std::size_t> remote_frees_{0};
  // (The class is cache-line aligned because of the alignas above, so its size is a multiple of the line:
  // nothing else shares this one.)
};

}  // namespace moirai::numa
