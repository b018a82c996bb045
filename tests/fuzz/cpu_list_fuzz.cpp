// The CPU list parser (moirai::cpu_list, <moirai/base/cpu_list.hpp>) on any text, held to its properties:
// - it accepts exactly what a reference model of the grammar accepts, with the same ids. The model below
// walks
//   the text one character at a time through the states of the grammar, where the parser splits on commas and
//   trims, so that the two share no code and no way of going wrong;
// - what it accepts is sorted, unique and within the bound; a lower bound accepts the same lists or fewer;
//   blanks added around the text change nothing;
// - format() prints what it accepted in the kernel's form, which reads back to the same ids and prints alike;
// - a refusal points inside the text, at the first item or comma that is wrong, and that item alone is
//   refused for the same reason;
// - the modules' APIs over it agree with it: core throws exactly when it refuses or the list is empty, numa
//   returns std::nullopt exactly when it refuses, rt (bounded by a cpu_set_t) likewise.
#include <sched.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "../../rt/src/sysfs.hpp"
#include "fuzz_check.hpp"
#include "moirai/base/cpu_list.hpp"
#include "moirai/core/cpu_set.hpp"
#include "moirai/core/error.hpp"
#include "moirai/numa/cpu_list.hpp"

namespace {

namespace cpu_list = moirai::cpu_list;
using cpu_list::Fault;

bool blank(char c) {
  return std::string_view(" \t\n\r\v\f").find(c) != std::string_view::npos;
}

bool digit(char c) {
  return c >= '0' && c <= '9';
}

// The value of a digit string, or max_id + 1 for any larger one.
long long value_of(const std::string& digits, int max_id) {
  const std::size_t first = std::min(digits.find_first_not_of('0'), digits.size());
  if (digits.size() - first > 9) return max_id + 1LL;
  const long long value = first == digits.size() ? 0 : std::stoll(digits.substr(first));
  return std::min(value, max_id + 1LL);
}

// The grammar as a state machine over characters: blanks, then items "N" or "N-M" separated by commas, each
// with blanks around it; nothing at all is the empty list.
std::optional<std::set<int>> reference(std::string_view text, int max_id) {
  enum class State { start, item, first, dash, last, after } state = State::start;
  std::set<int> ids;
  std::string first;
  std::string last;
  const auto close_item = [&] {
    const long long a = value_of(first, max_id);
    const long long b = last.empty() ? a : value_of(last, max_id);
    if (a > max_id || b > max_id || a > b) return false;
    for (long long id = a; id <= b; ++id)
      ids.insert(static_cast<int>(id));
    first.clear();
    last.clear();
    return true;
  };
  for (const char c : text) {
    switch (state) {
      case State::start:
      case State::item:
        if (blank(c)) break;
        if (!digit(c)) return std::nullopt;
        first = c;
        state = State::first;
        break;
      case State::first:
      case State::last:
        if (digit(c)) {
          (state == State::first ? first : last) += c;
        } else if (c == '-' && state == State::first) {
          state = State::dash;
        } else if ((blank(c) || c == ',') && close_item()) {
          state = c == ',' ? State::item : State::after;
        } else {
          return std::nullopt;
        }
        break;
      case State::dash:
        if (!digit(c)) return std::nullopt;
        last = c;
        state = State::last;
        break;
      case State::after:
        if (c == ',') state = State::item;
        if (!blank(c) && c != ',') return std::nullopt;
        break;
    }
  }
  switch (state) {
    case State::start:
    case State::after:
      return ids;
    case State::first:
    case State::last:
      if (close_item()) return ids;
      return std::nullopt;
    case State::item:
    case State::dash:
      break;
  }
  return std::nullopt;
}

void check_accepted(std::string_view text, const cpu_list::Parsed& parsed, int max_id) {
  const std::vector<int>& ids = parsed.ids;
  MOIRAI_FUZZ_CHECK(std::is_sorted(ids.begin(), ids.end()));
  MOIRAI_FUZZ_CHECK(std::adjacent_find(ids.begin(), ids.end()) == ids.end());
  MOIRAI_FUZZ_CHECK(ids.empty() || (ids.front() >= 0 && ids.back() <= max_id));
  // Printed in the kernel's form, which reads back alike and is its own printed form.
  const std::string printed = cpu_list::format(ids);
  MOIRAI_FUZZ_CHECK(std::none_of(printed.begin(), printed.end(), blank));
  const cpu_list::Parsed again = cpu_list::parse(printed, max_id);
  MOIRAI_FUZZ_CHECK(again.ok() && again.ids == ids);
  MOIRAI_FUZZ_CHECK(cpu_list::format(again.ids) == printed);
  // A sysfs file's newline, or blanks before, change nothing.
  const cpu_list::Parsed framed = cpu_list::parse(" \t" + std::string(text) + "\n", max_id);
  MOIRAI_FUZZ_CHECK(framed.ok() && framed.ids == ids);
}

// The item or comma a refusal points at shows its fault, and is the first wrong one.
void check_refused(std::string_view text, const cpu_list::Parsed& parsed, int max_id) {
  MOIRAI_FUZZ_CHECK(parsed.fault != Fault::none && parsed.ids.empty());
  MOIRAI_FUZZ_CHECK(parsed.length >= 1 && parsed.offset + parsed.length <= text.size());
  const std::string_view where = parsed.where(text);
  const std::string_view before = text.substr(0, parsed.offset);
  if (parsed.fault == Fault::empty_item || parsed.fault == Fault::trailing_comma) {
    MOIRAI_FUZZ_CHECK(where == ",");
    const std::string_view after = text.substr(parsed.offset + 1);
    if (parsed.fault == Fault::trailing_comma) {
      MOIRAI_FUZZ_CHECK(cpu_list::trim(after).empty());
      MOIRAI_FUZZ_CHECK(cpu_list::parse(before, max_id).ok());
    } else {
      // The piece this comma ends is blank; what precedes that piece is a list.
      const std::size_t previous = before.rfind(',');
      const std::string_view piece =
          previous == std::string_view::npos ? before : before.substr(previous + 1);
      MOIRAI_FUZZ_CHECK(cpu_list::trim(piece).empty());
      if (previous != std::string_view::npos) {
        MOIRAI_FUZZ_CHECK(cpu_list::parse(before.substr(0, previous), max_id).ok());
      }
    }
    return;
  }
  // An item: no comma in it, no blank around it, refused alone for the same reason.
  MOIRAI_FUZZ_CHECK(where.find(',') == std::string_view::npos && cpu_list::trim(where) == where);
  const cpu_list::Parsed alone = cpu_list::parse(where, max_id);
  MOIRAI_FUZZ_CHECK(alone.fault == parsed.fault && alone.offset == 0 && alone.length == where.size());
  const std::string_view head = cpu_list::trim(before);
  MOIRAI_FUZZ_CHECK(head.empty() || head.back() == ',');
  if (!head.empty()) MOIRAI_FUZZ_CHECK(cpu_list::parse(head.substr(0, head.size() - 1), max_id).ok());
  if (parsed.fault == Fault::blank_in_range) {
    MOIRAI_FUZZ_CHECK(std::any_of(where.begin(), where.end(), blank));
  }
}

void check_against_reference(std::string_view text, int max_id) {
  const cpu_list::Parsed parsed = cpu_list::parse(text, max_id);
  const std::optional<std::set<int>> model = reference(text, max_id);
  MOIRAI_FUZZ_CHECK(parsed.ok() == model.has_value());
  if (parsed.ok()) {
    MOIRAI_FUZZ_CHECK(std::equal(parsed.ids.begin(), parsed.ids.end(), model->begin(), model->end()));
    check_accepted(text, parsed, max_id);
  } else {
    check_refused(text, parsed, max_id);
  }
}

void check_modules(std::string_view text) {
  const cpu_list::Parsed wide = cpu_list::parse(text);
  const cpu_list::Parsed narrow = cpu_list::parse(text, moirai::kMaxCpus - 1);
  // A lower bound refuses exactly the lists that name an id above it.
  MOIRAI_FUZZ_CHECK(narrow.ok() == (wide.ok() && (wide.ids.empty() || wide.ids.back() < moirai::kMaxCpus)));
  if (narrow.ok()) MOIRAI_FUZZ_CHECK(narrow.ids == wide.ids);

  const std::optional<std::vector<int>> numa = moirai::numa::parse_cpu_list(text);
  MOIRAI_FUZZ_CHECK(numa.has_value() == wide.ok());
  if (numa) MOIRAI_FUZZ_CHECK(*numa == wide.ids);

  cpu_set_t set;
  MOIRAI_FUZZ_CHECK(moirai::rt::detail::parse_cpu_list(text, set) == narrow.ok());
  MOIRAI_FUZZ_CHECK(CPU_COUNT(&set) == static_cast<int>(narrow.ids.size()));
  for (const int cpu : narrow.ids)
    MOIRAI_FUZZ_CHECK(CPU_ISSET(cpu, &set));
  if (narrow.ok())
    MOIRAI_FUZZ_CHECK(moirai::rt::detail::format_cpu_list(set) == cpu_list::format(narrow.ids));

  try {
    const std::vector<int> core = moirai::parse_cpu_list(text);
    MOIRAI_FUZZ_CHECK(narrow.ok() && !narrow.ids.empty() && core == narrow.ids);
    MOIRAI_FUZZ_CHECK(moirai::format_cpu_list(core) == cpu_list::format(core));
  } catch (const moirai::Error& e) {
    MOIRAI_FUZZ_CHECK(e.code() == moirai::make_error_code(moirai::Errc::invalid_cpu_set));
    MOIRAI_FUZZ_CHECK(!narrow.ok() || narrow.ids.empty());
    // The message quotes the item at fault (what() is a C string: an item with a NUL in it is cut short).
    const std::string_view item = narrow.where(text);
    const bool item_fault = narrow.fault != Fault::empty_item && narrow.fault != Fault::trailing_comma;
    if (!narrow.ok() && item_fault && item.find('\0') == std::string_view::npos) {
      MOIRAI_FUZZ_CHECK(std::string_view(e.what()).find(item) != std::string_view::npos);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // Longer texts add nothing but time: each item may be a range of 8192 ids.
  if (size > 512) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  check_against_reference(text, cpu_list::kMaxId);
  check_against_reference(text, moirai::kMaxCpus - 1);
  check_against_reference(text, 7);
  check_modules(text);
  return 0;
}
