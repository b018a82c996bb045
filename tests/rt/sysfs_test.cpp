// rt's reader of cpuset CPU lists (rt/src/sysfs.hpp, internal): the kernel's syntax only, as the other CPU
// list parsers take it (tests/fuzz/cpu_list_fuzz.cpp compares them on any text).
#include <gtest/gtest.h>

#include <sched.h>

#include <string>
#include <vector>

#include "../../rt/src/sysfs.hpp"

namespace moirai::rt {
namespace {

std::vector<int> cpus_of(const cpu_set_t& set) {
  std::vector<int> cpus;
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &set)) cpus.push_back(c);
  return cpus;
}

TEST(SysfsCpuList, ReadsTheKernelsForm) {
  cpu_set_t set;
  ASSERT_TRUE(detail::parse_cpu_list("0-3,5,8-9", set));
  EXPECT_EQ(cpus_of(set), (std::vector<int>{0, 1, 2, 3, 5, 8, 9}));
  EXPECT_EQ(detail::format_cpu_list(set), "0-3,5,8-9");
  ASSERT_TRUE(detail::parse_cpu_list("", set));
  EXPECT_TRUE(cpus_of(set).empty());
}

// Found by the fuzzer: "1," was read as CPU 1 and "-0" or "0--0" as CPU 0, where the core and numa parsers
// refuse them.
TEST(SysfsCpuList, RefusesWhatIsNotAList) {
  cpu_set_t set;
  for (const char* text : {"1,", ",1", "1,,2", "-0", "0--0", "+1", "1-", "5-3", "1024", "0-1024", "1 ", "x"})
    EXPECT_FALSE(detail::parse_cpu_list(text, set)) << '"' << text << '"';
}

}  // namespace
}  // namespace moirai::rt
