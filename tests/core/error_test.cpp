// core's errors: each Errc and the std::errc it compares equal to, Errors thrown by real calls caught as
// moirai::Error, and the cause of a failure in another module (rt, numa) nested in core's Error, code and
// all: in the Runtime constructor and on a shard's thread alike.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <exception>
#include <string>
#include <system_error>

#include "../support/child_process.hpp"
#include "../support/error_checks.hpp"
#include "core_test_support.hpp"
#include "moirai/base/error.hpp"
#include "moirai/core/error.hpp"
#include "moirai/core/runtime.hpp"
#include "moirai/core/shard.hpp"
#include "moirai/core/spawn.hpp"
#include "moirai/core/timer.hpp"
#include "moirai/numa/error.hpp"
#include "moirai/rt/error.hpp"

namespace {

using moirai::Errc;
using moirai::Error;
using moirai_test::nested_code;
using moirai_test::one_shard;
using namespace std::chrono_literals;

TEST(CoreErrors, EachCodeMapsToItsStdErrc) {
  EXPECT_EQ(make_error_code(Errc::invalid_cpu_set), std::errc::invalid_argument);
  EXPECT_EQ(make_error_code(Errc::no_such_shard), std::errc::invalid_argument);
  EXPECT_EQ(make_error_code(Errc::invalid_argument), std::errc::invalid_argument);
  EXPECT_EQ(make_error_code(Errc::cancelled), std::errc::operation_canceled);
  EXPECT_EQ(make_error_code(Errc::timed_out), std::errc::timed_out);
  EXPECT_EQ(make_error_code(Errc::admission_refused), std::errc::device_or_resource_busy);
  // The codes no std::errc fits stay in their own category.
  for (const Errc e :
       {Errc::not_running, Errc::stopped, Errc::not_on_shard, Errc::setup_failed, Errc::gate_closed}) {
    const std::error_condition c = make_error_code(e).default_error_condition();
    EXPECT_EQ(&c.category(), &moirai::error_category()) << make_error_code(e).message();
    EXPECT_NE(make_error_code(e), std::errc::invalid_argument);
  }
  EXPECT_STREQ(moirai::error_category().name(), "moirai");
}

TEST(CoreErrors, TaskCancelledAndTimedOutAreErrorsWithTheirStdErrc) {
  try {
    throw moirai::TimedOut();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), std::errc::timed_out);
    EXPECT_EQ(e.code(), Errc::timed_out);
  }
  try {
    throw moirai::TaskCancelled();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), std::errc::operation_canceled);
  }
  // Error(Errc, what): what() is the text, then the code's message.
  const Error e(Errc::gate_closed, "Gate::enter: closed");
  EXPECT_EQ(std::string(e.what()), "Gate::enter: closed: gate closed");
}

TEST(CoreErrors, BadArgumentsToRealCallsCompareEqualToInvalidArgument) {
  moirai::RuntimeOptions o = one_shard();
  o.ring_entries = 0;
  try {
    moirai::Runtime rt(o);
    ADD_FAILURE() << "ring_entries 0 was taken";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), std::errc::invalid_argument) << e.what();
  }
  o = one_shard();
  o.cpus = {-1};
  try {
    moirai::Runtime rt(o);
    ADD_FAILURE() << "CPU -1 was taken";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::invalid_cpu_set) << e.what();
    EXPECT_EQ(e.code(), std::errc::invalid_argument) << e.what();
  }
  try {
    moirai::this_shard();
    ADD_FAILURE() << "this_shard() off a shard";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::not_on_shard) << e.what();
  }
}

TEST(CoreErrors, ATimeoutOnAShardComparesEqualToTimedOut) {
  moirai::Runtime rt(one_shard());
  std::error_code seen;
  rt.run([&]() -> moirai::Task<void> {
    try {
      co_await moirai::with_timeout(1ms, []() -> moirai::Task<void> { co_await moirai::sleep_for(1s); }());
    } catch (const Error& e) {
      seen = e.code();
    }
  });
  EXPECT_EQ(seen, std::errc::timed_out);
}

