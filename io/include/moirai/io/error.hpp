// The io module's errors: codes in its own category, "moirai.io", whose values are the errno of the failed
// call (io_uring_setup, io_uring_register, mmap, epoll_ctl), and RingError and ReadinessError, the
// moirai::Errors that carry one with a message naming the cause and the fix. Each errno compares equal to the
// std::errc of the same value (EINVAL to std::errc::invalid_argument, ENOMEM to not_enough_memory, ...);
// strerror gives its message.
#pragma once

#include <string>
#include <system_error>

#include "moirai/base/error.hpp"

namespace moirai::io {

// The category "moirai.io".
const std::error_category& io_category() noexcept;

// Thrown when io_uring cannot be used, and for a bad argument (EINVAL). what() names the cause and the
// remedy.
class RingError : public Error {
 public:
  RingError(int err, const std::string& what) : Error(std::error_code(err, io_category()), what) {}
};

// Thrown when the readiness (epoll) loop cannot be set up, or refuses an fd. what() names the fd or resource,
// the cause and the remedy.
class ReadinessError : public Error {
 public:
  ReadinessError(int err, const std::string& what) : Error(std::error_code(err, io_category()), what) {}
};

}  // namespace moirai::io
