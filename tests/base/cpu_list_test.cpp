// The one CPU list parser and printer (<moirai/base/cpu_list.hpp>): what it reads, what it refuses and where
// it says the fault is. tests/fuzz/cpu_list_fuzz.cpp checks it against a reference model on any text.
#include "moirai/base/cpu_list.hpp"

#include <gtest/gtest.h>

#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace moirai::cpu_list {
namespace {

std::vector<int> ids_of(std::string_view text, int max_id = kMaxId) {
  const Parsed parsed = parse(text, max_id);
  EXPECT_TRUE(parsed.ok()) << '"' << text << "\" refused";
  return parsed.ids;
}

// The fault of a refused text, with the part of it the fault points at.
struct Refusal {
  Fault fault;
  std::string where;
  bool operator==(const Refusal&) const = default;
};

Refusal refusal(std::string_view text, int max_id = kMaxId) {
  const Parsed parsed = parse(text, max_id);
  EXPECT_FALSE(parsed.ok()) << '"' << text << "\" accepted";
  EXPECT_TRUE(parsed.ids.empty());
  return {parsed.fault, std::string(parsed.where(text))};
}

void PrintTo(const Refusal& r, std::ostream* os) {
  *os << static_cast<int>(r.fault) << " at \"" << r.where << '"';
}

TEST(CpuListParse, ReadsTheKernelsForm) {
  EXPECT_EQ(ids_of("0-3,8,10-11"), (std::vector<int>{0, 1, 2, 3, 8, 10, 11}));
  EXPECT_EQ(ids_of("5"), (std::vector<int>{5}));
  EXPECT_EQ(ids_of("7-7"), (std::vector<int>{7}));
  EXPECT_EQ(ids_of("007"), (std::vector<int>{7}));
  EXPECT_EQ(ids_of("5,0-2,1,2-3,5"), (std::vector<int>{0, 1, 2, 3, 5}));
}

TEST(CpuListParse, BlankTextIsTheEmptyList) {
  EXPECT_TRUE(ids_of("").empty());
  EXPECT_TRUE(ids_of("\n").empty());
  EXPECT_TRUE(ids_of(" \t\r\v\f").empty());
}

TEST(CpuListParse, ToleratesBlanksAroundItems) {
  EXPECT_EQ(ids_of("0-3,8\n"), (std::vector<int>{0, 1, 2, 3, 8}));
  EXPECT_EQ(ids_of(" 0 ,\t2-3 "), (std::vector<int>{0, 2, 3}));
}

TEST(CpuListParse, NamesTheFaultAndWhereItIs) {
  EXPECT_EQ(refusal(",1"), (Refusal{Fault::empty_item, ","}));
  EXPECT_EQ(parse("1, ,2").offset, 3u);  // the comma that ends the empty item
  EXPECT_EQ(refusal("1,,2"), (Refusal{Fault::empty_item, ","}));
  EXPECT_EQ(refusal("0-3, "), (Refusal{Fault::trailing_comma, ","}));
  EXPECT_EQ(parse("0-3,").offset, 3u);
  EXPECT_EQ(refusal("0, abc ,1"), (Refusal{Fault::not_a_number, "abc"}));
  EXPECT_EQ(parse("0, abc ,1").offset, 3u);
  for (const char* text : {"+1", "0x3", "1 2", "1-2-3", "0-", "-", "none", "1e3"})
    EXPECT_EQ(refusal(text).fault, Fault::not_a_number) << '"' << text << '"';
  EXPECT_EQ(refusal("-1"), (Refusal{Fault::negative, "-1"}));
  EXPECT_EQ(refusal("2,3--1"), (Refusal{Fault::negative, "3--1"}));
  EXPECT_EQ(refusal("0--0").fault, Fault::negative);
  EXPECT_EQ(refusal("0 - 3"), (Refusal{Fault::blank_in_range, "0 - 3"}));
  EXPECT_EQ(refusal("0-\n3").fault, Fault::blank_in_range);
  EXPECT_EQ(refusal("1,5-3"), (Refusal{Fault::reversed_range, "5-3"}));
}

TEST(CpuListParse, BoundsIdsByTheCallersLimit) {
  EXPECT_EQ(ids_of("0-8191").size(), 8192u);
  EXPECT_EQ(refusal("8192"), (Refusal{Fault::too_large, "8192"}));
  EXPECT_EQ(refusal("0-4000000000").fault, Fault::too_large);
  // Too many digits for any integer is still just too large.
  EXPECT_EQ(refusal("123456789012345678901234567890").fault, Fault::too_large);
  EXPECT_EQ(ids_of("1023", 1023), (std::vector<int>{1023}));
  EXPECT_EQ(refusal("0,1024", 1023), (Refusal{Fault::too_large, "1024"}));
  EXPECT_EQ(refusal("1", 0).fault, Fault::too_large);
}

TEST(CpuListFormat, PrintsRangesCompactly) {
  EXPECT_EQ(format({}), "");
  EXPECT_EQ(format({4}), "4");
  EXPECT_EQ(format({0, 1}), "0-1");
  EXPECT_EQ(format({9, 8, 0, 2, 1, 2, 5}), "0-2,5,8-9");
}

TEST(CpuListFormat, ParsesBackToTheSameIds) {
  for (const std::vector<int>& ids :
       std::vector<std::vector<int>>{{}, {0}, {0, 1, 2, 3, 5}, {1, 3, 5, 7}, {0, 8191}}) {
    EXPECT_EQ(parse(format(ids)).ids, ids);
  }
}

}  // namespace
}  // namespace moirai::cpu_list
