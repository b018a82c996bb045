// The one exception type of the rt module: an errno-style code and a message that names the cause and the
// fix. rt throws only on set-up paths and on bad input; the hot-path checks (deadline_missed, wcet_overrun)
// never throw.
#pragma once

#include <string>
#include <system_error>

#include "moirai/base/error.hpp"

namespace moirai::rt {

// The category "moirai.rt": each value is the errno of the failed call (sched_setattr, a cgroup write, ...),
// or EINVAL for a bad argument, and compares equal to the std::errc of the same value (EINVAL to
// invalid_argument, EPERM to operation_not_permitted, EBUSY to device_or_resource_busy, ESRCH to
// no_such_process, ...); strerror gives its message.
const std::error_category& rt_category() noexcept;

class RtError : public Error {
 public:
  RtError(int err, const std::string& what) : Error(std::error_code(err, rt_category()), what) {}
};

}  // namespace moirai::rt
