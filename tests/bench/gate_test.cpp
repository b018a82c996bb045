#include "gate.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "moirai/core/error.hpp"
#include "report_files.hpp"

namespace {

using moirai::Error;
using moirai::cli::BenchReport;
using moirai::cli::BenchRow;
using moirai::cli::gate;
using moirai::cli::GateLine;
using moirai::cli::GateOptions;
using moirai::cli::GateResult;
using moirai::cli::parse_saved_run;
using moirai::cli::SavedRatios;
using Verdict = moirai::cli::GateLine::Verdict;

BenchRow figures(std::string name, std::uint64_t p50, std::uint64_t p99) {
  BenchRow r;
  r.name = std::move(name);
  r.count = 1000;
  r.p50 = p50;
  r.p99 = p99;
  r.max = p99 * 2;
  return r;
}

// An echo bench whose moirai.tcp row is `tcp_p50` / 10000 times its baseline at p50, and moirai.udp 1.2x.
BenchReport echo(std::uint64_t tcp_p50, std::uint64_t tcp_p99 = 20'000) {
  BenchReport r;
  r.bench = "echo";
  r.rows.push_back(figures("baseline.tcp_syscall_spin", 10'000, 15'000));
  r.rows.push_back(figures("moirai.tcp", tcp_p50, tcp_p99));
  BenchRow udp = figures("moirai.udp", 12'000, 18'000);
  r.rows.push_back(udp);
  return r;
}

BenchReport pingpong(std::uint64_t p50) {
  BenchReport r;
  r.bench = "pingpong";
  r.rows.push_back(figures("baseline.cacheline", 200, 400));
  r.rows.push_back(figures("moirai.submit_to", p50, 600));
  return r;
}

// The saved run as the CLI writes it, read back as the gate reads a file.
std::vector<SavedRatios> saved(const std::vector<BenchReport>& run) {
  return parse_saved_run(moirai::cli::to_json(run), "saved.json");
}

const GateLine* find(const GateResult& g, const std::string& row, const std::string& figure = "p50") {
  for (const GateLine& l : g.lines)
    if (l.row == row && l.figure == figure) return &l;
  return nullptr;
}

TEST(Gate, FiresOnAnInjectedRegressionAndNamesTheFigure) {
  const auto before = saved({echo(14'400), pingpong(300)});  // moirai.tcp 1.44x
  const GateOptions o{25, {"p50"}};
  const GateResult g = gate({echo(19'000), pingpong(300)}, before, o);  // 1.90x: +32%
  EXPECT_EQ(g.regressions(), 1u);
  const GateLine* tcp = find(g, "moirai.tcp");
  ASSERT_NE(tcp, nullptr);
  EXPECT_EQ(tcp->verdict, Verdict::regression);
  EXPECT_NEAR(tcp->change_pct(), 31.94, 0.01);
  EXPECT_EQ(find(g, "moirai.udp")->verdict, Verdict::ok);
  EXPECT_EQ(find(g, "moirai.submit_to")->verdict, Verdict::ok);

  std::ostringstream err;
  moirai::cli::print_regressions(err, g, o);
  EXPECT_EQ(err.str(),
            "moirai: regression: echo/moirai.tcp p50 ratio 1.44x -> 1.90x (+32%, tolerance 25%)\n");
  std::ostringstream table;
  moirai::cli::print_gate(table, g, o, "saved.json");
  EXPECT_NE(table.str().find("echo/moirai.tcp p50"), std::string::npos) << table.str();
  EXPECT_NE(table.str().find("REGRESSION"), std::string::npos);
  EXPECT_NE(table.str().find("1 regression"), std::string::npos);
}

TEST(Gate, QuietOnNoiseWithinTolerance) {
  const auto before = saved({echo(14'400), pingpong(300)});
  const GateOptions o{25, {"p50", "p99"}};
  // Every ratio moves, up or down, by less than 25%; the absolute times may move by far more, since only the
  // ratio to the in-run baseline counts.
  BenchReport slower_machine = echo(17'000, 24'000);
  for (BenchRow& row : slower_machine.rows) {
    row.p50 *= 3;
    row.p99 *= 3;
  }
  const GateResult g = gate({slower_machine, pingpong(250)}, before, o);
  EXPECT_EQ(g.regressions(), 0u);
  EXPECT_EQ(g.lines.size(), 6u);  // three rows with ratios, p50 and p99
  for (const GateLine& l : g.lines)
    EXPECT_EQ(l.verdict, Verdict::ok) << l.row << " " << l.figure << " " << l.change_pct();
  std::ostringstream err;
  moirai::cli::print_regressions(err, g, o);
  EXPECT_EQ(err.str(), "");
}

TEST(Gate, ToleranceIsTheBoundary) {
  const auto before = saved({pingpong(300)});                                 // 1.5x
  EXPECT_EQ(gate({pingpong(374)}, before, {25, {"p50"}}).regressions(), 0u);  // 1.87x: +24.7%
  EXPECT_EQ(gate({pingpong(376)}, before, {25, {"p50"}}).regressions(), 1u);  // 1.88x: +25.3%
  EXPECT_EQ(gate({pingpong(301)}, before, {0, {"p50"}}).regressions(), 1u);
}

TEST(Gate, SmallRatiosKeepTwoSignificantFigures) {
  EXPECT_EQ(moirai::cli::format_ratio(0.0012345), "0.0012x");
  EXPECT_EQ(moirai::cli::format_ratio(0.25), "0.25x");
  EXPECT_EQ(moirai::cli::format_ratio(0), "0.00x");
}

TEST(Gate, AnImprovementBeyondToleranceIsNotAFailure) {
  const GateResult g = gate({pingpong(200)}, saved({pingpong(300)}), {25, {"p50"}});
  EXPECT_EQ(g.regressions(), 0u);
  EXPECT_EQ(find(g, "moirai.submit_to")->verdict, Verdict::improvement);
}

TEST(Gate, RowsOnOneSideOnlyAreNotCompared) {
  BenchReport before = echo(14'400);
  before.rows.push_back(figures("moirai.unix", 11'000, 16'000));  // gone from this run
  BenchReport now = echo(30'000);
  now.rows.erase(now.rows.begin() + 1);                 // moirai.tcp gone: its regression cannot be judged
  now.rows.push_back(figures("moirai.ipc", 300, 900));  // new in this run
  const GateResult g = gate({now}, saved({before, pingpong(300)}), {25, {"p50"}});
  EXPECT_EQ(g.regressions(), 0u);
  ASSERT_NE(find(g, "moirai.ipc"), nullptr);
  EXPECT_EQ(find(g, "moirai.ipc")->verdict, Verdict::not_compared);
  EXPECT_EQ(find(g, "moirai.ipc")->why, "not in the saved run");
  ASSERT_NE(find(g, "moirai.unix"), nullptr);
  EXPECT_EQ(find(g, "moirai.unix")->verdict, Verdict::not_compared);
  EXPECT_EQ(find(g, "moirai.unix")->why, "not in this run");
  EXPECT_EQ(find(g, "moirai.udp")->verdict, Verdict::ok);
  // pingpong was not run this time: left out, not listed.
  EXPECT_EQ(find(g, "moirai.submit_to"), nullptr);
}

TEST(Gate, ReadsASingleReportAndAnArray) {
  EXPECT_EQ(parse_saved_run(moirai::cli::to_json(pingpong(300)), "one.json").size(), 1u);
  const auto both =
      parse_saved_run(moirai::cli::to_json(std::vector{echo(14'400), pingpong(300)}), "all.json");
  ASSERT_EQ(both.size(), 3u);
  EXPECT_EQ(both[0].bench, "echo");
  EXPECT_EQ(both[0].row, "moirai.tcp");
  EXPECT_DOUBLE_EQ(*both[0].p50, 1.44);
}

void expect_error_naming(const std::string& json, const std::string& what) {
  try {
    parse_saved_run(json, "bench/baseline.json");
    ADD_FAILURE() << "no error for " << json;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bench/baseline.json"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("moirai bench --json >"), std::string::npos) << e.what();
  }
}

TEST(Gate, ABadFileIsAnErrorNamingItAndTheFix) {
  expect_error_naming("[{\"bench\":", "invalid JSON");
  expect_error_naming("{\"rows\":[]}", "\"bench\"");
  expect_error_naming("[{\"bench\":\"echo\",\"results\":[{\"p50\":1}]}]", "\"name\"");
  expect_error_naming("[]", "no row has a ratio");
}

TEST(Gate, AMissingFileIsAnErrorNamingIt) {
  try {
    moirai::cli::load_saved_run("/nonexistent/moirai/baseline.json");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'/nonexistent/moirai/baseline.json': No such file"),
              std::string::npos)
        << e.what();
  }
}

TEST(Gate, ReadsTheFileTheReportDirectoryWrites) {
  char dir[] = "/tmp/moirai-gate-test-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::vector<BenchReport> run = {echo(14'400), pingpong(300)};
  moirai::cli::write_report_dir(dir, run);
  const auto before = moirai::cli::load_saved_run(std::string(dir) + "/all.json");
  EXPECT_EQ(gate(run, before, {0, {"p50", "p99"}}).regressions(), 0u);
  std::filesystem::remove_all(dir);
}

TEST(Gate, OptionsAreChecked) {
  EXPECT_NO_THROW(moirai::cli::check_gate_options({0, {"p50"}}));
  EXPECT_NO_THROW(moirai::cli::check_gate_options({1000, {"p50", "p99"}}));
  EXPECT_THROW(moirai::cli::check_gate_options({-1, {"p50"}}), Error);
  EXPECT_THROW(moirai::cli::check_gate_options({1000.5, {"p50"}}), Error);
  EXPECT_THROW(moirai::cli::check_gate_options({25, {"p75"}}), Error);
  EXPECT_THROW(moirai::cli::check_gate_options({25, {}}), Error);
}

}  // namespace
