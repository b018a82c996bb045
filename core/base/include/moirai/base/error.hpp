// The one exception type of the library, and what every module's error category shares.
//
// Everything Moirai throws is a moirai::Error, a std::system_error: a code and a message that names the cause
// and the fix. Each module keeps a std::error_category of its own: core's "moirai" (moirai::Errc),
// "moirai.transport" (transport::TransportErrc), and "moirai.io", "moirai.numa" and "moirai.rt", whose values
// are the errno of the call that failed. Every category maps its codes onto std::errc through
// default_error_condition, so a caller asks what happened without knowing which module threw:
//
//   catch (const moirai::Error& e) {
//     if (e.code() == std::errc::timed_out) ...         // core's Errc::timed_out, TransportErrc::timeout,
//     ... if (e.code() == std::errc::invalid_argument) ...  // a bad argument, from whichever module if
//     (e.code() == moirai::Errc::stopped) ...        // or exactly one module's code
//   }
//
// A module that fails because another one did throws its own Error with the other's nested
// (std::throw_with_nested), so the cause's code survives the boundary, not only its text;
// std::rethrow_if_nested reaches it. The module exception types (RingError, NumaError, RtError,
// TransportError, TaskCancelled, TimedOut) derive from Error, so a catch of either kind works.
//
// On the hot path errors are values (a std::error_code, or a result the caller branches on), never
// exceptions.
#pragma once

#include <string>
#include <system_error>

namespace moirai {

class Error : public std::system_error {
 public:
  // what() is `what`, then ": " and the code's message. A module's enum converts on its own (Errc,
  // TransportErrc): Error(Errc::invalid_argument, "...").
  Error(std::error_code code, const std::string& what) : std::system_error(code, what) {}
};

namespace detail {

// The category of a module whose codes are the errno of the failed call (io, numa, rt): its messages are
// strerror's, and every value maps to the std::errc of the same errno (EINVAL to invalid_argument, ETIMEDOUT
// to timed_out, ...), as the generic category does. A category of its own rather than the generic one, so
// that a code says which module reported it.
class ErrnoCategory final : public std::error_category {
 public:
  explicit constexpr ErrnoCategory(const char* name) noexcept : name_(name) {}
  const char* name() const noexcept override { return name_; }
  std::string message(int err) const override { return std::generic_category().message(err); }
  std::error_condition default_error_condition(int err) const noexcept override {
    return {err, std::generic_category()};
  }

 private:
  const char* name_;
};

}  // namespace detail

}  // namespace moirai
