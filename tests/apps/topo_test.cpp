#include "topo.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <sstream>
#include <string>

#include "../numa/numa_test_support.hpp"
#include "json_reader.hpp"
#include "moirai/numa/topology.hpp"

namespace {

using namespace moirai::cli::json;
using moirai::numa::testing::FakeSysfs;

// Four nodes in a square (see FakeSysfs::four_nodes): 1 GiB each, CPUs 6-7 isolated, 7 nohz_full.
class FakeFourNodeHost : public ::testing::Test {
 protected:
  void SetUp() override { FakeSysfs::four_nodes(fs_); }
  FakeSysfs fs_;
};

std::vector<std::uint64_t> integers(const Json& array) {
  std::vector<std::uint64_t> out;
  for (const Json& v : array.array())
    out.push_back(v.integer());
  return out;
}

TEST_F(FakeFourNodeHost, JsonHasTheDocumentedShape) {
  const auto t = moirai::numa::Topology::from_sysfs(fs_.root());
  const Json j = parse_json(moirai::cli::topo_json(t));
  const JsonArray& nodes = j.at("nodes").array();
  ASSERT_EQ(nodes.size(), 4u);
  for (std::uint64_t id = 0; id < 4; ++id) {
    const Json& n = nodes[id];
    EXPECT_EQ(n.at("id").integer(), id);
    EXPECT_EQ(integers(n.at("cpus")), (std::vector<std::uint64_t>{2 * id, 2 * id + 1}));
    EXPECT_EQ(n.at("memory_bytes").integer(), 1ull << 30);
  }
  EXPECT_EQ(integers(nodes[0].at("distances")), (std::vector<std::uint64_t>{10, 21, 21, 31}));
  EXPECT_EQ(integers(nodes[3].at("distances")), (std::vector<std::uint64_t>{31, 21, 21, 10}));
  EXPECT_EQ(integers(j.at("isolated_cpus")), (std::vector<std::uint64_t>{6, 7}));
  EXPECT_EQ(integers(j.at("nohz_full_cpus")), (std::vector<std::uint64_t>{7}));
}

TEST_F(FakeFourNodeHost, TextNamesEveryNodeTheDistancesAndTheQuietCpus) {
  std::ostringstream out;
  moirai::cli::print_topo(out, moirai::numa::Topology::from_sysfs(fs_.root()));
  const std::string text = out.str();
  EXPECT_NE(text.find("4 NUMA nodes"), std::string::npos) << text;
  EXPECT_NE(text.find("node 0: cpus 0-1, memory 1.0 GiB"), std::string::npos) << text;
  EXPECT_NE(text.find("node 3: cpus 6-7, memory 1.0 GiB"), std::string::npos) << text;
  EXPECT_NE(text.find("     3    31    21    21    10"), std::string::npos) << text;
  EXPECT_NE(text.find("isolated cpus: 6-7"), std::string::npos) << text;
  EXPECT_NE(text.find("nohz_full cpus: 7"), std::string::npos) << text;
}

TEST(Topo, ThisHostHasEveryAllowedCpuOnSomeNode) {
  const auto& t = moirai::numa::Topology::system();
  const Json j = parse_json(moirai::cli::topo_json(t));
  std::size_t cpus = 0;
  for (const Json& n : j.at("nodes").array())
    cpus += n.at("cpus").array().size();
  EXPECT_GE(cpus, 1u);
  EXPECT_EQ(cpus, static_cast<std::size_t>(sysconf(_SC_NPROCESSORS_ONLN)));
}

}  // namespace
