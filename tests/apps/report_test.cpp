#include "report.hpp"

#include <gtest/gtest.h>

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

// ---- a small validating JSON parser (RFC 8259), enough to read back what to_json writes
// ----------------------

struct Json;
using JsonObject = std::map<std::string, Json>;
using JsonArray = std::vector<Json>;

struct Json {
  struct Null {};
  // Numbers keep their text too, so that a test can tell an integer from a fraction.
  struct Number {
    double value;
    std::string text;
  };
  std::variant<Null, bool, Number, std::string, std::shared_ptr<JsonArray>, std::shared_ptr<JsonObject>> v;

  bool is_object() const { return std::holds_alternative<std::shared_ptr<JsonObject>>(v); }
  bool is_array() const { return std::holds_alternative<std::shared_ptr<JsonArray>>(v); }
  bool is_number() const { return std::holds_alternative<Number>(v); }
  bool is_string() const { return std::holds_alternative<std::string>(v); }
  const JsonObject& object() const { return *std::get<std::shared_ptr<JsonObject>>(v); }
  const JsonArray& array() const { return *std::get<std::shared_ptr<JsonArray>>(v); }
  const std::string& string() const { return std::get<std::string>(v); }
  double number() const { return std::get<Number>(v).value; }
  bool is_integer() const {
    if (!is_number()) return false;
    const std::string& t = std::get<Number>(v).text;
    return t.find_first_of(".eE") == std::string::npos;
  }
  std::uint64_t integer() const { return std::stoull(std::get<Number>(v).text); }
  const Json& at(const std::string& key) const { return object().at(key); }
  bool has(const std::string& key) const { return object().count(key) != 0; }
};

class JsonParser {
 public:
  explicit JsonParser(std::string_view text) : s_(text) {}

  Json parse_document() {
    Json j = parse_value();
    skip_ws();
    if (i_ != s_.size()) fail("trailing characters");
    return j;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw std::runtime_error("invalid JSON at " + std::to_string(i_) + ": " + what);
  }
  void skip_ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r'))
      ++i_;
  }
  char peek() const { return i_ < s_.size() ? s_[i_] : '\0'; }
  void expect(char c) {
    if (peek() != c) fail(std::string("expected '") + c + "'");
    ++i_;
  }
  void literal(std::string_view word) {
    if (s_.substr(i_, word.size()) != word) fail("bad literal");
    i_ += word.size();
  }

  Json parse_value() {
    skip_ws();
    const char c = peek();
    if (c == '{') return parse_object();
    if (c == '[') return parse_array();
    if (c == '"') return Json{parse_string()};
    if (c == 't') {
      literal("true");
      return Json{true};
    }
    if (c == 'f') {
      literal("false");
      return Json{false};
    }
    if (c == 'n') {
      literal("null");
      return Json{Json::Null{}};
    }
    if (c == '-' || std::isdigit(static_cast<unsigned char>(c))) return parse_number();
    fail("unexpected character");
  }

  Json parse_object() {
    expect('{');
    auto obj = std::make_shared<JsonObject>();
    skip_ws();
    if (peek() == '}') {
      ++i_;
      return Json{obj};
    }
    for (;;) {
      skip_ws();
      std::string key = parse_string();
      if (obj->count(key) != 0) fail("duplicate key " + key);
      skip_ws();
      expect(':');
      (*obj)[key] = parse_value();
      skip_ws();
      if (peek() == ',') {
        ++i_;
        continue;
      }
      expect('}');
      return Json{obj};
    }
  }

  Json parse_array() {
    expect('[');
    auto arr = std::make_shared<JsonArray>();
    skip_ws();
    if (peek() == ']') {
      ++i_;
      return Json{arr};
    }
    for (;;) {
      arr->push_back(parse_value());
      skip_ws();
      if (peek() == ',') {
        ++i_;
        continue;
      }
      expect(']');
      return Json{arr};
    }
  }

  std::string parse_string() {
    expect('"');
    std::string out;
    for (;;) {
      if (i_ >= s_.size()) fail("unterminated string");
      const auto c = static_cast<unsigned char>(s_[i_++]);
      if (c == '"') return out;
      if (c < 0x20) fail("raw control character in string");
      if (c != '\\') {
        out += static_cast<char>(c);
        continue;
      }
      if (i_ >= s_.size()) fail("unterminated escape");
      const char e = s_[i_++];
      switch (e) {
        case '"':
          out += '"';
          break;
        case '\\':
          out += '\\';
          break;
        case '/':
          out += '/';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u': {
          if (i_ + 4 > s_.size()) fail("short \\u escape");
          unsigned code = 0;
          for (int k = 0; k < 4; ++k) {
            const char h = s_[i_++];
            if (!std::isxdigit(static_cast<unsigned char>(h))) fail("bad \\u escape");
            code = code * 16 +
                   static_cast<unsigned>(std::isdigit(static_cast<unsigned char>(h))
                                             ? h - '0'
                                             : std::tolower(static_cast<unsigned char>(h)) - 'a' + 10);
          }
          if (code >= 0x80) fail("test parser only decodes ASCII escapes");
          out += static_cast<char>(code);
          break;
        }
        default:
          fail("bad escape");
      }
    }
  }

  Json parse_number() {
    const std::size_t start = i_;
    if (peek() == '-') ++i_;
    if (peek() == '0') {
      ++i_;
    } else if (std::isdigit(static_cast<unsigned char>(peek()))) {
      while (std::isdigit(static_cast<unsigned char>(peek())))
        ++i_;
    } else {
      fail("bad number");
    }
    if (peek() == '.') {
      ++i_;
      if (!std::isdigit(static_cast<unsigned char>(peek()))) fail("bad fraction");
      while (std::isdigit(static_cast<unsigned char>(peek())))
        ++i_;
    }
    if (peek() == 'e' || peek() == 'E') {
      ++i_;
      if (peek() == '+' || peek() == '-') ++i_;
      if (!std::isdigit(static_cast<unsigned char>(peek()))) fail("bad exponent");
      while (std::isdigit(static_cast<unsigned char>(peek())))
        ++i_;
    }
    std::string text(s_.substr(start, i_ - start));
    return Json{Json::Number{std::strtod(text.c_str(), nullptr), text}};
  }

  std::string_view s_;
  std::size_t i_ = 0;
};

Json parse_json(const std::string& text) {
  return JsonParser(text).parse_document();
}

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

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    lines.push_back(line);
  return lines;
}

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
