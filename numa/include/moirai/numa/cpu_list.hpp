// The kernel's list format for CPUs and nodes ("0-3,8,10-11"), as found in sysfs and on kernel command lines,
// in numa's terms: std::nullopt for a malformed text. The parser itself is moirai::cpu_list::parse
// (<moirai/base/cpu_list.hpp>), which also says what is wrong and where.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "moirai/base/cpu_list.hpp"

namespace moirai::numa {

// Sorted, without duplicates; ids up to cpu_list::kMaxId. An empty or all-blank text is the empty list;
// std::nullopt when malformed.
inline std::optional<std::vector<int>> parse_cpu_list(std::string_view text) {
  cpu_list::Parsed parsed = cpu_list::parse(text);
  if (!parsed) return std::nullopt;
  return std::move(parsed.ids);
}

// The inverse: ranges collapsed ("0-3,8"); "none" for the empty list. `ids` need not be sorted.
inline std::string format_cpu_list(std::vector<int> ids) {
  return ids.empty() ? std::string("none") : cpu_list::format(std::move(ids));
}

}  // namespace moirai::numa
