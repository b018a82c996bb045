// numa's errors: NumaError carries an errno in numa's own category, is a moirai::Error, and compares equal to
// the std::errc of that errno (a bad argument: invalid_argument; a node that does not exist:
// no_such_device). A caller that wraps one keeps its code nested.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <exception>
#include <string>
#include <system_error>

#include "../support/error_checks.hpp"
#include "moirai/base/error.hpp"
#include "moirai/numa/error.hpp"
#include "moirai/numa/node_memory.hpp"
#include "moirai/numa/topology.hpp"

namespace {

using moirai::Error;
using moirai::numa::numa_category;
using moirai::numa::NumaError;
using moirai_test::expect_invalid_argument;
using ::testing::HasSubstr;

TEST(NumaErrors, ACodeIsAnErrnoInNumaCategoryAndComparesWithStdErrc) {
  EXPECT_STREQ(numa_category().name(), "moirai.numa");
  const std::error_code no_memory(ENOMEM, numa_category());
  EXPECT_EQ(no_memory, std::errc::not_enough_memory);
  EXPECT_EQ(no_memory.message(), std::strerror(ENOMEM));
  EXPECT_EQ(std::error_code(EPERM, numa_category()), std::errc::operation_not_permitted);
  EXPECT_NE(std::error_code(EPERM, numa_category()), std::errc::permission_denied);
}

TEST(NumaErrors, ANumaErrorIsCaughtAsAnErrorWithItsErrno) {
  try {
    throw NumaError(ENOMEM, "numa: node 0 could not supply 1 GiB; free memory or ask for less");
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), std::errc::not_enough_memory);
    EXPECT_EQ(&e.code().category(), &numa_category());
  }
}

TEST(NumaErrors, BadArgumentsToRealCallsCompareWithStdErrc) {
  const moirai::numa::Topology& topo = moirai::numa::Topology::system();
  const int node = topo.nodes().front().id;
  expect_invalid_argument([&] { (void)moirai::numa::allocate_on_node(node, 0); }, "at least one byte");
  try {
    (void)moirai::numa::allocate_on_node(4095, 4096);
    ADD_FAILURE() << "node 4095 was used";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), std::errc::no_such_device) << e.what();
    EXPECT_THAT(e.what(), HasSubstr("moirai topo"));
  }
  try {
    (void)topo.nodes_by_distance(4095);
    ADD_FAILURE() << "node 4095 has distances";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), std::errc::no_such_device) << e.what();
  }
}

// What a module above numa does with a NumaError: its own Error, the NumaError nested with its code.
TEST(NumaErrors, ANumaErrorNestedByACallerKeepsItsCode) {
  try {
    try {
      (void)moirai::numa::allocate_on_node(4095, 4096);
    } catch (const NumaError& e) {
      std::throw_with_nested(
          Error(std::make_error_code(std::errc::io_error), std::string("above numa: ") + e.what()));
    }
    ADD_FAILURE() << "node 4095 was used";
  } catch (const Error& outer) {
    EXPECT_THAT(outer.what(), HasSubstr("node 4095"));
    try {
      std::rethrow_if_nested(outer);
      ADD_FAILURE() << "nothing nested";
    } catch (const NumaError& cause) {
      EXPECT_EQ(cause.code(), std::errc::no_such_device);
    }
  }
}

}  // namespace
