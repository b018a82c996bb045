// The shard-local allocator behind coroutine frames and task records: the free lists of
// frame_free_lists.hpp, refilled from chunks the shard maps on its own NUMA node at start (mmap + mbind,
// pre-faulted, optionally huge pages and locked).
//
// A block freed on another thread (a frame created on one shard and destroyed on another) goes back to its
// owner through a lock-free stack that the owner drains from its loop.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>

#include "moirai/base/cache_line.hpp"
#include "moirai/core/detail/frame_free_lists.hpp"
#include "moirai/numa/node_memory.hpp"

namespace moirai::detail {

struct FrameMemoryOptions {
  int node = -1;                        // -1: the node of the CPU the constructing thread runs on
  std::size_t initial_bytes = 1 << 20;  // mapped by the constructor
  std::size_t chunk_bytes = 1 << 20;    // mapped each time the memory runs out (at least 64 KiB)
  numa::AllocationOptions memory{};     // huge pages, lock, pre-fault
};

class FrameAllocator final : public FrameFreeLists {
 public:
  // Maps `initial_bytes` on the node at once. A lock the kernel refuses (RLIMIT_MEMLOCK) is not fatal: the
  // memory is mapped unlocked and lock_refused() says why. Throws numa::NumaError when no memory is mapped.
  explicit FrameAllocator(const FrameMemoryOptions& options = {});
  ~FrameAllocator();

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
  friend class FrameFreeLists;  // its slow paths are this allocator's

  void* refill(std::size_t cls);
  void map_chunk(std::size_t at_least);
  void drain_remote_slow() noexcept;
  void push_remote(Header* h) noexcept;

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
  alignas(kCacheLine) std::atomic<Header*> remote_{nullptr};
};

// The calling thread's allocator, with its whole interface (null on a thread that is not a shard).
inline FrameAllocator* this_frame_allocator() noexcept {
  return static_cast<FrameAllocator*>(t_frame_allocator);
}

// Maps `bytes` on `node` with `memory`. A lock the kernel refuses is dropped rather than fatal: `memory.lock`
// becomes false (so later mappings do not retry) and the reason goes to `lock_refused`. Throws
// numa::NumaError when nothing can be mapped.
numa::NodeMemory map_shard_memory(int node, std::size_t bytes, numa::AllocationOptions& memory,
                                  std::string& lock_refused);

}  // namespace moirai::detail
