#include "moirai/io/buffer_ring.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace moirai::io {
namespace {

std::size_t page_round(std::size_t n) {
  const auto page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  return (n + page - 1) / page * page;
}

// Anonymous, private, pre-faulted: the kernel writes into these pages from a completion, and a page fault
// there would be paid on the receive path.
void* map_or_throw(std::size_t bytes, const char* what) {
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (p == MAP_FAILED) {
    const int err = errno;
    std::string text = "buffer ring: mapping ";
    text.append(std::to_string(bytes)).append(" bytes for ").append(what).append(" failed: ");
    text.append(std::strerror(err)).append("; use fewer or smaller buffers, or free memory");
    throw RingError(err, text);
  }
  return p;
}

}  // namespace

BufferRing::BufferRing(Ring& ring, const BufferRingOptions& options)
    : ring_(&ring), ring_alive_(ring.alive()), count_(options.count), size_(options.buffer_size) {
  if (count_ == 0 || count_ > kMaxBuffers || (count_ & (count_ - 1)) != 0) {
    throw RingError(EINVAL, "buffer ring: " + std::to_string(count_) +
                                " buffers; the count must be a power of two from 1 to 32768");
  }
  if (size_ == 0) throw RingError(EINVAL, "buffer ring: buffers of 0 bytes; give each buffer some room");
  const std::size_t need = static_cast<std::size_t>(count_) * size_;
  if (!options.memory.empty() && options.memory.size() < need) {
    throw RingError(EINVAL, "buffer ring: the memory given holds " + std::to_string(options.memory.size()) +
                                " bytes, fewer than " + std::to_string(count_) + " buffers of " +
                                std::to_string(size_) + " need (" + std::to_string(need) + ")");
  }
  const int group = ring.claim_buffer_group(options.group);
  if (group < 0) {
    throw RingError(EBUSY, options.group >= 0
                               ? "buffer ring: buffer group " + std::to_string(options.group) +
                                     " is taken on this ring (or out of range); pick another or pass -1"
                               : std::string("buffer ring: every buffer-group id of this ring is taken"));
  }
  group_ = static_cast<std::uint16_t>(group);

  // One mapping holds the shared ring (16 bytes per entry, page-aligned as the kernel requires) and, after
  // it, the fallback free list, so fallback needs no separate allocation.
  const std::size_t ring_part = page_round(sizeof(io_uring_buf) * count_);
  br_bytes_ = ring_part + page_round(sizeof(std::uint16_t) * count_);
  try {
    br_ = static_cast<io_uring_buf_ring*>(map_or_throw(br_bytes_, "the ring"));
    free_ = reinterpret_cast<std::uint16_t*>(reinterpret_cast<std::byte*>(br_) + ring_part);
    if (options.memory.empty()) {
      buffer_bytes_ = page_round(need);
      base_ = static_cast<std::byte*>(map_or_throw(buffer_bytes_, "the buffers"));
      owns_buffers_ = true;
    } else {
      base_ = options.memory.data();
    }
  } catch (...) {
    if (br_ != nullptr) munmap(br_, br_bytes_);
    ring.release_buffer_group(group_);
    throw;
  }

  if (options.register_with_kernel) {
    io_uring_buf_ring_init(br_);
    io_uring_buf_reg reg{};
    reg.ring_addr = reinterpret_cast<std::uint64_t>(br_);
    reg.ring_entries = count_;
    reg.bgid = group_;
    const int rc = io_uring_register_buf_ring(ring.native(), &reg, 0);
    if (rc == 0) {
      registered_ = true;
      const int mask = io_uring_buf_ring_mask(count_);
      for (unsigned i = 0; i < count_; ++i) {
        io_uring_buf_ring_add(br_, buffer(static_cast<std::uint16_t>(i)), size_,
                              static_cast<unsigned short>(i), mask, static_cast<int>(i));
      }
      io_uring_buf_ring_advance(br_, static_cast<int>(count_));
    } else {
      registration_error_ = -rc;  // EINVAL: the kernel predates buffer rings (5.19); fall back
    }
  }
  if (!registered_) {
    // Lowest ids on top, so acquire() hands out 0, 1, 2... (only the order of a test's expectations cares).
    for (unsigned i = 0; i < count_; ++i)
      free_[i] = static_cast<std::uint16_t>(count_ - 1 - i);
    free_count_ = count_;
  }
}

BufferRing::~BufferRing() {
  if (!*ring_alive_) {
    // The ring went first (an owner destroyed after its runtime ended). The kernel tears a closed ring down
    // in its own time and may still pick a buffer of this group meanwhile, so the memory stays mapped, a leak
    // of this ring's size, rather than unmapped (or mapped again for something else) under a receive.
    return;
  }
  // Unregistering first: after it the kernel can select no buffer from this group, so unmapping the memory
  // below cannot race with a receive writing into it.
  if (registered_) io_uring_unregister_buf_ring(ring_->native(), group_);
  ring_->release_buffer_group(group_);
  if (br_ != nullptr) munmap(br_, br_bytes_);
  if (owns_buffers_) munmap(base_, buffer_bytes_);
}

void BufferRing::recycle(std::uint16_t bid) noexcept {
  if (held_ > 0) --held_;
  if (registered_) {
    io_uring_buf_ring_add(br_, buffer(bid), size_, bid, io_uring_buf_ring_mask(count_), 0);
    // A release store of the tail: the kernel sees the entry written before it sees the new tail.
    io_uring_buf_ring_advance(br_, 1);
  } else {
    free_[free_count_++] = bid;
  }
}

}  // namespace moirai::io
