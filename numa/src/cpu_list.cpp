#include "moirai/numa/cpu_list.hpp"

#include <algorithm>
#include <charconv>
#include <cstddef>

namespace moirai::numa {
namespace {

// The kernel's largest CONFIG_NR_CPUS (x86 MAXSMP, powerpc) is 8192, and node ids stay below MAX_NUMNODES
// (1024): an id past 8191 is not from a kernel. The bound also keeps "0-4000000000" from expanding.
constexpr int kMaxId = 8191;

bool is_blank(char c) noexcept {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

// Digits only: from_chars alone would read "-0" as 0, and so "0--0" as the range 0-0.
std::optional<int> parse_id(std::string_view text) {
  if (text.empty() || text.front() < '0' || text.front() > '9') return std::nullopt;
  int value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc{} || ptr != end || value > kMaxId) return std::nullopt;
  return value;
}

}  // namespace

std::optional<std::vector<int>> parse_cpu_list(std::string_view text) {
  while (!text.empty() && is_blank(text.front()))
    text.remove_prefix(1);
  while (!text.empty() && is_blank(text.back()))
    text.remove_suffix(1);
  std::vector<int> ids;
  if (text.empty()) return ids;
  while (true) {
    const std::size_t comma = text.find(',');
    const std::string_view item = text.substr(0, comma);
    const std::size_t dash = item.find('-');
    if (dash == std::string_view::npos) {
      auto id = parse_id(item);
      if (!id) return std::nullopt;
      ids.push_back(*id);
    } else {
      auto first = parse_id(item.substr(0, dash));
      auto last = parse_id(item.substr(dash + 1));
      if (!first || !last || *last < *first) return std::nullopt;
      for (int id = *first; id <= *last; ++id)
        ids.push_back(id);
    }
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  return ids;
}

std::string format_cpu_list(std::vector<int> ids) {
  if (ids.empty()) return "none";
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  std::string out;
  for (std::size_t i = 0; i < ids.size();) {
    std::size_t j = i;
    while (j + 1 < ids.size() && ids[j + 1] == ids[j] + 1)
      ++j;
    if (!out.empty()) out += ',';
    out += std::to_string(ids[i]);
    if (j > i) out += '-' + std::to_string(ids[j]);
    i = j + 1;
  }
  return out;
}

}  // namespace moirai::numa
