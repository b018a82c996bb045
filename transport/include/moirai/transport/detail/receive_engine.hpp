// The receive path shared by DatagramSocket and StreamReceiver (internal; applications use those).
//
// One request stays armed on the socket: a multishot recvmsg (datagrams: the sender's address comes along)
// or multishot recv (streams) selecting buffers from a provided-buffer ring. Each CQE's buffer goes into a
// small fixed-capacity queue, and the task waiting in recv() is resumed from the CQE on the socket's shard.
// The queue holds at most one entry per buffer, so it never overflows: when the application holds every
// buffer, the kernel's -ENOBUFS ends the multishot request (a CQE without IORING_CQE_F_MORE) and that is the
// backpressure. The request is re-armed when a buffer comes back; datagrams that arrive meanwhile wait in the
// socket's receive buffer, and once that is full the kernel drops them (UDP may drop; the count comes with
// the next datagram, see DatagramSocket::kernel_drops).
//
// Fallback, where the kernel lacks buffer rings (before 5.19) or multishot receive (before 6.0, seen as
// -EINVAL), or when asked: one one-shot recvmsg/recv at a time into a buffer taken from the same ring's free
// list, re-armed from its completion while buffers are free.
//
// Idle polling (RecvOptions::poll_when_idle): while a task waits, the engine is the shard's idle poller
// and reads the socket with a non-blocking recv/recvmsg into a buffer of its own (kDirectBid, outside the
// ring), in the same layout. It reads only when no completion of the socket waits to be reaped (the shard
// reaped the CQ in the lap before, and a CQ overflow stops it), so bytes the ring took earlier always come
// first; the armed request finds the socket empty afterwards, or takes the bytes that came later.
//
// The engine lives on the heap, apart from the socket that owns it, so that the socket can move while a
// request points at the engine. Destroying it cancels the request and waits (briefly, in the ring) for its
// last CQE; nothing is freed while the kernel may still complete into it.
#pragma once

#include <liburing.h>
#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <climits>
#include <coroutine>
#include <cstdint>
#include <memory>

#include "moirai/core/detail/shard_core.hpp"
#include "moirai/core/detail/task_control.hpp"
#include "moirai/core/detail/timer_queue.hpp"
#include "moirai/io/buffer_ring.hpp"
#include "moirai/transport/recv_options.hpp"

namespace moirai::transport::detail {

enum class ReceiveKind : std::uint8_t { datagram, stream };

// One queue entry: `res` bytes in buffer `bid`, or (bid < 0) an error (-errno), the end of a stream (0), or
// the waiter's own timeout (kTimedOut, apart from a kernel's -ETIMEDOUT).
inline constexpr std::int32_t kTimedOut = INT32_MIN;
// The id of the engine's own buffer for idle polling (past any ring buffer's 16-bit id).
inline constexpr std::int32_t kDirectBid = 1 << 16;
struct Received {
  std::int32_t res = 0;
  std::int32_t bid = -1;
};

class ReceiveEngine final : io::Completion, Poller {
 public:
  // On the socket's shard. Throws TransportError when the buffers cannot be set up.
  static ReceiveEngine* create(int fd, ReceiveKind kind, const RecvOptions& options);
  // Cancels the armed request and frees the engine once the kernel is done with it.
  static void destroy(ReceiveEngine* e) noexcept;

  // The layout multishot recvmsg gives each datagram buffer (io_uring_recvmsg_out, the name, the control
  // data, the payload), which the fallback reproduces, so one parser reads both.
  msghdr& layout() noexcept { return layout_; }
  io::BufferRing& buffers() noexcept { return *buffers_; }
  // The bytes of buffer `bid` (a ring buffer, or kDirectBid).
  std::byte* bytes(std::int32_t bid) noexcept {
    return bid == kDirectBid ? direct_.get() : buffers_->buffer(static_cast<std::uint16_t>(bid));
  }
  bool multishot() const noexcept { return multishot_; }
  std::uint64_t rearms_after_enobufs() const noexcept { return enobufs_; }
  // The kernel's drop count for the socket (SO_RXQ_OVFL), as the datagram parser last saw it.
  std::uint32_t kernel_drops() const noexcept { return kernel_drops_; }
  void note_kernel_drops(std::uint32_t n) noexcept { kernel_drops_ = n; }

