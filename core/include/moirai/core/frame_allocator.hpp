// The shard-local allocator behind coroutine frames and task records: power-of-two size classes carved from
// chunks the shard maps on its own NUMA node at start (mmap + mbind, pre-faulted, optionally huge pages and
// locked), each class a free list. In steady state an allocation is a list pop and a free a list push: no
// lock, no atomic, no syscall, no malloc, no page fault.
//
// A block freed on another thread (a frame created on one shard and destroyed on another) goes back to its
// owner through a lock-free stack that the owner drains from its loop, as Seastar returns cross-shard frees.
#pragma once

#include <atomic>
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
  void* allocate(std::size_t n);
  // A block from malloc with the same header, owned by no allocator: oversize frames, and frames made off a
  // shard.
  static void* allocate_unowned(std::size_t n);
  // Frees a block from any FrameAllocator (or from the malloc fallback), on any thread.
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

void* frame_allocate(std::size_t n);
inline void frame_deallocate(void* p) noexcept {
  FrameAllocator::deallocate(p);
}

}  // namespace moirai::detail
