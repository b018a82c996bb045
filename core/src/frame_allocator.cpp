#include "moirai/core/detail/frame_allocator.hpp"

#include <cstdlib>
#include <new>
#include <utility>

#include "moirai/numa/current_node.hpp"

namespace moirai::detail {
namespace {

constexpr std::uint32_t kMagic = 0x6d6f6972;  // "moir": catches a foreign pointer handed to deallocate

}  // namespace

FrameAllocator::FrameAllocator(const FrameMemoryOptions& options)
    : chunk_bytes_(options.chunk_bytes < (64u << 10) ? (64u << 10) : options.chunk_bytes),
      node_(options.node >= 0 ? options.node : numa::current_numa_node()),
      memory_(options.memory) {
  map_chunk(options.initial_bytes);
  pages_ = chunks_->memory.pages();
  locked_ = chunks_->memory.locked();
  bound_ = chunks_->memory.bound();
}

FrameAllocator::~FrameAllocator() {
  while (chunks_ != nullptr) {
    Chunk* c = chunks_;
    chunks_ = c->next;
    numa::NodeMemory unmap = std::move(c->memory);  // moved out first: it unmaps the block it lives in
    c->~Chunk();
  }
}

void FrameAllocator::map_chunk(std::size_t at_least) {
  const std::size_t bytes = at_least > chunk_bytes_ ? at_least : chunk_bytes_;
  numa::NodeMemory m = map_shard_memory(node_, bytes, memory_, lock_refused_);
  auto* c = ::new (m.data()) Chunk{numa::NodeMemory{}, chunks_};
  c->memory = std::move(m);
  chunks_ = c;
  bump_ = static_cast<char*>(c->memory.data()) + kMinBlock;
  bump_end_ = static_cast<char*>(c->memory.data()) + c->memory.size();
  bytes_mapped_ += c->memory.size();
  ++chunk_maps_;
}

numa::NodeMemory map_shard_memory(int node, std::size_t bytes, numa::AllocationOptions& memory,
                                  std::string& lock_refused) {
  if (memory.lock) {
    try {
      return numa::allocate_on_node(node, bytes, memory);
    } catch (const std::exception& e) {
      // Locked memory is a wish, not a requirement: run unlocked (still pre-faulted) and say why, once.
      lock_refused = e.what();
      memory.lock = false;
    }
  }
  return numa::allocate_on_node(node, bytes, memory);
}

void* FrameAllocator::refill(std::size_t cls) {
  const std::size_t block = kMinBlock << cls;
  if (static_cast<std::size_t>(bump_end_ - bump_) < block) map_chunk(block + kMinBlock);
  char* p = bump_;
  bump_ += block;
  return p;
}

// Every FrameFreeLists is a FrameAllocator: the slow paths of the free lists are the allocator's.
void* FrameFreeLists::allocate_oversize(std::size_t n) {
  ++static_cast<FrameAllocator*>(this)->oversize_;
  return allocate_unowned(n);
}

void* FrameFreeLists::allocate_slow(std::size_t cls) {
  // The class's list is empty: take back what other threads freed, else carve a fresh block.
  auto* self = static_cast<FrameAllocator*>(this);
  self->drain_remote();
  void* raw;
  if (FreeBlock* b = free_[cls]) {
    free_[cls] = b->next;
    raw = b;
  } else {
    raw = self->refill(cls);
  }
  // The full header, once per block: later reuses of the block rewrite only the owner (see allocate()).
  auto* h = static_cast<Header*>(raw);
  *h = Header{this, static_cast<std::uint32_t>(cls), kMagic};
  return static_cast<char*>(raw) + kHeader;
}

void* FrameFreeLists::allocate_unowned(std::size_t n) {
  auto* h = static_cast<Header*>(std::malloc(n + kHeader));
  if (h == nullptr) throw std::bad_alloc();
  *h = Header{nullptr, 0, kMagic};  // no owner: deallocate hands it back to free()
  return reinterpret_cast<char*>(h) + kHeader;
}

void FrameFreeLists::deallocate_slow(Header* h) noexcept {
  FrameFreeLists* owner = h->owner;
  if (owner == nullptr) {
    std::free(h);
    return;
  }
  static_cast<FrameAllocator*>(owner)->push_remote(h);
}

void FrameAllocator::push_remote(Header* h) noexcept {
  // The header's `owner` word doubles as the stack's next pointer once the block is free; size_class stays.
  Header* head = remote_.load(std::memory_order_relaxed);
  do {
    h->owner = reinterpret_cast<FrameFreeLists*>(head);
    // release: the owner that pops this block must see our writes to it (and the link) before reusing it.
  } while (!remote_.compare_exchange_weak(head, h, std::memory_order_release, std::memory_order_relaxed));
}

void FrameAllocator::drain_remote_slow() noexcept {
  // acquire pairs with push_remote's release. Taking the whole stack at once means no ABA: we never pop one.
  Header* h = remote_.exchange(nullptr, std::memory_order_acquire);
  while (h != nullptr) {
    Header* next = reinterpret_cast<Header*>(h->owner);
    auto* b = reinterpret_cast<FreeBlock*>(h);
    const std::size_t cls = h->size_class;
    b->next = free_[cls];
    free_[cls] = b;
    h = next;
  }
}

}  // namespace moirai::detail
