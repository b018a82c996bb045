#include "moirai/transport/framed_server.hpp"

#include <sys/socket.h>

#include <cstdio>

#include "moirai/core/clock.hpp"

namespace moirai::transport {

const char* to_string(CloseReason r) noexcept {
  switch (r) {
    case CloseReason::peer_closed:
      return "peer closed";
    case CloseReason::reset:
      return "reset";
    case CloseReason::malformed:
      return "malformed";
    case CloseReason::too_large:
      return "frame too large";
    case CloseReason::timed_out:
      return "timed out";
    case CloseReason::handler_failed:
      return "handler failed";
    case CloseReason::over_limit:
      return "over the connection limit";
    case CloseReason::over_budget:
      return "over the buffer budget";
    case CloseReason::server_stopped:
      return "server stopped";
    case CloseReason::kCount:
      break;
  }
  return "?";
}

CloseReason FramedServer::reason_for(TransportErrc e) noexcept {
  switch (e) {
    case TransportErrc::closed:
      return CloseReason::peer_closed;
    case TransportErrc::timeout:
      return CloseReason::timed_out;
    case TransportErrc::message_too_large:
      return CloseReason::too_large;
    case TransportErrc::malformed:
    case TransportErrc::not_supported:
      return CloseReason::malformed;
    case TransportErrc::connection_refused:
    case TransportErrc::connection_reset:
      return CloseReason::reset;
  }
  return CloseReason::reset;
}

// The connections hold more than max_buffered_bytes: close the one holding the most until they do not. Its
// bytes leave the budget at once (the memory goes when its task ends, at the next completion), so one
// eviction is enough for the next receive too.
void FramedServer::over_budget(void* self) noexcept {
  auto* server = static_cast<FramedServer*>(self);
  while (server->budget_.held > server->budget_.limit) {
    Conn* largest = nullptr;
    for (Conn* c = server->conns_; c != nullptr; c = c->next) {
      if (!c->evicted &&
          (largest == nullptr || c->stream->received_bytes() > largest->stream->received_bytes()))
        largest = c;
    }
    if (largest == nullptr) return;
    largest->evicted = true;
    largest->stream->leave_budget();
    ::shutdown(largest->fd, SHUT_RDWR);  // its receive completes; the connection ends as over_budget
  }
}

void FramedServer::link(Conn* c) noexcept {
  c->next = conns_;
  if (conns_ != nullptr) conns_->prev = c;
  conns_ = c;
  ++stats_.active;
}

void FramedServer::unlink(Conn* c) noexcept {
  if (c->prev != nullptr) c->prev->next = c->next;
  if (c->next != nullptr) c->next->prev = c->prev;
  if (conns_ == c) conns_ = c->next;
  --stats_.active;
}

void FramedServer::stop() noexcept {
  if (stopping_) return;
  stopping_ = true;
  // Shutting a socket down completes the accept or receive waiting on it in the ring (with an error, or end
  // of stream), so every task of the server sees stopping_ at once; the fds close with their owners.
  ::shutdown(listener_fd(), SHUT_RDWR);
  for (Conn* c = conns_; c != nullptr; c = c->next)
    ::shutdown(c->fd, SHUT_RDWR);
}

void FramedServer::count_close(CloseReason r, int fd, const std::string& why) {
  const auto i = static_cast<std::size_t>(r);
  ++stats_.closed[i];
  const bool fault = r != CloseReason::peer_closed && r != CloseReason::server_stopped;
  if (!fault || !options_.log_faults) return;
  const std::int64_t now = monotonic_ns();
  if (last_log_ns_[i] != 0 && now - last_log_ns_[i] < 1'000'000'000) {
    ++unlogged_[i];
    return;
  }
  last_log_ns_[i] = now;
  std::string peer = "?";
  try {
    peer = SocketAddress::of_peer(fd).to_string();
  } catch (const std::exception&) {  // the peer is already gone: its address is not worth failing for
  }
  std::fprintf(stderr, "moirai: server %s: closed the connection from %s (%s): %s", local_name().c_str(),
               peer.c_str(), to_string(r), why.c_str());
  if (unlogged_[i] != 0) {
    std::fprintf(stderr, " [%llu more closed for this reason in the last second were not logged]",
                 static_cast<unsigned long long>(unlogged_[i]));
    unlogged_[i] = 0;
  }
  std::fputc('\n', stderr);
}

std::string FramedServer::local_name() const {
  try {
    return listener_.local_address().to_string();
  } catch (const std::exception&) {
    return "(closed listener)";
  }
}

void FramedServer::note_accept_error(const TransportError& e) {
  ++stats_.accept_errors;
  if (!options_.log_faults) return;
  std::fprintf(stderr, "moirai: server %s: %s; still listening\n", local_name().c_str(), e.what());
}

}  // namespace moirai::transport
