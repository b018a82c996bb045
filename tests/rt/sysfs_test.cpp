// rt's reader of cpuset CPU lists (rt/src/sysfs.hpp, internal): moirai::cpu_list::parse into a cpu_set_t,
// bounded by what a cpu_set_t holds (tests/fuzz/cpu_list_fuzz.cpp checks the parser itself on any text).
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

// An empty item, a sign, a half range, a reversed one, a CPU a cpu_set_t cannot hold: no list, and no CPU
// of it is taken.
TEST(SysfsCpuList, RefusesWhatIsNotAList) {
  cpu_set_t set;
  for (const char* text :
       {"1,", ",1", "1,,2", "-0", "0--0", "+1", "1-", "5-3", "1024", "0-1024", "1 -2", "1 2", "x"}) {
    EXPECT_FALSE(detail::parse_cpu_list(text, set)) << '"' << text << '"';
    EXPECT_EQ(CPU_COUNT(&set), 0) << '"' << text << '"';
  }
}

// A file's trailing newline, and blanks around items as the kernel reads them.
TEST(SysfsCpuList, ToleratesBlanksAroundItems) {
  cpu_set_t set;
  ASSERT_TRUE(detail::parse_cpu_list("2-3\n", set));
  EXPECT_EQ(cpus_of(set), (std::vector<int>{2, 3}));
  ASSERT_TRUE(detail::parse_cpu_list(" 1, 4 ", set));
  EXPECT_EQ(cpus_of(set), (std::vector<int>{1, 4}));
}

}  // namespace
}  // namespace moirai::rt
