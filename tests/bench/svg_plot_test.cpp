#include "svg_plot.hpp"

#include <gtest/gtest.h>
#include <tinyxml2.h>

#include <cstdint>
#include <cstdlib>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace {

using moirai::LatencyHistogram;
using moirai::cli::BenchReport;
using moirai::cli::BenchRow;
using moirai::cli::percentile_plot_svg;
using moirai::cli::summarize;

// `n` recordings spread over [low, low + spread), with one in a thousand `tail` times larger.
BenchRow measured(std::string name, std::uint64_t low, std::uint64_t spread, std::uint64_t tail) {
  auto h = std::make_unique<LatencyHistogram>();
  std::uint64_t x = low;
  for (int i = 0; i < 20011; ++i) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    const std::uint64_t v = low + (x >> 33) % spread;
    h->record(i % 1000 == 7 ? v * tail : v);
  }
  return summarize(std::move(name), *h);
}

BenchReport echo_report() {
  BenchReport r;
  r.bench = "echo";
  r.rows.push_back(measured("baseline.tcp_syscall_spin", 10'000, 3'000, 5));
  r.rows.push_back(measured("moirai.tcp", 14'000, 4'000, 8));
  BenchRow tput = measured("moirai.tcp.throughput", 500, 100, 2);
  tput.per_sec = 1.5e6;  // a throughput row: not a latency, not plotted
  r.rows.push_back(tput);
  BenchRow figures_only;  // a row without a distribution: not plotted
  figures_only.name = "moirai.summary_only";
  figures_only.p50 = 100;
  r.rows.push_back(figures_only);
  r.rows.push_back(measured("moirai.<unix>&", 12'000, 2'000, 3));  // a name that must be escaped
  return r;
}

struct Point {
  double x, y;
};

std::vector<Point> parse_points(const char* text) {
  std::vector<Point> points;
  std::istringstream in(text);
  for (std::string pair; in >> pair;) {
    const auto comma = pair.find(',');
    EXPECT_NE(comma, std::string::npos) << pair;
    points.push_back({std::strtod(pair.substr(0, comma).c_str(), nullptr),
                      std::strtod(pair.substr(comma + 1).c_str(), nullptr)});
  }
  return points;
}

// Every element named `name` below `e`, depth first.
void collect(const tinyxml2::XMLElement* e, const char* name, std::vector<const tinyxml2::XMLElement*>& out) {
  for (const tinyxml2::XMLElement* c = e->FirstChildElement(); c != nullptr; c = c->NextSiblingElement()) {
    if (std::string(c->Name()) == name) out.push_back(c);
    collect(c, name, out);
  }
}

std::string attr(const tinyxml2::XMLElement* e, const char* name) {
  const char* v = e->Attribute(name);
  return v == nullptr ? "" : v;
}

