// CPU and node lists in the kernel's format: "0-3,8,10-11", as in /sys/devices/system/cpu/online,
// /sys/devices/system/node/nodeN/cpulist, cpuset.cpus and `taskset -c`. The one parser and the one printer of
// that format; each module builds its own API on them (core throws, numa returns std::optional, rt fills a
// cpu_set_t).
//
// The grammar: items separated by commas, each a number or a range "first-last" with first <= last; numbers
// are decimal digits only (no sign, no base prefix). Blanks around an item are allowed, as the kernel allows
// them where a list is written to it, so that a sysfs file's trailing newline and a person's "0, 2" both
// read; a blank inside a range ("0 - 2") is not, as in the kernel. Empty or all-blank text is the empty list
// (an empty cpuset, or /sys/devices/system/cpu/isolated on a host isolating none); an empty item is an error
// (",1", "1,,2", "1,"), although the kernel skips them, since it usually means a value was lost.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace moirai::cpu_list {

// The highest id a kernel prints in a CPU or node list: CONFIG_NR_CPUS is at most 8192 (x86 MAXSMP,
// powerpc) and node ids stay below MAX_NUMNODES (1024). It also keeps "0-4000000000" from expanding. A
// caller whose storage holds fewer ids (a cpu_set_t holds 1024) passes its own bound to parse().
inline constexpr int kMaxId = 8191;

// What makes a text not a list.
enum class Fault : std::uint8_t {
  none,
  empty_item,      // nothing before a comma: ",1", "1,,2"
  trailing_comma,  // nothing after the last comma: "0-3,"
  not_a_number,    // an item that is neither a number nor a range of two: "x", "+1", "0x3", "1 2", "1-2-3"
  negative,        // a number with a minus sign: "-1", "3--1"
  blank_in_range,  // a blank beside the '-' of a range: "0 - 3"
  too_large,       // a number above the caller's bound
  reversed_range,  // a range written high to low: "5-3"
};

// The ids of a list, or what is wrong with the text and where.
struct Parsed {
  std::vector<int> ids;  // sorted, without duplicates; empty for a blank text and on a fault
  Fault fault = Fault::none;
  // Where the fault is: the offending item (blanks around it excluded), or for the two comma faults the
  // comma. Offsets into the text given to parse().
  std::size_t offset = 0;
  std::size_t length = 0;

  bool ok() const noexcept { return fault == Fault::none; }
  explicit operator bool() const noexcept { return ok(); }
  // The offending item or comma, cut from `text`, which must be the text given to parse().
  std::string_view where(std::string_view text) const noexcept { return text.substr(offset, length); }
};

// The blanks allowed around an item: those of isspace() in the C locale.
constexpr bool is_blank(char c) noexcept {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

// `s` without the blanks at either end.
constexpr std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && is_blank(s.front()))
    s.remove_prefix(1);
  while (!s.empty() && is_blank(s.back()))
    s.remove_suffix(1);
  return s;
}

namespace detail {

constexpr bool all_digits(std::string_view s) noexcept {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// What is wrong with one number (blanks already trimmed) before its value is looked at.
constexpr Fault number_syntax(std::string_view s) noexcept {
  if (all_digits(s)) return Fault::none;
  return s.size() > 1 && s.front() == '-' && all_digits(s.substr(1)) ? Fault::negative : Fault::not_a_number;
}

// The value of a digit string, saturated at max_id + 1 so that thirty digits are "too large" like any other
// number above the bound, not an overflow.
constexpr long long number_value(std::string_view digits, int max_id) noexcept {
  long long value = 0;
  for (char c : digits)
    value = std::min<long long>(value * 10 + (c - '0'), static_cast<long long>(max_id) + 1);
  return value;
}

// One item, blanks around it trimmed: appends its ids to `out`, or returns its fault.
inline Fault parse_item(std::string_view item, int max_id, std::vector<int>& out) {
  // A '-' at the very start is a minus sign, not a range's: "-1-3" is a range from minus one.
  const std::size_t dash = item.find('-', 1);
  const std::string_view first_text = item.substr(0, dash);
  const std::string_view last_text = dash == std::string_view::npos ? first_text : item.substr(dash + 1);
  const std::string_view first_digits = trim(first_text);
  const std::string_view last_digits = trim(last_text);
  if (const Fault f = number_syntax(first_digits); f != Fault::none) return f;
  if (const Fault f = number_syntax(last_digits); f != Fault::none) return f;
  if (first_digits.size() != first_text.size() || last_digits.size() != last_text.size()) {
    return Fault::blank_in_range;
  }
  const long long first = number_value(first_digits, max_id);
  const long long last = number_value(last_digits, max_id);
  if (first > max_id || last > max_id) return Fault::too_large;
  if (first > last) return Fault::reversed_range;
  for (long long id = first; id <= last; ++id)
    out.push_back(static_cast<int>(id));
  return Fault::none;
}

inline Parsed fail(Fault fault, std::size_t offset, std::size_t length) {
  Parsed parsed;
  parsed.fault = fault;
  parsed.offset = offset;
  parsed.length = length;
  return parsed;
}

}  // namespace detail

// Reads a list whose ids must lie in 0..max_id (max_id >= 0).
inline Parsed parse(std::string_view text, int max_id = kMaxId) {
  Parsed parsed;
  if (trim(text).empty()) return parsed;
  for (std::size_t start = 0;;) {
    const std::size_t comma = text.find(',', start);
    const std::size_t end = comma == std::string_view::npos ? text.size() : comma;
    const std::string_view piece = text.substr(start, end - start);
    const std::string_view item = trim(piece);
    if (item.empty()) {
      // Only next to a comma: the text as a whole is not blank.
      return comma == std::string_view::npos ? detail::fail(Fault::trailing_comma, start - 1, 1)
                                             : detail::fail(Fault::empty_item, comma, 1);
    }
    const auto offset = static_cast<std::size_t>(item.data() - text.data());
    if (const Fault f = detail::parse_item(item, max_id, parsed.ids); f != Fault::none) {
      return detail::fail(f, offset, item.size());
    }
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  std::sort(parsed.ids.begin(), parsed.ids.end());
  parsed.ids.erase(std::unique(parsed.ids.begin(), parsed.ids.end()), parsed.ids.end());
  return parsed;
}

// The compact form, as the kernel prints it: consecutive ids become ranges, {0, 1, 2, 3, 5} gives "0-3,5".
// `ids` need not be sorted or unique; the empty list gives "". parse(format(ids)) gives ids back, sorted and
// without duplicates.
inline std::string format(std::vector<int> ids) {
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

}  // namespace moirai::cpu_list
