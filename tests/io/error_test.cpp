// io's errors: RingError carries the errno of the failed call in io's own category, is a moirai::Error, and
// compares equal to the std::errc of that errno; a bad argument is std::errc::invalid_argument. A caller that
// wraps one keeps its code nested.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <exception>
#include <string>
#include <system_error>

#include "../support/error_checks.hpp"
#include "moirai/base/error.hpp"
#include "moirai/io/buffer_ring.hpp"
#include "moirai/io/error.hpp"
#include "moirai/io/ring.hpp"

namespace {

using moirai::Error;
using moirai::io::io_category;
using moirai::io::Ring;
using moirai::io::RingError;
using moirai_test::expect_invalid_argument;
using ::testing::HasSubstr;

TEST(IoErrors, ACodeIsAnErrnoInIoCategoryAndComparesWithStdErrc) {
  EXPECT_STREQ(io_category().name(), "moirai.io");
  const std::error_code busy(EBUSY, io_category());
  EXPECT_EQ(busy, std::errc::device_or_resource_busy);
  EXPECT_EQ(busy.message(), std::strerror(EBUSY));
  EXPECT_NE(busy, std::error_code(EBUSY, std::generic_category()))
      << "another category: says who reported it";
  EXPECT_EQ(std::error_code(ETIMEDOUT, io_category()), std::errc::timed_out);
  EXPECT_EQ(std::error_code(ENOMEM, io_category()), std::errc::not_enough_memory);
}

TEST(IoErrors, ARingErrorIsCaughtAsAnErrorWithItsErrno) {
  try {
    throw RingError(ENOSYS, "io_uring cannot be used: no io_uring here");
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), std::errc::function_not_supported);
    EXPECT_EQ(&e.code().category(), &io_category());
    EXPECT_THAT(e.what(), HasSubstr("no io_uring here"));
  }
}

TEST(IoErrors, BadArgumentsToRealCallsAreInvalidArgument) {
  expect_invalid_argument([] { Ring ring(moirai::io::RingOptions{.sq_entries = 65536}); }, "32768");
  Ring ring;
  expect_invalid_argument([&] { moirai::io::BufferRing buffers(ring, {.count = 3, .buffer_size = 64}); },
                          "power of two");
  expect_invalid_argument([&] { (void)ring.enable_busy_poll(std::chrono::microseconds(0)); }, "1 us to 1 s");
}

// The refusal is a code; its words come from describe_busy_poll_error, which names the cause.
TEST(IoErrors, ABusyPollRefusalIsACodeTheCallerPutsInWords) {
  EXPECT_THAT(moirai::io::describe_busy_poll_error({EINVAL, io_category()}), HasSubstr("6.13"));
  EXPECT_THAT(moirai::io::describe_busy_poll_error({EOPNOTSUPP, io_category()}),
              HasSubstr("CONFIG_NET_RX_BUSY_POLL"));
  EXPECT_THAT(moirai::io::describe_busy_poll_error({EPERM, io_category()}), HasSubstr(std::strerror(EPERM)));
}

// What a module above io does with a RingError: its own Error, the RingError nested with its code.
TEST(IoErrors, ARingErrorNestedByACallerKeepsItsCode) {
  try {
    try {
      Ring ring(moirai::io::RingOptions{.sq_entries = 1, .cq_entries = 0, .register_ring_fd = false});
      moirai::io::BufferRing buffers(ring, {.count = 0, .buffer_size = 64});
    } catch (const RingError& e) {
      std::throw_with_nested(
          Error(std::make_error_code(std::errc::io_error), std::string("above io: ") + e.what()));
    }
    ADD_FAILURE() << "0 buffers were taken";
  } catch (const Error& outer) {
    EXPECT_EQ(outer.code(), std::errc::io_error);
    try {
      std::rethrow_if_nested(outer);
      ADD_FAILURE() << "nothing nested";
    } catch (const RingError& cause) {
      EXPECT_EQ(cause.code(), std::errc::invalid_argument);
      EXPECT_EQ(&cause.code().category(), &io_category());
    }
  }
}

}  // namespace
