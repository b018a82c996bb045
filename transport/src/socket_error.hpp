// The errno mapping every socket of the transport uses (internal).
#pragma once

#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>

#include "moirai/transport/error.hpp"

namespace moirai::transport::detail {

// What a failed socket request means to the caller; `what` names the operation and the address.
inline TransportError error_for(int err, const std::string& what) {
  std::string text = what;
  text.append(": ").append(std::strerror(err));
  switch (err) {
    case ECONNREFUSED:
      return TransportError(TransportErrc::connection_refused, text.append(" (nobody listens there)"), err);
    case ECONNRESET:
    case EPIPE:
      return TransportError(TransportErrc::connection_reset, text, err);
    case ETIMEDOUT:
      // From the kernel on a connection: TCP_USER_TIMEOUT, keepalive or retransmissions gave up.
      return TransportError(
          TransportErrc::timeout,
          text.append(" (no answer from the peer: the link, the network or the peer is down)"), err);
    case ECANCELED:
      return TransportError(TransportErrc::timeout, text, err);
    case ENETUNREACH:
    case EHOSTUNREACH:
    case ENETDOWN:
    case EHOSTDOWN:
      return TransportError(
          TransportErrc::unreachable,
          text.append(" (no route to the peer: is its network down, or the address wrong?)"), err);
    default:
      return TransportError(TransportErrc::closed, text, err);
  }
}

// A receive's own timeout: "`what`: nothing within N us".
inline TransportError timeout_error(const char* what, std::chrono::nanoseconds timeout) {
  std::string text = what;
  text.append(": nothing within ")
      .append(std::to_string(std::chrono::duration_cast<std::chrono::microseconds>(timeout).count()))
      .append(" us");
  return TransportError(TransportErrc::timeout, text);
}

}  // namespace moirai::transport::detail
