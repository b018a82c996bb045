// The kernel's list format for CPUs and nodes ("0-3,8,10-11"), as found in sysfs and on kernel command lines.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace moirai::numa {

// Sorted, without duplicates. An empty or all-blank text is the empty list; std::nullopt when malformed.
std::optional<std::vector<int>> parse_cpu_list(std::string_view text);

// The inverse: ranges collapsed ("0-3,8"); "none" for the empty list. `ids` need not be sorted.
std::string format_cpu_list(std::vector<int> ids);

}  // namespace moirai::numa
