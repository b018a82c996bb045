#include "report_files.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "json_reader.hpp"
#include "moirai/core/error.hpp"

namespace {

namespace fs = std::filesystem;
using moirai::LatencyHistogram;
using moirai::cli::BenchReport;
using moirai::cli::BenchRow;
using moirai::cli::summarize;

BenchRow measured(std::string name, std::uint64_t base) {
  auto h = std::make_unique<LatencyHistogram>();
  for (std::uint64_t i = 0; i < 1000; ++i)
    h->record(base + i % 97);
  return summarize(std::move(name), *h);
}

BenchReport report(std::string bench) {
  BenchReport r;
  r.bench = std::move(bench);
  r.rows.push_back(measured("baseline.x", 100));
  r.rows.push_back(measured("moirai.y", 150));
  BenchRow tput = measured("moirai.y.throughput", 10);
  tput.per_sec = 1e6;
  r.rows.push_back(tput);
  r.note = "how it was measured";
  return r;
}

std::string read(const fs::path& p) {
  std::ifstream in(p);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

class ReportFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    char t[] = "/tmp/moirai-report-test-XXXXXX";
    ASSERT_NE(mkdtemp(t), nullptr);
    dir_ = t;
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(ReportFiles, HgrmFilesOnePerLatencyRow) {
  const auto one = moirai::cli::write_hgrm_files((dir_ / "lat.hgrm").string(), {report("pingpong")});
  EXPECT_EQ(one, (std::vector<std::string>{(dir_ / "lat.baseline.x.hgrm").string(),
                                           (dir_ / "lat.moirai.y.hgrm").string()}));
  EXPECT_EQ(read(dir_ / "lat.moirai.y.hgrm").rfind("# moirai bench pingpong, row moirai.y: values in ns", 0),
            0u);
  // Several benches: the bench's name too.
  const auto two = moirai::cli::write_hgrm_files((dir_ / "all").string(), {report("a"), report("b")});
  ASSERT_EQ(two.size(), 4u);
  EXPECT_EQ(two[3], (dir_ / "all.b.moirai.y.hgrm").string());
  EXPECT_TRUE(fs::exists(two[3]));
}

TEST_F(ReportFiles, PlotIsTheFileForOneBenchAndOnePerBenchForSeveral) {
  EXPECT_EQ(moirai::cli::write_plots((dir_ / "p.svg").string(), {report("a")}),
            std::vector<std::string>{(dir_ / "p.svg").string()});
  EXPECT_EQ(moirai::cli::write_plots((dir_ / "p.svg").string(), {report("a"), report("b")}),
            (std::vector<std::string>{(dir_ / "p.a.svg").string(), (dir_ / "p.b.svg").string()}));
  EXPECT_NE(read(dir_ / "p.b.svg").find("data-name=\"moirai.y\""), std::string::npos);
}

TEST_F(ReportFiles, ReportDirectoryHasEveryFileAndASummary) {
  const moirai::cli::ReportOutputs o{"", "", (dir_ / "new" / "report").string()};
  moirai::cli::prepare_outputs(o);  // creates it, parents included
  std::ostringstream log;
  moirai::cli::write_outputs(o, {report("pingpong"), report("echo")}, log);
  const fs::path d = dir_ / "new" / "report";
  for (const char* f : {"pingpong.json", "pingpong.svg", "pingpong.baseline.x.hgrm", "pingpong.moirai.y.hgrm",
                        "echo.json", "echo.svg", "echo.moirai.y.hgrm", "all.json", "summary.md"})
    EXPECT_TRUE(fs::exists(d / f)) << f;
  EXPECT_FALSE(fs::exists(d / "pingpong.moirai.y.throughput.hgrm"));
  EXPECT_NE(log.str().find("summary.md"), std::string::npos);

  const auto all = moirai::cli::json::parse_json(read(d / "all.json"));
  ASSERT_TRUE(all.is_array());
  EXPECT_EQ(all.array().size(), 2u);
  EXPECT_EQ(moirai::cli::json::parse_json(read(d / "echo.json")).at("bench").string(), "echo");

  const std::string md = read(d / "summary.md");
  EXPECT_NE(md.find("## pingpong"), std::string::npos);
  EXPECT_NE(md.find("## echo"), std::string::npos);
  EXPECT_NE(md.find("![pingpong: latency by percentile](pingpong.svg)"), std::string::npos);
  EXPECT_NE(md.find("[moirai.y](echo.moirai.y.hgrm)"), std::string::npos);
  EXPECT_NE(md.find("| row | p50 (ns) | p99 (ns) | p50/base | p99/base |"), std::string::npos);
  // moirai.y is 150..246 against 100..196: p50 196 against 146, p99 245 against 195.
  EXPECT_NE(md.find("| moirai.y | 196 | 245 | 1.34x | 1.26x |"), std::string::npos) << md;
  EXPECT_NE(md.find("how it was measured"), std::string::npos);
}

TEST_F(ReportFiles, UnwritablePathsAreRefusedBeforeTheBenches) {
  std::ofstream(dir_ / "file") << "x";
  EXPECT_THROW(moirai::cli::prepare_outputs({"", "", (dir_ / "file").string()}), moirai::Error);
  EXPECT_THROW(moirai::cli::prepare_outputs({(dir_ / "none" / "x.hgrm").string(), "", ""}), moirai::Error);
  EXPECT_THROW(moirai::cli::prepare_outputs({"", (dir_ / "none" / "x.svg").string(), ""}), moirai::Error);
  EXPECT_NO_THROW(moirai::cli::prepare_outputs({"x.hgrm", (dir_ / "x.svg").string(), ""}));
  try {
    moirai::cli::prepare_outputs({"", "", (dir_ / "file" / "sub").string()});
    FAIL() << "no error";
  } catch (const moirai::Error& e) {
    EXPECT_NE(std::string(e.what()).find((dir_ / "file" / "sub").string()), std::string::npos) << e.what();
  }
}

}  // namespace