  // Gives a buffer back (and re-arms a request that ran out of buffers).
  void recycle(std::int32_t bid) noexcept;
  // The buffer the application reads now, given back at the next receive (datagrams).
  void hold(std::int32_t bid) noexcept { held_ = bid; }

  class Awaiter : moirai::detail::CancelHook {
   public:
    Awaiter(ReceiveEngine* e, std::int64_t deadline_ns) noexcept : engine_(e), deadline_(deadline_ns) {}
    bool await_ready();
    void await_suspend(std::coroutine_handle<> h);
    Received await_resume();

   private:
    friend class ReceiveEngine;
    ReceiveEngine* engine_;
    std::int64_t deadline_;  // CLOCK_MONOTONIC ns; 0: none
    Shard* shard_ = nullptr;
    moirai::detail::TaskControl* task_ = nullptr;
    std::coroutine_handle<> h_{};
    moirai::detail::OwnedTimer<Awaiter> timer_{};
    Received got_{};
  };
  Awaiter next(std::int64_t deadline_ns) noexcept { return Awaiter(this, deadline_ns); }

 private:
  ReceiveEngine(int fd, ReceiveKind kind, const RecvOptions& options);
  ~ReceiveEngine();
  static void on_cqe(io::Completion* c, int res, std::uint32_t flags) noexcept;
  // A receive's result (bytes in buffer `bid`, or an error or end) to the queue and the waiter.
  void deliver(int res, std::int32_t bid) noexcept;
  // Gives buffer `bid` back to where it came from (the ring, or the engine's own).
  void release(std::int32_t bid) noexcept;
  // The datagram layout at `buf` for a plain recvmsg into `msg` (the fallback's, and idle polling's), and
  // the header multishot recvmsg would have written once `res` bytes came; returns the entry's length.
  void prepare_datagram(std::byte* buf, std::size_t size, msghdr& msg, iovec& iov) const noexcept;
  int complete_datagram(std::byte* buf, const msghdr& msg, int res) const noexcept;
  // Idle polling (Poller).
  bool poll() noexcept override;
  bool prepare_sleep(long long&) noexcept override { return false; }  // the armed request wakes the ring
  void arm() noexcept;
  void fall_back() noexcept;
  void push(Received r) noexcept;
  bool pop(Received& r) noexcept;
  void wake() noexcept;

  int fd_;
  ReceiveKind kind_;
  bool multishot_ = false;
  bool armed_ = false;     // a request is in the kernel
  bool got_data_ = false;  // a multishot request delivered once (so -EINVAL later is not "unsupported")
  bool ended_ = false;     // a stream reached its end or failed: nothing more will be queued
  bool closing_ = false;
  bool orphaned_ = false;  // destroyed while its request was still in the kernel: freed by the last CQE
  bool starved_ = false;   // the request ended for want of buffers; re-armed at the next recycle
  Shard* shard_;
  io::Ring* ring_;
  std::unique_ptr<io::BufferRing> owned_;
  io::BufferRing* buffers_ = nullptr;
  RecvOptions options_;
  msghdr layout_{};
  // The fallback's one-shot request.
  msghdr msg_{};
  iovec iov_{};
  std::int32_t inflight_bid_ = -1;
  std::int32_t held_ = -1;
  std::unique_ptr<Received[]> queue_;
  std::uint32_t mask_ = 0;
  std::uint32_t head_ = 0;
  std::uint32_t tail_ = 0;
  Awaiter* waiter_ = nullptr;
  std::uint64_t enobufs_ = 0;
  std::uint32_t kernel_drops_ = 0;
  std::unique_ptr<std::byte[]> direct_;  // idle polling's buffer (poll_when_idle); null: no idle polling
  bool direct_out_ = false;              // the application holds it
};

// What a socket's recv() returns: the engine's wait, and the timeout for the error message; the socket adds
// await_resume, which turns an entry into its own result.
class ReceiveAwaiterBase {
 public:
  bool await_ready() { return inner_.await_ready(); }
  void await_suspend(std::coroutine_handle<> h) { inner_.await_suspend(h); }

 protected:
  ReceiveAwaiterBase(ReceiveEngine* e, std::int64_t deadline_ns, std::chrono::nanoseconds timeout) noexcept
      : inner_(e->next(deadline_ns)), engine_(e), timeout_(timeout) {}
  ReceiveEngine::Awaiter inner_;
  ReceiveEngine* engine_;
  std::chrono::nanoseconds timeout_;
};

}  // namespace moirai::transport::detail
