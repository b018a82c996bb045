// What a transport operation can fail with: a code in the transport's own std::error_category (so it travels
// as a std::error_code on the hot path) and an exception type carrying it with a message naming the cause.
#pragma once

#include <string>
#include <system_error>

namespace moirai::transport {

enum class TransportErrc {
  closed = 1,          // the peer or the endpoint closed; nothing more will arrive
  timeout,             // the operation's timeout passed first
  connection_refused,  // nobody listens at the address
  connection_reset,    // the peer reset the connection (or died) mid-stream
  message_too_large,   // a frame over the endpoint's maximum size
  malformed,           // bytes that are not a frame (bad version, reserved bits set, truncated header)
  not_supported,       // the transport cannot do what is asked (e.g. filtered receive without framing)
  unreachable,         // no route to the peer: its network is down or unreachable from here
};

const std::error_category& transport_category() noexcept;

inline std::error_code make_error_code(TransportErrc e) noexcept {
  return {static_cast<int>(e), transport_category()};
}

class TransportError : public std::system_error {
 public:
  TransportError(TransportErrc code, const std::string& what)
      : std::system_error(make_error_code(code), what) {}
  TransportErrc errc() const noexcept { return static_cast<TransportErrc>(code().value()); }
};

}  // namespace moirai::transport

template <>
struct std::is_error_code_enum<moirai::transport::TransportErrc> : std::true_type {};
