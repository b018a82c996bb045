#include "report.hpp"

#include "json_reader.hpp"

#include <gtest/gtest.h>

#include "text_lines.hpp"

#include <cctype>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace {

using moirai::LatencyHistogram;
using moirai::cli::BenchReport;
using moirai::cli::BenchRow;
using moirai::cli::RunBudget;
using namespace std::chrono_literals;
using namespace moirai::cli::json;
using moirai::cli::testing::lines_of;

TEST(ReportJsonParser, RejectsInvalidDocuments) {
  // The parser is the test's oracle, so check that it does refuse what it should.
  for (const char* bad : {"{", "{\"a\":1,}", "[1 2]", "\"a\nb\"", "01", "{\"a\":1}x", "[1.]", "{a:1}"})
    EXPECT_THROW(parse_json(bad), std::runtime_error) << bad;
  EXPECT_NO_THROW(parse_json("{\"a\":[1,-2.5e3,true,null,\"\\u0001\"]}"));
}

// ---- fixtures
// ------------------------------------------------------------------------------------------------

BenchRow row(std::string name, std::uint64_t p50, std::uint64_t p99) {
  BenchRow r;
  r.name = std::move(name);
  r.count = 1000;
  r.p50 = p50;
  r.p90 = p50 + 10;
  r.p99 = p99;
  r.p999 = p99 + 100;
  r.p9999 = p99 + 200;
  r.max = p99 + 1000;
  return r;
}

BenchReport pingpong_report() {
  BenchReport r;
  r.bench = "pingpong";
  r.rows.push_back(row("baseline.cacheline", 200, 400));
  r.rows.push_back(row("moirai.submit_to", 300, 1000));
  r.rows.push_back(row("baseline.other", 100, 100));  // not the baseline: only the first one is
  r.note = "round trip between CPU 0 and CPU 1";
  return r;
}

// ---- summarize
// ---------------------------------------------------------------------------------------------------

TEST(Report, SummarizeTakesPercentilesFromTheHistogram) {
  auto h = std::make_unique<LatencyHistogram>();
  for (std::uint64_t v = 1; v <= 10000; ++v)
    h->record(v);
  const BenchRow r = moirai::cli::summarize("moirai.x", *h);
  EXPECT_EQ(r.name, "moirai.x");
  EXPECT_EQ(r.count, 10000u);
  EXPECT_EQ(r.p50, h->percentile(50));
  EXPECT_EQ(r.p90, h->percentile(90));
  EXPECT_EQ(r.p99, h->percentile(99));
  EXPECT_EQ(r.p999, h->percentile(99.9));
  EXPECT_EQ(r.p9999, h->percentile(99.99));
  EXPECT_EQ(r.max, 10000u);
  EXPECT_FALSE(r.per_sec.has_value());
  EXPECT_LE(r.p50, r.p90);
  EXPECT_LE(r.p99, r.p999);
  EXPECT_LE(r.p9999, r.max);
}

// ---- ratios
// ------------------------------------------------------------------------------------------------------

TEST(Report, RatiosAreToTheFirstBaselineRow) {
  const BenchReport r = pingpong_report();
  const BenchRow* base = moirai::cli::find_baseline(r);
  ASSERT_NE(base, nullptr);
  EXPECT_EQ(base->name, "baseline.cacheline");
  const auto ratios = moirai::cli::ratios_to_baseline(r.rows[1], base);
  ASSERT_TRUE(ratios.has_value());
  EXPECT_DOUBLE_EQ(ratios->p50, 1.5);
  EXPECT_DOUBLE_EQ(ratios->p99, 2.5);
  // Baseline rows and rows of other origins are not compared.
  EXPECT_FALSE(moirai::cli::ratios_to_baseline(r.rows[0], base).has_value());
  EXPECT_FALSE(moirai::cli::ratios_to_baseline(r.rows[2], base).has_value());
}

TEST(Report, NoRatioWithoutABaselineOrAgainstZero) {
  BenchReport r;
  r.bench = "b";
  r.rows.push_back(row("moirai.alone", 300, 1000));
  EXPECT_EQ(moirai::cli::find_baseline(r), nullptr);
  EXPECT_FALSE(moirai::cli::ratios_to_baseline(r.rows[0], nullptr).has_value());
  const Json j = parse_json(moirai::cli::to_json(r));
  EXPECT_FALSE(j.at("results").array()[0].has("ratio_p50"));

  const BenchRow zero = row("baseline.zero", 0, 0);
  EXPECT_FALSE(moirai::cli::ratios_to_baseline(r.rows[0], &zero).has_value());
}

