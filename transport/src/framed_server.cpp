#include "moirai/transport/framed_server.hpp"

#include <sys/socket.h>

#include <cstdio>
#include <utility>

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
    case TransportErrc::unreachable:
      return CloseReason::reset;
    case TransportErrc::invalid_argument:  // only the handler's own calls pass arguments
      return CloseReason::handler_failed;
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

// At most one line a second per slot (a close reason, or accept errors): false when this one is not to be
// logged; `suppressed` is how many were not logged since the last line, reset as it is returned.
bool FramedServer::may_log(std::size_t slot, std::uint64_t& suppressed) noexcept {
  const std::int64_t now = monotonic_ns();
  if (last_log_ns_[slot] != 0 && now - last_log_ns_[slot] < 1'000'000'000) {
    ++unlogged_[slot];
    return false;
  }
  last_log_ns_[slot] = now;
  suppressed = std::exchange(unlogged_[slot], 0);
  return true;
}

void FramedServer::end_log_line(std::uint64_t suppressed, const char* what) {
  if (suppressed != 0)
    std::fprintf(stderr, " [%llu more %s in the last second were not logged]",
                 static_cast<unsigned long long>(suppressed), what);
  std::fputc('\n', stderr);
}

void FramedServer::count_close(CloseReason r, int fd, const std::string& why) {
  const auto i = static_cast<std::size_t>(r);
  ++stats_.closed[i];
  const bool fault = r != CloseReason::peer_closed && r != CloseReason::server_stopped;
  std::uint64_t suppressed = 0;
  if (!fault || !options_.log_faults || !may_log(i, suppressed)) return;
  std::string peer = "?";
  try {
    peer = SocketAddress::of_peer(fd).to_string();
  } catch (const std::exception&) {  // the peer is already gone: its address is not worth failing for
  }
  std::fprintf(stderr, "moirai: server %s: closed the connection from %s (%s): %s", local_name().c_str(),
               peer.c_str(), to_string(r), why.c_str());
  end_log_line(suppressed, "closed for this reason");
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
  std::uint64_t suppressed = 0;
  if (!options_.log_faults || !may_log(kAcceptLogSlot, suppressed)) return;
  std::fprintf(stderr, "moirai: server %s: %s; still listening", local_name().c_str(), e.what());
  end_log_line(suppressed, "accept errors");
}

}  // namespace moirai::transport
