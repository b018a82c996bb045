// The shard-local allocator behind coroutine frames and task records: power-of-two size classes carved from
// chunks the shard maps at start, each class a free list. In steady state an allocation is a list pop and a
// free a list push: no lock, no atomic, no syscall, no malloc.
//
// A block freed on another thread (a frame created on one shard and destroyed on another) goes back to its
// owner through a lock-free stack that the owner drains from its loop, as Seastar returns cross-shard frees.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace moirai::detail {

class FrameAllocator {
 public:
  static constexpr std::size_t kHeader = 16;    // keeps the 16-byte alignment operator new promises
  static constexpr std::size_t kMinBlock = 64;  // one cache line: smaller frames would share lines
  static constexpr std::size_t kClasses = 8;    // 64 B .. 8 KiB blocks, header included
  static constexpr std::size_t kMaxBlock = kMinBlock << (kClasses - 1);

  // `chunk_bytes` is how much is mapped at a time; `lock` mlocks each chunk. Chunks are pre-faulted.
  explicit FrameAllocator(std::size_t chunk_bytes = 1 << 20, bool lock = false);
  ~FrameAllocator();
  FrameAllocator(const FrameAllocator&) = delete;
  FrameAllocator& operator=(const FrameAllocator&) = delete;

  // Never returns nullptr: throws std::bad_alloc when the kernel refuses more memory.
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
  struct Chunk {
    void* base;
    std::size_t bytes;
    Chunk* next;
  };
  Chunk* chunks_ = nullptr;
  std::size_t chunk_bytes_;
  bool lock_;
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
