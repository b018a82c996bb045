// Small helpers for the kernel's one-value files (sysctl, cgroup): read one trimmed line, write one value,
// and CPU lists in the kernel's "0-3,8" form as a cpu_set_t. Errors are errno values or false, never
// exceptions: callers decide whether a failed write is fatal or one line in a warning.
#pragma once

#include <sched.h>

#include <optional>
#include <string>
#include <string_view>

namespace moirai::rt::detail {

std::optional<std::string> read_line(const std::string& path);  // nullopt (errno set) when unreadable
int write_value(const std::string& path, const std::string& value) noexcept;  // 0 or errno
// A list as moirai::cpu_list::parse reads it, with CPUs below CPU_SETSIZE; blank text is the empty set (an
// empty cpuset file). False, and `out` empty, when the text is not such a list.
bool parse_cpu_list(std::string_view text, cpu_set_t& out);
std::string format_cpu_list(const cpu_set_t& set);

}  // namespace moirai::rt::detail
