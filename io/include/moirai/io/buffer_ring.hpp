// A provided-buffer ring for one io::Ring: `count` buffers of `buffer_size` bytes that the kernel picks from
// when a receive with IOSQE_BUFFER_SELECT is ready (a multishot receive takes one per completion and names it
// in the CQE: IORING_CQE_F_BUFFER, id in the upper 16 bits of the flags). The application hands each buffer
// back with recycle() once it is done with the bytes.
//
// The ring's memory (count * 16 bytes, page-aligned) is mapped here and registered with
// io_uring_register_buf_ring (Linux 5.19+) under a buffer-group id. The buffers themselves are the caller's
// memory (e.g. the shard's node-local memory) or mapped here, pre-faulted.
//
// Where the kernel refuses the registration (-EINVAL before 5.19) or the caller asks for it, the ring works
// in fallback mode: the same buffers, handed out by acquire() from a free list, for one-shot receives into a
// plain buffer. supported() says which mode is in force; either way nothing allocates after construction.
//
// What it costs: recycle() is two stores and a release store of the tail (no syscall). When every buffer is
// out, a receive that needs one fails with -ENOBUFS, and a multishot receive ends (its CQE lacks
// IORING_CQE_F_MORE): the owner must recycle and re-arm; the socket itself is fine, and datagrams that arrive
// meanwhile wait in the socket's receive buffer (or are dropped by the kernel when that is full).
//
// Single-threaded like the Ring it belongs to: construct, use and destroy it on the ring's thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "moirai/io/ring.hpp"

namespace moirai::io {

struct BufferRingOptions {
  unsigned count = 64;               // buffers; a power of two, 1 to 32768
  std::uint32_t buffer_size = 2048;  // bytes per buffer
  std::span<std::byte> memory{};     // count * buffer_size bytes of the caller's; empty: mapped here
  bool register_with_kernel = true;  // false forces the fallback mode (tests, or a kernel known to lack it)
  int group = -1;                    // buffer-group id; -1: the lowest free one on this ring
};

class BufferRing {
 public:
  static constexpr unsigned kMaxBuffers = 32768;

  // Throws RingError(EINVAL) on a bad count or size, and RingError(errno) when memory cannot be mapped or no
  // buffer-group id is free. A refused registration is not an error: the ring falls back (see supported()).
  BufferRing(Ring& ring, const BufferRingOptions& options = {});
  ~BufferRing();
  BufferRing(const BufferRing&) = delete;
  BufferRing& operator=(const BufferRing&) = delete;

  // True when the kernel selects buffers from this ring (registered); false in fallback mode.
  bool supported() const noexcept { return registered_; }
  // Why registration failed (an errno), 0 when registered or when the fallback was asked for.
  int registration_error() const noexcept { return registration_error_; }
  // The buffer-group id to put in an SQE's buf_group (with IOSQE_BUFFER_SELECT).
  std::uint16_t group() const noexcept { return group_; }
  unsigned count() const noexcept { return count_; }
  std::uint32_t buffer_size() const noexcept { return size_; }
  Ring& ring() const noexcept { return *ring_; }
  // False once the ring is gone (this buffer ring outlived it): then neither it nor its owner may touch it.
  bool ring_alive() const noexcept { return *ring_alive_; }

  std::byte* buffer(std::uint16_t bid) const noexcept {
    return base_ + static_cast<std::size_t>(bid) * size_;
  }

  // Fallback mode only: a free buffer's id, or -1 when all are out.
  int acquire() noexcept {
    if (free_count_ == 0) return -1;
    ++held_;
    return free_[--free_count_];
  }
  // Gives buffer `bid` back: to the kernel's ring when registered, to the free list otherwise. Every buffer
  // a CQE named (or acquire() gave) must come back exactly once.
  void recycle(std::uint16_t bid) noexcept;
  // Buffers the application holds (named by a CQE or acquired, not yet recycled). In registered mode the
  // owner reports each CQE's buffer with note_taken(), since the kernel picks them without telling us.
  unsigned held() const noexcept { return held_; }
  void note_taken() noexcept { ++held_; }

 private:
  Ring* ring_;
  std::shared_ptr<const bool> ring_alive_;
  unsigned count_;
  std::uint32_t size_;
  std::uint16_t group_ = 0;
  bool registered_ = false;
  bool owns_buffers_ = false;
  int registration_error_ = 0;
  unsigned held_ = 0;
  io_uring_buf_ring* br_ = nullptr;  // the shared ring (registered mode)
  std::size_t br_bytes_ = 0;
  std::byte* base_ = nullptr;
  std::size_t buffer_bytes_ = 0;
  std::uint16_t* free_ = nullptr;  // fallback mode's free list (a stack of ids), inside the ring's mapping
  unsigned free_count_ = 0;
};

}  // namespace moirai::io
