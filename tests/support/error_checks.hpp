// Test support for the error tests of every module: a call expected to refuse a bad argument, and the code of
// the exception nested in another. Header-only, test-only.
#pragma once

#include <gtest/gtest.h>

#include <exception>
#include <string>
#include <system_error>

#include "moirai/base/error.hpp"

namespace moirai_test {

// Runs `call`, which must throw a moirai::Error comparing equal to std::errc::invalid_argument whose message
// contains `names` (the argument it refuses).
template <class Call>
void expect_invalid_argument(Call&& call, const std::string& names) {
  try {
    call();
    ADD_FAILURE() << "taken: " << names;
  } catch (const moirai::Error& e) {
    EXPECT_EQ(e.code(), std::errc::invalid_argument) << e.what();
    EXPECT_NE(std::string(e.what()).find(names), std::string::npos) << e.what();
  }
}

// The code of the exception nested in `e` (std::throw_with_nested); empty when nothing is nested, and
// std::errc::state_not_recoverable when what is nested is not a std::system_error.
inline std::error_code nested_code(const std::exception& e) {
  try {
    std::rethrow_if_nested(e);
  } catch (const std::system_error& cause) {
    return cause.code();
  } catch (...) {
    return std::make_error_code(std::errc::state_not_recoverable);
  }
  return {};
}

}  // namespace moirai_test
