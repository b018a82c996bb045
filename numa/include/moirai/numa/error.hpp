// The one exception type of the numa module. Every message names the cause and the fix in words, so that a
// set-up failure at start reads like advice rather than a riddle.
#pragma once

#include <string>
#include <system_error>

#include "moirai/base/error.hpp"

namespace moirai::numa {

// The category "moirai.numa": each value is an errno, and compares equal to the std::errc of the same value
// (EINVAL to invalid_argument, ENODEV to no_such_device, ENOMEM to not_enough_memory, EPERM to
// operation_not_permitted, ...); strerror gives its message.
const std::error_category& numa_category() noexcept;

// `code()` is in numa_category(): EINVAL for a bad argument, ENODEV for a node that does not exist, ENOMEM
// for exhausted or refused memory, EPERM for a missing privilege, or the errno of the failed syscall.
class NumaError : public Error {
 public:
  NumaError(int err, const std::string& what) : Error(std::error_code(err, numa_category()), what) {}
};

}  // namespace moirai::numa