// An option rt refuses keeps rt's code under core's invalid_argument.
TEST(CoreErrors, AnOptionAnotherModuleRefusesKeepsItsCodeNested) {
  moirai::RuntimeOptions o = one_shard();
  o.thread_policy.kind = moirai::rt::ThreadPolicy::Kind::fifo;
  o.thread_policy.priority = 1000;
  try {
    moirai::Runtime rt(o);
    ADD_FAILURE() << "priority 1000 was taken";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::invalid_argument) << e.what();
    EXPECT_NE(std::string(e.what()).find("RuntimeOptions::thread_policy"), std::string::npos) << e.what();
    const std::error_code cause = nested_code(e);
    EXPECT_EQ(&cause.category(), &moirai::rt::rt_category()) << cause.message();
    EXPECT_EQ(cause, std::errc::invalid_argument);
  }
  o = one_shard();
  o.keep_capabilities = {"cap_no_such_thing"};
  try {
    moirai::Runtime rt(o);
    ADD_FAILURE() << "an unknown capability was taken";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::invalid_argument) << e.what();
    EXPECT_EQ(&nested_code(e).category(), &moirai::rt::rt_category());
  }
}

// In a forked child, under an RLIMIT_AS a little above what is mapped: shard memory the kernel refuses fails
// the Runtime constructor (its message rings) and a shard's own set-up (its frame memory) the same way, as
// Error(setup_failed) naming the shard, with numa's NumaError nested. Exit status 0 when both do.
enum SetupChild {
  kSetupOk = 0,
  kNoLimit = 10,
  kConstructed = 11,  // the constructor mapped 64 MiB of rings under the limit
  kConstructorWrongError = 12,
  kStarted = 13,
  kStartWrongError = 14,
  kOtherException = 15,
};

bool ceiling_above_mapped(std::size_t room) {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  unsigned long pages = 0;
  const bool read = f != nullptr && std::fscanf(f, "%lu", &pages) == 1;
  if (f != nullptr) std::fclose(f);
  rlimit as{};
  getrlimit(RLIMIT_AS, &as);
  const rlimit ceiling{pages * 4096ul + room, as.rlim_max};
  return read && setrlimit(RLIMIT_AS, &ceiling) == 0;
}

void lift_ceiling() {
  rlimit as{};
  getrlimit(RLIMIT_AS, &as);
  as.rlim_cur = as.rlim_max;
  setrlimit(RLIMIT_AS, &as);
}

bool set_up_failure_with_numa_cause(const Error& e) {
  std::fprintf(stderr, "child: %s\n", e.what());
  const std::error_code cause = nested_code(e);
  return e.code() == Errc::setup_failed &&
         std::string(e.what()).find("shard 0 (CPU 0)") != std::string::npos &&
         &cause.category() == &moirai::numa::numa_category();
}

int refused_shard_memory() {
  try {
    moirai::RuntimeOptions big_rings = one_shard();
    big_rings.queue_capacity = 1u << 20;  // 64 MiB of message slots, mapped by the constructor
    if (!ceiling_above_mapped(16u << 20)) return kNoLimit;
    try {
      moirai::Runtime rt(big_rings);
      return kConstructed;
    } catch (const Error& e) {
      lift_ceiling();
      if (!set_up_failure_with_numa_cause(e)) return kConstructorWrongError;
    }
    moirai::RuntimeOptions big_frames = one_shard();
    big_frames.memory_per_shard = 256u << 20;  // mapped by the shard's thread as it sets up
    moirai::Runtime rt(big_frames);
    if (!ceiling_above_mapped(32u << 20)) return kNoLimit;
    try {
      rt.start();
      return kStarted;
    } catch (const Error& e) {
      lift_ceiling();
      if (!set_up_failure_with_numa_cause(e)) return kStartWrongError;
    }
    return kSetupOk;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "child: %s\n", e.what());
    return kOtherException;
  }
}

TEST(CoreErrors, ShardMemoryRefusedIsSetupFailedWithTheNumaCauseInTheConstructorAndOnTheShard) {
#if defined(MOIRAI_SANITIZED)
  GTEST_SKIP() << "sanitizer runtimes reserve terabytes of address space: RLIMIT_AS cannot be used";
#endif
  const moirai_test::ChildOutcome child = moirai_test::run_in_child(refused_shard_memory, true);
  ASSERT_TRUE(child.exited) << child.describe();
  EXPECT_EQ(child.status, kSetupOk) << child.output;
}

}  // namespace