// ---- JSON
// --------------------------------------------------------------------------------------------------------

void expect_row_matches(const Json& j, const BenchRow& r) {
  ASSERT_TRUE(j.is_object());
  EXPECT_EQ(j.at("name").string(), r.name);
  const std::pair<const char*, std::uint64_t> figures[] = {
      {"count", r.count}, {"p50", r.p50},     {"p90", r.p90}, {"p99", r.p99},
      {"p999", r.p999},   {"p9999", r.p9999}, {"max", r.max}};
  for (const auto& [key, value] : figures) {
    ASSERT_TRUE(j.has(key)) << key;
    ASSERT_TRUE(j.at(key).is_integer()) << key;
    EXPECT_EQ(j.at(key).integer(), value) << key;
  }
}

TEST(Report, JsonHasTheDocumentedShape) {
  const BenchReport r = pingpong_report();
  const Json j = parse_json(moirai::cli::to_json(r));
  ASSERT_TRUE(j.is_object());
  EXPECT_EQ(j.at("bench").string(), "pingpong");
  EXPECT_EQ(j.at("unit").string(), "ns");
  EXPECT_EQ(j.at("note").string(), r.note);
  const JsonArray& results = j.at("results").array();
  ASSERT_EQ(results.size(), 3u);
  for (std::size_t i = 0; i < results.size(); ++i)
    expect_row_matches(results[i], r.rows[i]);

  EXPECT_FALSE(results[0].has("ratio_p50"));
  EXPECT_FALSE(results[0].has("per_sec"));
  ASSERT_TRUE(results[1].has("ratio_p50"));
  ASSERT_TRUE(results[1].has("ratio_p99"));
  EXPECT_DOUBLE_EQ(results[1].at("ratio_p50").number(), 1.5);
  EXPECT_DOUBLE_EQ(results[1].at("ratio_p99").number(), 2.5);
  EXPECT_FALSE(results[2].has("ratio_p50"));
}

TEST(Report, JsonCarriesFullUint64Values) {
  BenchReport r;
  r.bench = "big";
  BenchRow b = row("baseline.x", 1, 1);
  b.max = 18446744073709551615ull;
  r.rows.push_back(b);
  const Json j = parse_json(moirai::cli::to_json(r));
  EXPECT_EQ(j.at("results").array()[0].at("max").integer(), 18446744073709551615ull);
}

TEST(Report, ThroughputRowsHavePerSecAndNoRatios) {
  BenchReport r;
  r.bench = "channel";
  r.rows.push_back(row("baseline.spsc", 50, 80));
  BenchRow t = row("moirai.channel", 60, 90);
  t.per_sec = 12345678.5;
  r.rows.push_back(t);
  const Json j = parse_json(moirai::cli::to_json(r));
  const Json& moirai_row = j.at("results").array()[1];
  ASSERT_TRUE(moirai_row.has("per_sec"));
  EXPECT_TRUE(moirai_row.at("per_sec").is_number());
  EXPECT_DOUBLE_EQ(moirai_row.at("per_sec").number(), 12345678.5);
  EXPECT_FALSE(moirai_row.has("ratio_p50"));
  EXPECT_FALSE(moirai::cli::ratios_to_baseline(r.rows[1], moirai::cli::find_baseline(r)).has_value());
}

TEST(Report, JsonEscapesStrings) {
  BenchReport r;
  r.bench = "we\"ird\\name\n\t\x01/";
  r.rows.push_back(row("moirai.\"quoted\"", 1, 2));
  r.note = "line one\nline two\r\b\f";
  const std::string text = moirai::cli::to_json(r);
  const Json j = parse_json(text);
  EXPECT_EQ(j.at("bench").string(), r.bench);
  EXPECT_EQ(j.at("note").string(), r.note);
  EXPECT_EQ(j.at("results").array()[0].at("name").string(), "moirai.\"quoted\"");
}

TEST(Report, JsonArrayOfReports) {
  BenchReport empty;
  empty.bench = "empty";
  const std::vector<BenchReport> reports = {pingpong_report(), empty};
  const Json j = parse_json(moirai::cli::to_json(reports));
  ASSERT_TRUE(j.is_array());
  ASSERT_EQ(j.array().size(), 2u);
  EXPECT_EQ(j.array()[0].at("bench").string(), "pingpong");
  EXPECT_EQ(j.array()[1].at("bench").string(), "empty");
  EXPECT_TRUE(j.array()[1].at("results").array().empty());
  EXPECT_FALSE(j.array()[1].has("note"));

  const Json none = parse_json(moirai::cli::to_json(std::vector<BenchReport>{}));
  ASSERT_TRUE(none.is_array());
  EXPECT_TRUE(none.array().empty());
}

