// Registered send buffers: a shard's pool of fixed-size buffers in one mapping, registered with the shard's
// ring (io_uring_register_buffers), that the application writes a message into and then sends whole.
//
// StreamSocket::send(SendBuffer, bytes), DatagramSocket::send(SendBuffer, bytes) and
// FramedStream::send(SendBuffer, type, payload_bytes) take one. A send from one goes out as IORING_OP_SEND_ZC
// with IORING_RECVSEND_FIXED_BUF: the kernel neither copies the bytes into the socket nor pins their pages
// per send (they were pinned once, at registration). The send resumes its task when the kernel has taken the
// bytes; the buffer goes back to the pool later, with the zero-copy notification, once no part of the kernel
// reads it any more (on a real NIC: when the segments were acknowledged and freed). Until then it is not
// handed out again, so a sender never overwrites bytes still in flight.
//
// The fallbacks (tests force each: zero_copy off, a second pool, a Unix socket):
//   - plain IORING_OP_SEND from the same buffers (one copy into the socket; the buffer is free again at its
//     completion) where the kernel lacks IORING_OP_SEND_ZC (Linux 6.0) or SendBufferOptions::zero_copy is
//     off, and from a socket's first EOPNOTSUPP on (Unix sockets have no zero copy);
//   - zero copy from unregistered memory (its pages pinned per send) where the ring's buffer table is taken
//     (one registered pool per ring: a second pool on the same shard) or the kernel refused registration
//     (RLIMIT_MEMLOCK, for one): registered() says which.
// Over loopback the kernel copies a zero-copy send's bytes anyway, when it hands them to the receiving
// socket (the notification says so, on Linux 6.2+: SendBufferStats::copied_sends), so zero copy costs more
// than a plain send there: bench/send_buffers_bench.cpp measures both. It pays for large messages leaving
// through a NIC.
//
// A frame (frame.hpp): write its payload at kFrameHeaderSize and FramedStream::send(SendBuffer, type, bytes)
// writes the header in front of it.
//
// A pool belongs to the shard that made it: use and destroy it there, before the runtime ends (a pool whose
// buffers are still in flight then frees itself when the last comes back). Nothing is allocated per send: the
// buffers, their completions and the waiting senders all live in the pool, made once.
#pragma once

#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <utility>

#include "moirai/core/detail/shard_core.hpp"
#include "moirai/core/detail/wait_list.hpp"
#include "moirai/core/task.hpp"

namespace moirai::transport {

struct SendBufferOptions {
  std::size_t buffer_size = 64 * 1024;  // bytes per buffer (rounded up to the page size)
  unsigned count = 16;                  // buffers in the pool, 1 to 1024
  bool zero_copy = true;                // IORING_OP_SEND_ZC where the kernel has it, else plain sends
};

struct SendBufferStats {
  std::uint64_t zero_copy_sends = 0;  // sends made with IORING_OP_SEND_ZC
  std::uint64_t copied_sends = 0;     // of those, the ones the kernel reported it copied after all
  std::uint64_t plain_sends = 0;      // sends made with IORING_OP_SEND
};

class SendBufferPool;

namespace detail {
struct SendSlot;
struct SendPoolState;
struct SendAccess;
// A task waiting in SendBufferPool::acquire(), and the buffer handed to it.
struct SlotWaiter : moirai::detail::Waiter {
  SendSlot* got = nullptr;
};
}  // namespace detail

// One buffer of a pool, owned by whoever holds this handle. Dropping it (unsent, or once its send returned)
// gives it back to the pool; a buffer whose bytes the kernel may still read goes back only when the kernel
// says it is done with them.
class SendBuffer {
 public:
  SendBuffer() noexcept = default;
  SendBuffer(SendBuffer&& o) noexcept : slot_(std::exchange(o.slot_, nullptr)) {}
  SendBuffer& operator=(SendBuffer&& o) noexcept;
  SendBuffer(const SendBuffer&) = delete;
  SendBuffer& operator=(const SendBuffer&) = delete;
  ~SendBuffer() { release(); }

  // The whole buffer, to write a message into.
  std::span<std::byte> bytes() const noexcept;
  explicit operator bool() const noexcept { return slot_ != nullptr; }
  void release() noexcept;

 private:
  friend class SendBufferPool;
  friend struct detail::SendAccess;
  explicit SendBuffer(detail::SendSlot* slot) noexcept : slot_(slot) {}
  detail::SendSlot* slot_ = nullptr;
};

namespace detail {
// What the sockets' sends need of a buffer (internal).
struct SendAccess {
  // The slot behind `buffer`; TransportError(invalid_argument), naming `who`, for an empty buffer or `bytes`
  // over its size.
  static SendSlot* slot_for(const SendBuffer& buffer, std::size_t bytes, const char* who);
};
}  // namespace detail

class SendBufferPool {
 public:
  // Maps and (where it can) registers the buffers with this shard's ring. On a shard. Throws
  // TransportError(invalid_argument) for a count or size out of range, TransportError(closed) naming the
  // errno when the memory cannot be mapped.
  explicit SendBufferPool(const SendBufferOptions& options = {});
  SendBufferPool(SendBufferPool&& o) noexcept : state_(std::exchange(o.state_, nullptr)) {}
  SendBufferPool& operator=(SendBufferPool&&) = delete;
  SendBufferPool(const SendBufferPool&) = delete;
  SendBufferPool& operator=(const SendBufferPool&) = delete;
  // Buffers still held or in flight keep the memory (and the ring's registration) until they come back.
  ~SendBufferPool();

  // A free buffer, or nullopt when every one is held or in flight.
  std::optional<SendBuffer> try_acquire() noexcept;

  class [[nodiscard]] AcquireAwaiter {
   public:
    bool await_ready();
    void await_suspend(std::coroutine_handle<> h) noexcept;
    SendBuffer await_resume();

   private:
    friend class SendBufferPool;
    explicit AcquireAwaiter(detail::SendPoolState* s) noexcept : state_(s) {}
    detail::SendPoolState* state_;
    detail::SlotWaiter waiter_;
  };
  // A free buffer, waiting (in order of asking) for one to come back when none is free.
  AcquireAwaiter acquire() noexcept { return AcquireAwaiter(state_); }
  // Returns once every buffer is back: those the application held, and those the kernel may still read until
  // its zero-copy notification. Await it before destroying the pool, on its shard. It takes the buffers in
  // turn as acquire() does (tasks acquiring meanwhile wait behind it) and gives them all back at the end, so
  // the caller must hold none itself; bound it with with_timeout() if a buffer may never come back.
  Task<void> drained();

  // Whether the buffers are registered with the ring (sends use IORING_RECVSEND_FIXED_BUF).
  bool registered() const noexcept;
  // Whether sends use IORING_OP_SEND_ZC.
  bool zero_copy() const noexcept;
  std::size_t buffer_size() const noexcept;
  unsigned count() const noexcept;
  unsigned available() const noexcept;  // free buffers now
  const SendBufferStats& stats() const noexcept;

 private:
  detail::SendPoolState* state_ = nullptr;
};

}  // namespace moirai::transport
