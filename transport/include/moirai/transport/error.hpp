// What a transport operation can fail with: a code in the transport's own std::error_category (so it travels
// as a std::error_code on the hot path) and an exception type carrying it with a message naming the cause.
// TransportError is a moirai::Error (see <moirai/base/error.hpp>).
#pragma once

#include <string>
#include <system_error>

#include "moirai/base/error.hpp"

namespace moirai::transport {

// Each code and the std::errc it compares equal to (transport_category().default_error_condition):
//
//   closed              none: the end of a stream or a closed endpoint is not an errno (the errno of a failed
//                       socket call the transport cannot classify is in the message)
//   timeout             timed_out
//   connection_refused  connection_refused
//   connection_reset    connection_reset
//   message_too_large   message_size
//   malformed           bad_message
//   not_supported       not_supported
//   unreachable         network_unreachable
//   invalid_argument    invalid_argument
enum class TransportErrc {
  closed = 1,          // the peer or the endpoint closed; nothing more will arrive
  timeout,             // the operation's timeout passed first
  connection_refused,  // nobody listens at the address
  connection_reset,    // the peer reset the connection (or died) mid-stream
  message_too_large,   // a frame over the endpoint's maximum size
  malformed,           // bytes that are not a frame (bad version, reserved bits set, truncated header)
  not_supported,       // the transport cannot do what is asked (e.g. filtered receive without framing)
  unreachable,         // no route to the peer: its network is down or unreachable from here
  invalid_argument,    // a bad argument or option (a size out of range, a name or address of the wrong form)
};

// The category "moirai.transport".
const std::error_category& transport_category() noexcept;

inline std::error_code make_error_code(TransportErrc e) noexcept {
  return {static_cast<int>(e), transport_category()};
}

class TransportError : public Error {
 public:
  TransportError(TransportErrc code, const std::string& what) : Error(make_error_code(code), what) {}
  TransportErrc errc() const noexcept { return static_cast<TransportErrc>(code().value()); }
};

}  // namespace moirai::transport

template <>
struct std::is_error_code_enum<moirai::transport::TransportErrc> : std::true_type {};