// ---- table
// -------------------------------------------------------------------------------------------------------

TEST(Report, TableShowsEveryRowTheRatiosAndTheNote) {
  const BenchReport r = pingpong_report();
  std::ostringstream out;
  moirai::cli::print_table(out, r);
  const std::string text = out.str();
  EXPECT_NE(text.find("pingpong"), std::string::npos);
  for (const BenchRow& b : r.rows)
    EXPECT_NE(text.find(b.name), std::string::npos) << b.name;
  for (const char* column : {"count", "p50", "p90", "p99", "p99.9", "p99.99", "max"})
    EXPECT_NE(text.find(column), std::string::npos) << column;
  EXPECT_NE(text.find("1.50x"), std::string::npos);
  EXPECT_NE(text.find("2.50x"), std::string::npos);
  EXPECT_NE(text.find(r.note), std::string::npos);

  // The Moirai row carries its own ratios, and the numbers of every row are there.
  const auto lines = lines_of(text);
  bool found = false;
  for (const std::string& line : lines) {
    if (line.rfind("moirai.submit_to", 0) == 0) {
      found = true;
      EXPECT_NE(line.find("1.50x"), std::string::npos);
      EXPECT_NE(line.find("2.50x"), std::string::npos);
      EXPECT_NE(line.find(" 300 "), std::string::npos);
      EXPECT_NE(line.find(" 1000 "), std::string::npos);
    }
  }
  EXPECT_TRUE(found);
}

TEST(Report, TableColumnsAreAligned) {
  BenchReport r = pingpong_report();
  r.rows.push_back(row("moirai.a_much_longer_name_than_the_others", 123456, 9999999));
  std::ostringstream out;
  moirai::cli::print_table(out, r);
  const auto lines = lines_of(out.str());
  // Title, header, one line per row; then the note.
  ASSERT_GE(lines.size(), 2 + r.rows.size());
  const std::string& header = lines[1];
  // Right-aligned numeric columns: each header label ends where the numbers under it end.
  const std::size_t max_end = header.find("max") + 3;
  for (std::size_t i = 0; i < r.rows.size(); ++i) {
    const std::string& line = lines[2 + i];
    const std::string max = std::to_string(r.rows[i].max);
    ASSERT_GE(line.size(), max_end) << line;
    EXPECT_EQ(line.substr(max_end - max.size(), max.size()), max) << line;
  }
}

TEST(Report, TableShowsRatesForThroughputRows) {
  BenchReport r;
  r.bench = "channel";
  r.rows.push_back(row("baseline.spsc", 50, 80));
  BenchRow t = row("moirai.channel", 60, 90);
  t.per_sec = 12345678;
  r.rows.push_back(t);
  std::ostringstream out;
  moirai::cli::print_table(out, r);
  const std::string text = out.str();
  EXPECT_NE(text.find("per sec"), std::string::npos);
  EXPECT_NE(text.find("12.3M"), std::string::npos);
  EXPECT_EQ(text.find("1.20x"), std::string::npos);  // no ratio in place of the rate
}

// ---- RunBudget
// ---------------------------------------------------------------------------------------------------

TEST(RunBudget, CountOnly) {
  const RunBudget b{.count = 100};
  EXPECT_FALSE(b.done(0, 0ns));
  EXPECT_FALSE(b.done(99, 1h));
  EXPECT_TRUE(b.done(100, 0ns));
  EXPECT_TRUE(b.done(101, 0ns));
}

TEST(RunBudget, DurationOnly) {
  const RunBudget b{.duration = 5ms};
  EXPECT_FALSE(b.done(0, 0ns));
  EXPECT_FALSE(b.done(1000000, 4999us));
  EXPECT_TRUE(b.done(0, 5ms));
  EXPECT_TRUE(b.done(1, 6ms));
}

TEST(RunBudget, WhicheverComesFirst) {
  const RunBudget b{.count = 10, .duration = 1s};
  EXPECT_FALSE(b.done(5, 500ms));
  EXPECT_TRUE(b.done(10, 500ms));
  EXPECT_TRUE(b.done(5, 1s));
}

TEST(RunBudget, EmptyBudgetIsDoneImmediately) {
  const RunBudget b;
  EXPECT_TRUE(b.done(0, 0ns));
}

}  // namespace