TEST(SvgPlot, IsXmlWithOneSeriesPerRowWithADistribution) {
  const BenchReport r = echo_report();
  const std::string svg = percentile_plot_svg(r);
  tinyxml2::XMLDocument doc;
  ASSERT_EQ(doc.Parse(svg.c_str(), svg.size()), tinyxml2::XML_SUCCESS) << doc.ErrorStr();
  const tinyxml2::XMLElement* root = doc.RootElement();
  ASSERT_NE(root, nullptr);
  EXPECT_STREQ(root->Name(), "svg");
  EXPECT_EQ(attr(root, "xmlns"), "http://www.w3.org/2000/svg");
  ASSERT_NE(root->FirstChildElement("title"), nullptr);
  EXPECT_STREQ(root->FirstChildElement("title")->GetText(), "echo");

  // The plot area, which every point must lie in.
  std::vector<const tinyxml2::XMLElement*> rects;
  collect(root, "rect", rects);
  const tinyxml2::XMLElement* area = nullptr;
  for (const auto* e : rects)
    if (attr(e, "class") == "plot-area") area = e;
  ASSERT_NE(area, nullptr);
  const double left = area->DoubleAttribute("x"), top = area->DoubleAttribute("y");
  const double right = left + area->DoubleAttribute("width"), bottom = top + area->DoubleAttribute("height");
  ASSERT_LT(left, right);
  ASSERT_LT(top, bottom);

  std::vector<const tinyxml2::XMLElement*> polylines;
  collect(root, "polyline", polylines);
  std::map<std::string, std::string> series;  // name -> class
  for (const auto* e : polylines) {
    const std::string name = attr(e, "data-name");
    series[name] = attr(e, "class");
    const std::vector<Point> points = parse_points(e->Attribute("points"));
    ASSERT_GE(points.size(), 50u) << name;
    EXPECT_NEAR(points.front().x, left, 0.5) << name;  // 50% at the left edge, 99.999% at the right
    EXPECT_NEAR(points.back().x, right, 0.5) << name;
    for (std::size_t i = 0; i < points.size(); ++i) {
      EXPECT_GE(points[i].x, left - 0.05) << name;
      EXPECT_LE(points[i].x, right + 0.05) << name;
      EXPECT_GE(points[i].y, top - 0.05) << name;
      EXPECT_LE(points[i].y, bottom + 0.05) << name;
      if (i == 0) continue;
      EXPECT_GT(points[i].x, points[i - 1].x) << name << " point " << i;
      EXPECT_LE(points[i].y, points[i - 1].y) << name << " point " << i << ": latency never falls";
    }
    // The curve rises into the tail: the tail is 3 to 8 times the body here.
    EXPECT_LT(points.back().y, points.front().y - 20) << name;
  }
  const std::map<std::string, std::string> expected = {{"baseline.tcp_syscall_spin", "series baseline"},
                                                       {"moirai.tcp", "series moirai"},
                                                       {"moirai.<unix>&", "series moirai"}};
  EXPECT_EQ(series, expected);
  for (const auto* e : polylines) {
    const bool dashed = e->Attribute("stroke-dasharray") != nullptr;
    EXPECT_EQ(dashed, attr(e, "class") == "series baseline") << attr(e, "data-name");
  }

  // One legend entry per series, with the series' name as its text.
  std::vector<const tinyxml2::XMLElement*> groups;
  collect(root, "g", groups);
  std::vector<std::string> legend;
  for (const auto* g : groups) {
    if (attr(g, "class") != "legend-entry") continue;
    legend.push_back(attr(g, "data-name"));
    ASSERT_NE(g->FirstChildElement("text"), nullptr);
    EXPECT_EQ(std::string(g->FirstChildElement("text")->GetText()), attr(g, "data-name"));
  }
  EXPECT_EQ(legend, (std::vector<std::string>{"baseline.tcp_syscall_spin", "moirai.tcp", "moirai.<unix>&"}));
}

TEST(SvgPlot, AxesAreLabelledWithPercentilesAndLatencies) {
  const std::string svg = percentile_plot_svg(echo_report());
  tinyxml2::XMLDocument doc;
  ASSERT_EQ(doc.Parse(svg.c_str(), svg.size()), tinyxml2::XML_SUCCESS);
  std::vector<const tinyxml2::XMLElement*> texts;
  collect(doc.RootElement(), "text", texts);
  std::vector<std::string> x_ticks, y_ticks;
  for (const auto* t : texts) {
    if (attr(t, "class") == "tick x") x_ticks.push_back(t->GetText());
    if (attr(t, "class") == "tick y") y_ticks.push_back(t->GetText());
  }
  EXPECT_EQ(x_ticks, (std::vector<std::string>{"50%", "90%", "99%", "99.9%", "99.99%", "99.999%"}));
  // 10 µs to at least 100 µs in decades: the body is 10-18 µs, the tail up to 144 µs.
  ASSERT_GE(y_ticks.size(), 2u);
  EXPECT_EQ(y_ticks.front(), "10 µs");
  EXPECT_NE(std::find(y_ticks.begin(), y_ticks.end(), "100 µs"), y_ticks.end());
}

TEST(SvgPlot, ABenchWithoutDistributionsIsStillADocument) {
  BenchReport r;
  r.bench = "rt";
  BenchRow only;
  only.name = "moirai.x";
  r.rows.push_back(only);
  const std::string svg = percentile_plot_svg(r);
  tinyxml2::XMLDocument doc;
  ASSERT_EQ(doc.Parse(svg.c_str(), svg.size()), tinyxml2::XML_SUCCESS);
  std::vector<const tinyxml2::XMLElement*> polylines;
  collect(doc.RootElement(), "polyline", polylines);
  EXPECT_TRUE(polylines.empty());
}

TEST(SvgPlot, LatencyLabelsTakeAnSiPrefix) {
  using moirai::cli::format_latency;
  EXPECT_EQ(format_latency(100, "ns"), "100 ns");
  EXPECT_EQ(format_latency(2000, "ns"), "2 µs");
  EXPECT_EQ(format_latency(5e6, "ns"), "5 ms");
  EXPECT_EQ(format_latency(1e10, "ns"), "10 s");
  EXPECT_EQ(format_latency(1400, "ps"), "1.4 ns");
}

}  // namespace
