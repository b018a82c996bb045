// The errno mapping every socket of the transport uses (internal).
#pragma once

#include <cerrno>
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
      return TransportError(TransportErrc::connection_refused, text.append(" (nobody listens there)"));
    case ECONNRESET:
    case EPIPE:
      return TransportError(TransportErrc::connection_reset, text);
    case ETIMEDOUT:
    case ECANCELED:
      return TransportError(TransportErrc::timeout, text);
    default:
      return TransportError(TransportErrc::closed, text);
  }
}

}  // namespace moirai::transport::detail
