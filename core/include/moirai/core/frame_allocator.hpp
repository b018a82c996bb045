// The shard-local allocator behind coroutine frames and task records: power-of-two size classes carved from
// chunks the shard maps on its own NUMA node at start (mmap + mbind, pre-faulted, optionally huge pages and
// locked), each class a free list. In steady state an allocation is a list pop and a free a list push: no
// lock, no atomic, no syscall, no malloc, no page fault.
//
// A block freed on another thread (a frame created on one shard and destroyed on another) goes back to its
// owner through a lock-free stack that the owner drains from its loop, as Seastar returns cross-shard frees.
#pragma once

#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <string>

#include "moirai/numa/node_memory.hpp"

namespace moirai::detail {

struct FrameMemoryOptions {
  int node = -1;                        // -1: the node of the CPU the constructing thread runs on
  std::size_t initial_bytes = 1 << 20;  // mapped by the constructor
  std::size_t chunk_bytes = 1 << 20;    // mapped each time the memory runs out (at least 64 KiB)
  numa::AllocationOptions memory{};     // huge pages, lock, pre-fault
};

class FrameAllocator {
 public:
  static constexpr std::size_t kHeader = 16;    // keeps the 16-byte alignment operator new promises
  static constexpr std::size_t kMinBlock = 64;  // one cache line: smaller frames would share lines
  static constexpr std::size_t kClasses = 8;    // 64 B .. 8 KiB blocks, header included
  static constexpr std::size_t kMaxBlock = kMinBlock << (kClasses - 1);

  // Maps `initial_bytes` on the node at once. A lock the kernel refuses (RLIMIT_MEMLOCK) is not fatal: the
  // memory is mapped unlocked and lock_refused() says why. Throws numa::NumaError when no memory is mapped.
  explicit FrameAllocator(const FrameMemoryOptions& options = {});
  ~FrameAllocator();
  FrameAllocator(const FrameAllocator&) = delete;
  FrameAllocator& operator=(const FrameAllocator&) = delete;

  // Never returns nullptr: throws numa::NumaError (a std::system_error) when the kernel refuses more memory.
  // Inline: the steady state is a list pop and one store, and a call would cost as much again.
  void* allocate(std::size_t n) {
    const std::size_t total = n + kHeader;
    if (total > kMaxBlock) [[unlikely]]
      return allocate_oversize(n);
    const std::size_t cls = class_of(total);
    FreeBlock* b = free_[cls];
    if (b == nullptr) [[unlikely]]
      return allocate_slow(cls);
    free_[cls] = b->next;
    // Only the owner word needs writing: a block on free_[cls] was handed out as class `cls` before, so its
    // size_class and magic (bytes 8..15) are intact; the free-list link, and the remote stack's link, live in
    // bytes 0..7 only.
    auto* h = reinterpret_cast<Header*>(b);
    h->owner = this;
    return reinterpret_cast<char*>(h) + kHeader;
  }
  // A block from malloc with the same header, owned by no allocator: oversize frames, and frames made off a
  // shard.
  static void* allocate_unowned(std::size_t n);
  // Frees a block from any FrameAllocator (or from the malloc fallback), on any thread. Inline: on the owner
  // it is a list push; malloc'ed and remote blocks take the out-of-line path.
  static void deallocate(void* p) noexcept;
  // Takes back the blocks other threads freed. Called by the owner, from its loop.
  void drain_remote() noexcept {
    if (remote_.load(std::memory_order_relaxed) != nullptr) drain_remote_slow();
  }

  std::size_t bytes_mapped() const noexcept { return bytes_mapped_; }
  int node() const noexcept { return node_; }
  // What the first mapping obtained: page kind, lock, placement by mbind.
  numa::PageKind pages() const noexcept { return pages_; }
  bool locked() const noexcept { return locked_; }
  bool bound() const noexcept { return bound_; }
  // Why a requested lock was refused (empty when it was not).
  const std::string& lock_refused() const noexcept { return lock_refused_; }
  std::uint64_t chunk_maps() const noexcept { return chunk_maps_; }
  std::uint64_t oversize_allocations() const noexcept { return oversize_; }

 private:
  struct Header {
    FrameAllocator* owner;  // nullptr: the block came from malloc (oversize, or no shard on this thread)
    std::uint32_t size_class;
    std::uint32_t magic;
  };
  struct FreeBlock {
    FreeBlock* next;
  };
  static_assert(sizeof(Header) == kHeader);

  // 1..64 -> 0, 65..128 -> 1, 129..256 -> 2, ...: one lzcnt, no branch (the `| (kMinBlock - 1)` folds the
  // smallest sizes into class 0).
  static std::size_t class_of(std::size_t total) noexcept {
    return static_cast<std::size_t>(std::bit_width((total - 1) | (kMinBlock - 1))) - 6;
  }
  static_assert(kMinBlock == 64, "class_of assumes 64-byte minimum blocks");

  // The rare paths, out of line so that the inline fast paths stay small.
  [[gnu::noinline]] void* allocate_oversize(std::size_t n);
  [[gnu::noinline]] void* allocate_slow(std::size_t cls);
  [[gnu::noinline]] static void deallocate_slow(Header* h) noexcept;
  void* refill(std::size_t cls);
  void map_chunk(std::size_t at_least);
  void drain_remote_slow() noexcept;
  void push_remote(Header* h) noexcept;

  FreeBlock* free_[kClasses] = {};
  char* bump_ = nullptr;
  char* bump_end_ = nullptr;
  // A chunk's own mapping handle lives in the chunk's first block, so mapping needs no malloc.
  struct Chunk {
    numa::NodeMemory memory;
    Chunk* next;
  };
  static_assert(sizeof(Chunk) <= kMinBlock);
  Chunk* chunks_ = nullptr;
  std::size_t chunk_bytes_;
  int node_;
  numa::AllocationOptions memory_;
  numa::PageKind pages_ = numa::PageKind::normal;
  bool locked_ = false;
  bool bound_ = false;
  std::string lock_refused_;
  std::size_t bytes_mapped_ = 0;
  std::uint64_t chunk_maps_ = 0;
  std::uint64_t oversize_ = 0;
  // Written by other threads (push with CAS), emptied by the owner (exchange). On its own cache line so
  // remote frees do not slow the owner's free lists.
  alignas(64) std::atomic<Header*> remote_{nullptr};
};

// The calling thread's allocator: its shard's, or nullptr on a thread that is not a shard.
inline thread_local FrameAllocator* t_frame_allocator = nullptr;

inline void FrameAllocator::deallocate(void* p) noexcept {
  if (p == nullptr) return;
  auto* h = reinterpret_cast<Header*>(static_cast<char*>(p) - kHeader);
  FrameAllocator* owner = h->owner;
  // A malloc'ed block (owner nullptr) never matches here, even on a thread without an allocator.
  if (owner == t_frame_allocator && owner != nullptr) [[likely]] {
    auto* b = reinterpret_cast<FreeBlock*>(h);
    FreeBlock*& head = owner->free_[h->size_class];
    b->next = head;
    head = b;
    return;
  }
  deallocate_slow(h);
}

inline void* frame_allocate(std::size_t n) {
  if (FrameAllocator* a = t_frame_allocator) [[likely]] {
    return a->allocate(n);
  }
  // Not on a shard (a Task created before the runtime starts, or by a plain thread).
  return FrameAllocator::allocate_unowned(n);
}
inline void frame_deallocate(void* p) noexcept {
  FrameAllocator::deallocate(p);
}

}  // namespace moirai::detail
