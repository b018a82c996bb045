// The one exception type of the numa module. Every message names the cause and the fix in words, so that a
// set-up failure at start reads like advice rather than a riddle.
#pragma once

#include <string>
#include <system_error>

namespace moirai::numa {

// `code()` is a generic_category errno: EINVAL for a bad argument, ENODEV for a node that does not exist,
// ENOMEM for exhausted or refused memory, EPERM for a missing privilege, or the errno of the failed syscall.
class NumaError : public std::system_error {
 public:
  NumaError(int err, const std::string& what) : std::system_error(err, std::generic_category(), what) {}
};

}  // namespace moirai::numa
