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
//   closed              none: the end of a stream or a closed endpoint is not an errno (a failed socket call
//                       the transport cannot classify is `closed` too; its errno is kept: kernel_code())
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
  // `kernel_errno`: the errno of the system call whose refusal this is, 0 when none was refused.
  TransportError(TransportErrc code, const std::string& what, int kernel_errno = 0)
      : Error(make_error_code(code), what), kernel_errno_(kernel_errno) {}
  TransportErrc errc() const noexcept { return static_cast<TransportErrc>(code().value()); }
  // What the kernel refused with, where a system call failed (EMFILE from socket(), EADDRINUSE from bind(),
  // ...): compare it with std::errc (`e.kernel_code() == std::errc::address_in_use`). Empty when the failure
  // was not a refused call (a timeout of Moirai's own, a malformed frame, a bad argument).
  std::error_code kernel_code() const noexcept {
    return kernel_errno_ == 0 ? std::error_code() : std::error_code(kernel_errno_, std::generic_category());
  }

 private:
  int kernel_errno_ = 0;
};

}  // namespace moirai::transport

template <>
struct std::is_error_code_enum<moirai::transport::TransportErrc> : std::true_type {};
