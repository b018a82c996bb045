// The one exception type of the rt module: an errno-style code (generic_category, so callers can compare it
// with std::errc) and a message that names the cause and the fix. rt throws only on set-up paths and on bad
// input; the hot-path checks (deadline_missed, wcet_overrun) never throw.
#pragma once

#include <string>
#include <system_error>

namespace moirai::rt {

class RtError : public std::system_error {
 public:
  RtError(int err, const std::string& what) : std::system_error(err, std::generic_category(), what) {}
};

}  // namespace moirai::rt
