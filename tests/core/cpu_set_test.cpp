#include "moirai/core/cpu_set.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sched.h>

#include <algorithm>
#include <string>
#include <vector>

#include "moirai/core/error.hpp"

namespace {

using moirai::CpuFacts;
using moirai::Errc;
using moirai::Error;
using ::testing::HasSubstr;

// Runs `f`, expects it to throw moirai::Error with `code`, and returns the message for further checks.
template <typename F>
std::string error_message(F&& f, Errc code) {
  try {
    f();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "no moirai::Error was thrown";
  return {};
}

std::string parse_error(std::string_view text) {
  return error_message([&] { moirai::parse_cpu_list(text); }, Errc::invalid_cpu_set);
}

std::string resolve_error(const std::vector<int>& requested, const CpuFacts& facts) {
  return error_message([&] { moirai::resolve_shard_cpus(requested, facts); }, Errc::invalid_cpu_set);
}

// A four-CPU machine with CPU 2 offline, and this process started under `taskset -c 0-1`.
CpuFacts four_cpu_facts() {
  CpuFacts facts;
  facts.configured = 4;
  facts.online = {0, 1, 3};
  facts.allowed = {0, 1};
  return facts;
}

// Restores the test thread's affinity mask when a pinning test ends, however it ends, so later tests in the
// same process are not confined to one CPU.
class AffinityGuard {
 public:
  AffinityGuard() : saved_(moirai::current_thread_affinity()) {}
  ~AffinityGuard() { moirai::set_current_thread_affinity(saved_); }
  AffinityGuard(const AffinityGuard&) = delete;
  AffinityGuard& operator=(const AffinityGuard&) = delete;
  const std::vector<int>& saved() const noexcept { return saved_; }

 private:
  std::vector<int> saved_;
};

TEST(CpuList, ParsesSinglesAndRanges) {
  EXPECT_EQ(moirai::parse_cpu_list("0"), (std::vector<int>{0}));
  EXPECT_EQ(moirai::parse_cpu_list("0-3,5,8-9"), (std::vector<int>{0, 1, 2, 3, 5, 8, 9}));
  EXPECT_EQ(moirai::parse_cpu_list("7-7"), (std::vector<int>{7}));
  EXPECT_EQ(moirai::parse_cpu_list("1023"), (std::vector<int>{1023}));
}

TEST(CpuList, ToleratesWhitespaceAroundItems) {
  // /sys files end with a newline; people type spaces after commas.
  EXPECT_EQ(moirai::parse_cpu_list("0-1\n"), (std::vector<int>{0, 1}));
  EXPECT_EQ(moirai::parse_cpu_list(" 0-2 ,\t5 "), (std::vector<int>{0, 1, 2, 5}));
}

TEST(CpuList, RejectsBlanksInsideARange) {
  // As the kernel does: a range is one word.
  const std::string message = parse_error("0, 1 - 3");
  EXPECT_THAT(message, HasSubstr("\"1 - 3\" has blanks inside its range"));
  EXPECT_THAT(message, HasSubstr("(\"1-3\")"));
  EXPECT_THAT(parse_error("1 -3"), HasSubstr("\"1 -3\" has blanks"));
  EXPECT_THAT(parse_error("1-\t3"), HasSubstr("has blanks"));
}

TEST(CpuList, SortsAndRemovesDuplicates) {
  EXPECT_EQ(moirai::parse_cpu_list("5,0-2,1,2-3,5"), (std::vector<int>{0, 1, 2, 3, 5}));
}

TEST(CpuList, RejectsEmptyText) {
  EXPECT_THAT(parse_error(""), HasSubstr("empty"));
  EXPECT_THAT(parse_error("  \n"), HasSubstr("empty"));
}

TEST(CpuList, RejectsNonNumbersNamingTheItem) {
  const std::string message = parse_error("0,abc");
  EXPECT_THAT(message, HasSubstr("\"abc\""));
  EXPECT_THAT(message, HasSubstr("not a CPU number"));
  // Every parse error teaches the syntax.
  EXPECT_THAT(message, HasSubstr("\"0-3,5,8-9\""));

  EXPECT_THAT(parse_error("0-x"), HasSubstr("\"0-x\""));
  EXPECT_THAT(parse_error("1 2"), HasSubstr("\"1 2\""));
  EXPECT_THAT(parse_error("0x3"), HasSubstr("\"0x3\""));
  EXPECT_THAT(parse_error("+3"), HasSubstr("\"+3\""));
  EXPECT_THAT(parse_error("1-2-3"), HasSubstr("\"1-2-3\""));
  EXPECT_THAT(parse_error("0-"), HasSubstr("\"0-\""));
}

TEST(CpuList, RejectsReversedRange) {
  const std::string message = parse_error("0,5-3");
  EXPECT_THAT(message, HasSubstr("\"5-3\""));
  EXPECT_THAT(message, HasSubstr("reversed"));
  EXPECT_THAT(message, HasSubstr("\"3-5\""));
}

TEST(CpuList, RejectsNegativeNumbers) {
  EXPECT_THAT(parse_error("-1"), HasSubstr("\"-1\" has a negative"));
  EXPECT_THAT(parse_error("2,-1-3"), HasSubstr("\"-1-3\" has a negative"));
  EXPECT_THAT(parse_error("3--1"), HasSubstr("\"3--1\" has a negative"));
  // A lone minus sign is no number at all.
  EXPECT_THAT(parse_error("-"), HasSubstr("\"-\" is not a CPU number"));
}

TEST(CpuList, RejectsNumbersACpuSetCannotHold) {
  EXPECT_THAT(parse_error("0,1024"), HasSubstr("\"1024\""));
  EXPECT_THAT(parse_error("0-4096"), HasSubstr("\"0-4096\""));
  // Too many digits for any integer type is still just "too large", not a different error.
  EXPECT_THAT(parse_error("123456789012345678901234567890"), HasSubstr("beyond 1023"));
}

TEST(CpuList, RejectsEmptyItems) {
  EXPECT_THAT(parse_error("0,1,"), HasSubstr("trailing comma"));
  EXPECT_THAT(parse_error("0-3, "), HasSubstr("trailing comma after \"0-3\""));
  EXPECT_THAT(parse_error(",0"), HasSubstr("empty item"));
  EXPECT_THAT(parse_error("0,,1"), HasSubstr("empty item"));
}

TEST(CpuList, FormatsCompactly) {
  EXPECT_EQ(moirai::format_cpu_list({}), "");
  EXPECT_EQ(moirai::format_cpu_list({4}), "4");
  EXPECT_EQ(moirai::format_cpu_list({0, 1, 2, 3, 5}), "0-3,5");
  EXPECT_EQ(moirai::format_cpu_list({0, 1}), "0-1");
  EXPECT_EQ(moirai::format_cpu_list({9, 8, 0, 2, 1, 2}), "0-2,8-9");
}

TEST(CpuList, FormatAndParseRoundTrip) {
  for (const char* text : {"0", "0-3,5", "0-1,3-4,6,8-1023", "1,3,5,7", "1023"}) {
    const std::vector<int> cpus = moirai::parse_cpu_list(text);
    EXPECT_EQ(moirai::format_cpu_list(cpus), text);
    EXPECT_EQ(moirai::parse_cpu_list(moirai::format_cpu_list(cpus)), cpus);
  }
}

TEST(CpuResolve, AcceptsValidCpusSorted) {
  EXPECT_EQ(moirai::resolve_shard_cpus({1, 0}, four_cpu_facts()), (std::vector<int>{0, 1}));
}

TEST(CpuResolve, EmptyRequestMeansTheAffinityMask) {
  CpuFacts facts = four_cpu_facts();
  facts.allowed = {1, 0, 3};
  EXPECT_EQ(moirai::resolve_shard_cpus({}, facts), (std::vector<int>{0, 1, 3}));
}

TEST(CpuResolve, EmptyRequestAndEmptyMaskIsZeroShards) {
  CpuFacts facts = four_cpu_facts();
  facts.allowed.clear();
  EXPECT_THAT(resolve_error({}, facts), HasSubstr("zero shards"));
}

TEST(CpuResolve, RejectsCpusThatDoNotExist) {
  const std::string message = resolve_error({0, 4, 7}, four_cpu_facts());
  EXPECT_THAT(message, HasSubstr("CPUs 4,7 do not exist"));
  EXPECT_THAT(message, HasSubstr("this machine has 4 CPUs, numbered 0-3"));
  EXPECT_THAT(message, HasSubstr("Fix:"));

  EXPECT_THAT(resolve_error({-1}, four_cpu_facts()), HasSubstr("CPU -1 does not exist"));
  EXPECT_THAT(resolve_error({5000}, four_cpu_facts()), HasSubstr("CPU 5000 does not exist"));
}

TEST(CpuResolve, RejectsOfflineCpusListingTheOnlineOnes) {
  const std::string message = resolve_error({0, 2}, four_cpu_facts());
  EXPECT_THAT(message, HasSubstr("CPU 2 is offline"));
  EXPECT_THAT(message, HasSubstr("the online CPUs are 0-1,3"));
  EXPECT_THAT(message, HasSubstr("/sys/devices/system/cpu/cpu2/online"));
}

TEST(CpuResolve, RejectsCpusOutsideTheAffinityMask) {
  const std::string message = resolve_error({1, 3}, four_cpu_facts());
  EXPECT_THAT(message, HasSubstr("CPU 3 is outside"));
  EXPECT_THAT(message, HasSubstr("affinity mask, which is 0-1"));
  EXPECT_THAT(message, HasSubstr("taskset"));
  EXPECT_THAT(message, HasSubstr("Fix:"));
}

TEST(CpuResolve, RejectsTwoShardsOnOneCpu) {
  const std::string message = resolve_error({0, 1, 0}, four_cpu_facts());
  EXPECT_THAT(message, HasSubstr("CPU 0 is requested more than once"));
  EXPECT_THAT(message, HasSubstr("two shards on one CPU"));
  EXPECT_THAT(resolve_error({1, 0, 1, 0, 1}, four_cpu_facts()), HasSubstr("CPUs 0-1 are requested"));
}

TEST(CpuFacts, DescribesThisMachine) {
  const CpuFacts facts = CpuFacts::current();
  ASSERT_GE(facts.configured, 1);
  ASSERT_FALSE(facts.online.empty());
  ASSERT_FALSE(facts.allowed.empty());
  EXPECT_LT(facts.online.back(), facts.configured);
  // The kernel only lets a thread run on online CPUs, so the mask is within them.
  for (int cpu : facts.allowed) {
    EXPECT_TRUE(std::binary_search(facts.online.begin(), facts.online.end(), cpu)) << "CPU " << cpu;
  }
  EXPECT_EQ(moirai::resolve_shard_cpus({}, facts), facts.allowed);
}

TEST(CpuPin, PinsToTheFirstAndLastAllowedCpu) {
  AffinityGuard guard;
  // CPU 0 unless this test itself runs under a taskset that excludes it; the last CPU makes the kernel
  // migrate the thread on a machine with more than one CPU.
  for (int cpu : {guard.saved().front(), guard.saved().back()}) {
    moirai::pin_current_thread(cpu);
    EXPECT_EQ(sched_getcpu(), cpu);
    EXPECT_EQ(moirai::current_thread_affinity(), (std::vector<int>{cpu}));
  }
}

TEST(CpuPin, RestoresTheSavedMask) {
  const std::vector<int> saved = moirai::current_thread_affinity();
  moirai::pin_current_thread(saved.front());
  moirai::set_current_thread_affinity(saved);
  EXPECT_EQ(moirai::current_thread_affinity(), saved);
}

TEST(CpuPin, RefusesACpuThatCannotExist) {
  AffinityGuard guard;
  const std::string message = error_message([] { moirai::pin_current_thread(4000); }, Errc::setup_failed);
  EXPECT_THAT(message, HasSubstr("CPU 4000"));
  EXPECT_THAT(message, HasSubstr("Invalid argument"));
  // A number a CPU set can hold, but no CPU of this machine: the kernel refuses it, and the message says why.
  if (moirai::CpuFacts::current().configured <= 1000) {
    EXPECT_THAT(error_message([] { moirai::pin_current_thread(1000); }, Errc::setup_failed),
                HasSubstr("CPU 1000: Invalid argument. The CPU does not exist"));
  }
  EXPECT_EQ(moirai::current_thread_affinity(), guard.saved());
}

TEST(CpuPin, RefusesBadMasks) {
  AffinityGuard guard;
  EXPECT_THAT(error_message([] { moirai::set_current_thread_affinity({}); }, Errc::invalid_cpu_set),
              HasSubstr("empty"));
  EXPECT_THAT(error_message(
                  [] {
                    moirai::set_current_thread_affinity({0, 1024});
                  },
                  Errc::invalid_cpu_set),
              HasSubstr("CPU 1024"));
  EXPECT_EQ(moirai::current_thread_affinity(), guard.saved());
}

}  // namespace
