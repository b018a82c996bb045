// The hot half of the shard's frame allocator (frame_allocator.hpp): the free lists a coroutine frame or a
// task record is taken from and given back to, inline, so that a Task needs nothing more to allocate its
// frame. Power-of-two size classes, each a free list: in steady state an allocation is a list pop and a free
// a list push, with no lock, no atomic, no syscall and no malloc. Refilling a list, blocks too large for any
// class and blocks freed by another thread take the out-of-line paths, defined with FrameAllocator.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>

namespace moirai::detail {

class FrameFreeLists {
 public:
  static constexpr std::size_t kHeader = 16;    // keeps the 16-byte alignment operator new promises
  static constexpr std::size_t kMinBlock = 64;  // one cache line: smaller frames would share lines
  static constexpr std::size_t kClasses = 8;    // 64 B .. 8 KiB blocks, header included
  static constexpr std::size_t kMaxBlock = kMinBlock << (kClasses - 1);

  FrameFreeLists(const FrameFreeLists&) = delete;
  FrameFreeLists& operator=(const FrameFreeLists&) = delete;

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
  // Frees a block from any frame allocator (or from the malloc fallback), on any thread. Inline: on the owner
  // it is a list push; malloc'ed and remote blocks take the out-of-line path.
  static void deallocate(void* p) noexcept;

 protected:
  FrameFreeLists() noexcept = default;
  ~FrameFreeLists() = default;

  struct Header {
    FrameFreeLists* owner;  // nullptr: the block came from malloc (oversize, or no shard on this thread)
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

  // The rare paths, out of line so that the inline fast paths stay small (frame_allocator.cpp).
  [[gnu::noinline]] void* allocate_oversize(std::size_t n);
  [[gnu::noinline]] void* allocate_slow(std::size_t cls);
  [[gnu::noinline]] static void deallocate_slow(Header* h) noexcept;

  FreeBlock* free_[kClasses] = {};
};

// The calling thread's frame allocator: its shard's, or nullptr on a thread that is not a shard.
inline thread_local FrameFreeLists* t_frame_allocator = nullptr;

inline void FrameFreeLists::deallocate(void* p) noexcept {
  if (p == nullptr) return;
  auto* h = reinterpret_cast<Header*>(static_cast<char*>(p) - kHeader);
  FrameFreeLists* owner = h->owner;
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
  if (FrameFreeLists* a = t_frame_allocator) [[likely]] {
    return a->allocate(n);
  }
  // Not on a shard (a Task created before the runtime starts, or by a plain thread).
  return FrameFreeLists::allocate_unowned(n);
}
inline void frame_deallocate(void* p) noexcept {
  FrameFreeLists::deallocate(p);
}

}  // namespace moirai::detail
