// rt's errors: RtError carries the errno of the failed call (or EINVAL for a bad argument) in rt's own
// category, is a moirai::Error, and compares equal to the std::errc of that errno. A refusal rt reports
// without throwing keeps the kernel's errno as a code beside its words. A caller that wraps one keeps its
// code nested.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <system_error>

#include "../support/child_process.hpp"
#include "../support/error_checks.hpp"
#include "moirai/base/error.hpp"
#include "moirai/rt/capability_drop.hpp"
#include "moirai/rt/constraints.hpp"
#include "moirai/rt/error.hpp"
#include "moirai/rt/exclusive_cpuset.hpp"
#include "moirai/rt/thread_policy.hpp"

namespace {

using moirai::Error;
using moirai::rt::rt_category;
using moirai::rt::RtError;
using moirai_test::expect_invalid_argument;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

TEST(RtErrors, ACodeIsAnErrnoInRtCategoryAndComparesWithStdErrc) {
  EXPECT_STREQ(rt_category().name(), "moirai.rt");
  const std::error_code busy(EBUSY, rt_category());
  EXPECT_EQ(busy, std::errc::device_or_resource_busy);
  EXPECT_EQ(busy.message(), std::strerror(EBUSY));
  EXPECT_EQ(std::error_code(ESRCH, rt_category()), std::errc::no_such_process);
}

TEST(RtErrors, AnRtErrorIsCaughtAsAnErrorWithItsErrno) {
  try {
    throw RtError(EPERM, "sched_setattr: not permitted; grant CAP_SYS_NICE");
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), std::errc::operation_not_permitted);
    EXPECT_EQ(&e.code().category(), &rt_category());
  }
}

TEST(RtErrors, BadArgumentsToRealCallsAreInvalidArgument) {
  expect_invalid_argument([] { (void)moirai::rt::RtConstraints::deadline(-1ms); }, "deadline");
  expect_invalid_argument([] { (void)moirai::rt::parse_capability("cap_fly"); }, "cap_fly");
  expect_invalid_argument([] { (void)moirai::rt::ThreadPolicy::parse("fifo:often"); }, "often");
  expect_invalid_argument(
      [] {
        moirai::rt::ThreadPolicy{moirai::rt::ThreadPolicy::Kind::fifo, 0, 1000}.validate();
      },
      "1000");
}

TEST(RtErrors, AFailedCallGivesItsErrno) {
  try {
    (void)moirai::rt::read_thread_policy(INT_MAX);
    ADD_FAILURE() << "thread INT_MAX exists";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), std::errc::no_such_process) << e.what();
  }
  try {
    (void)moirai::rt::ExclusiveCpuset::adopt(4095);
    ADD_FAILURE() << "a cpuset for CPU 4095 was prepared";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), std::errc::no_such_file_or_directory) << e.what();
    EXPECT_THAT(e.what(), HasSubstr("scripts/rt-cpuset setup 4095"));
  }
  EXPECT_NO_THROW(moirai::rt::release_deadline_routes()) << "nothing to undo";
}

// apply_thread_policy reports a refusal in its result, not by throwing: the words and the kernel's errno. In
// a forked child without CAP_SYS_NICE and with RLIMIT_NICE 0, so that a nice of -20 is refused.
int refused_policy() {
  const rlimit no_nice{0, 0};
  if (setrlimit(RLIMIT_NICE, &no_nice) != 0) return 10;
  try {
    moirai::rt::drop_capabilities(0);
  } catch (const Error&) {  // nothing to drop where capabilities cannot be changed
  }
  const moirai::rt::ApplyResult r = moirai::rt::apply_thread_policy(moirai::rt::ThreadPolicy::other(-20));
  std::fprintf(stderr, "child: %s (%s)\n", r.warning.c_str(), r.error.message().c_str());
  if (r.ok) return 11;
  if (&r.error.category() != &rt_category()) return 12;
  if (r.error != std::errc::operation_not_permitted && r.error != std::errc::permission_denied) return 13;
  return r.warning.empty() ? 14 : 0;
}

TEST(RtErrors, ARefusedPolicyKeepsTheKernelsErrno) {
  const moirai_test::ChildOutcome child = moirai_test::run_in_child(refused_policy, true);
  ASSERT_TRUE(child.exited) << child.describe();
  EXPECT_EQ(child.status, 0) << child.output;
}

// What a module above rt does with an RtError: its own Error, the RtError nested with its code.
TEST(RtErrors, AnRtErrorNestedByACallerKeepsItsCode) {
  try {
    try {
      (void)moirai::rt::parse_capability("cap_fly");
    } catch (const RtError& e) {
      std::throw_with_nested(
          Error(std::make_error_code(std::errc::io_error), std::string("above rt: ") + e.what()));
    }
    ADD_FAILURE() << "cap_fly was taken";
  } catch (const Error& outer) {
    try {
      std::rethrow_if_nested(outer);
      ADD_FAILURE() << "nothing nested";
    } catch (const RtError& cause) {
      EXPECT_EQ(cause.code(), std::errc::invalid_argument);
    }
  }
}

}  // namespace
