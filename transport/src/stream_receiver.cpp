#include "moirai/transport/stream_receiver.hpp"

#include <cerrno>
#include <chrono>
#include <string>

#include "socket_error.hpp"

namespace moirai::transport {

StreamReceiver::StreamReceiver(const StreamSocket& socket, const RecvOptions& options) {
  if (!socket.is_open())
    throw TransportError(TransportErrc::closed, "stream receiver: the socket is not open");
  engine_ = detail::ReceiveEngine::create(socket.fd(), detail::ReceiveKind::stream, options);
}

StreamReceiver::~StreamReceiver() {
  detail::ReceiveEngine::destroy(engine_);
}

StreamReceiver::RecvAwaiter StreamReceiver::recv() {
  return RecvAwaiter(engine_, 0, Duration::zero());
}

StreamReceiver::RecvAwaiter StreamReceiver::recv(Duration timeout) {
  return RecvAwaiter(engine_, deadline_after(timeout), timeout);
}

Chunk StreamReceiver::RecvAwaiter::await_resume() {
  const detail::Received r = inner_.await_resume();
  if (r.bid >= 0) [[likely]] {
    return Chunk{std::span<const std::byte>(engine_->bytes(r.bid), static_cast<std::size_t>(r.res)), r.bid};
  }
  if (r.res == 0) return Chunk{};  // end of stream
  if (r.res == detail::kTimedOut) throw detail::timeout_error("stream recv", timeout_);
  throw detail::error_for(-r.res, "stream recv");
}

}  // namespace moirai::transport
