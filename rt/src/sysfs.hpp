// Small helpers for the kernel's one-value files (sysctl, cgroup): read one trimmed line, write one value,
// and CPU lists in the kernel's "0-3,8" form. Errors are errno values, never exceptions: callers decide
// whether a failed write is fatal or one line in a warning.
#pragma once

#include <sched.h>

#include <optional>
#include <string>

namespace moirai::rt::detail {

std::optional<std::string> read_line(const std::string& path);  // nullopt (errno set) when unreadable
int write_value(const std::string& path, const std::string& value) noexcept;  // 0 or errno
bool parse_cpu_list(const std::string& text, cpu_set_t& out) noexcept;
std::string format_cpu_list(const cpu_set_t& set);

}  // namespace moirai::rt::detail
