// A receive path for a connected stream socket (TCP or Unix) that keeps one multishot recv armed into a
// provided-buffer ring and hands out the bytes as chunks, each in one of the ring's buffers, with no copy and
// no allocation. The application gives each chunk back with recycle() when it has used the bytes; it may
// hold several (a frame that spans chunks), but while it holds every buffer nothing more is received (the
// kernel's -ENOBUFS; the request is re-armed at the next recycle, and TCP's flow control holds the peer back
// meanwhile, so no byte is lost). Where the kernel lacks buffer rings or multishot recv: one one-shot recv at
// a time into a buffer of the same ring (see detail/receive_engine.hpp).
//
// The socket's own recv_some/send_all keep working for sending; do not mix recv_some with a receiver on one
// socket (each would take bytes the other expects). The receiver must be used and destroyed on the socket's
// shard, before the socket closes; chunks not recycled by then are given back by the destructor only when
// the ring is the receiver's own.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "moirai/core/clock.hpp"
#include "moirai/transport/detail/receive_engine.hpp"
#include "moirai/transport/error.hpp"
#include "moirai/transport/receiver.hpp"
#include "moirai/transport/recv_options.hpp"
#include "moirai/transport/stream_socket.hpp"

namespace moirai::transport {

// Bytes of the stream as they arrived, in one of the ring's buffers (a stream's bytes have no sender).
struct Chunk {
  std::span<const std::byte> payload;  // empty: the peer closed its side (end of stream)
  std::int32_t buffer = -1;            // the ring's buffer id, for recycle()
  bool end() const noexcept { return payload.empty(); }
};

class StreamReceiver {
 public:
  // Arms the receive on `socket` (which must outlive the receiver). On a shard. Throws TransportError when
  // the buffers cannot be set up.
  explicit StreamReceiver(const StreamSocket& socket, const RecvOptions& options = {});
  StreamReceiver(StreamReceiver&& o) noexcept : engine_(std::exchange(o.engine_, nullptr)) {}
  StreamReceiver& operator=(StreamReceiver&&) = delete;
  StreamReceiver(const StreamReceiver&) = delete;
  ~StreamReceiver();

  class [[nodiscard]] RecvAwaiter : public detail::ReceiveAwaiterBase {
   public:
    Chunk await_resume();

   private:
    friend class StreamReceiver;
    using ReceiveAwaiterBase::ReceiveAwaiterBase;
  };
  // The next chunk of bytes, in stream order; an empty chunk at the end of the stream (and after it). Throws
  // TransportError(timeout) when nothing arrives within `timeout`, (connection_reset) or (closed) on an
  // error, (not_supported) while another task already waits on this stream (one receiver at a time).
  RecvAwaiter recv();
  RecvAwaiter recv(Duration timeout);
  // Gives a chunk's buffer back to the ring (an end-of-stream chunk needs none; recycling it does nothing).
  void recycle(const Chunk& chunk) noexcept { engine_->recycle(chunk.buffer); }

  bool multishot() const noexcept { return engine_->multishot(); }
  std::uint64_t rearms_after_enobufs() const noexcept { return engine_->rearms_after_enobufs(); }

 private:
  detail::ReceiveEngine* engine_ = nullptr;
};

static_assert(Receiver<StreamReceiver>);

}  // namespace moirai::transport
