// ThreadPolicy as text and as values: parse / to_string round trips, every malformed form, and the kernel's
// ranges in validate(). Nothing here touches a thread.
#include <gtest/gtest.h>

#include <string>

#include "moirai/rt/error.hpp"
#include "moirai/rt/thread_policy.hpp"

namespace moirai::rt {
namespace {

using namespace std::chrono_literals;

TEST(ThreadPolicy, ParsesEveryForm) {
  EXPECT_EQ(ThreadPolicy::parse("other"), ThreadPolicy::other());
  EXPECT_EQ(ThreadPolicy::parse("other:-5"), ThreadPolicy::other(-5));
  EXPECT_EQ(ThreadPolicy::parse("other:19"), ThreadPolicy::other(19));
  EXPECT_EQ(ThreadPolicy::parse("fifo:10"), ThreadPolicy::fifo(10));
  EXPECT_EQ(ThreadPolicy::parse("rr:99"), ThreadPolicy::round_robin(99));
  EXPECT_EQ(ThreadPolicy::parse("deadline:100/1000/2000"),
            ThreadPolicy::deadline_policy(100us, 1000us, 2000us));
  EXPECT_EQ(ThreadPolicy::parse("deadline:500us/1ms/1s"), ThreadPolicy::deadline_policy(500us, 1ms, 1s));
  EXPECT_EQ(ThreadPolicy::parse("deadline:1024ns/2048ns/4096ns"),
            ThreadPolicy::deadline_policy(1024ns, 2048ns, 4096ns));
}

TEST(ThreadPolicy, ToStringRoundTrips) {
  const ThreadPolicy policies[] = {
      ThreadPolicy::other(),
      ThreadPolicy::other(-20),
      ThreadPolicy::other(7),
      ThreadPolicy::fifo(1),
      ThreadPolicy::fifo(99),
      ThreadPolicy::round_robin(42),
      ThreadPolicy::deadline_policy(100us, 1ms, 10ms),
      ThreadPolicy::deadline_policy(1024ns, 100'000ns, 1'000'001ns),
  };
  for (const ThreadPolicy& p : policies) {
    EXPECT_EQ(ThreadPolicy::parse(p.to_string()), p) << p.to_string();
  }
  EXPECT_EQ(ThreadPolicy::other().to_string(), "other");
  EXPECT_EQ(ThreadPolicy::other(-3).to_string(), "other:-3");
  EXPECT_EQ(ThreadPolicy::fifo(10).to_string(), "fifo:10");
  EXPECT_EQ(ThreadPolicy::round_robin(5).to_string(), "rr:5");
  EXPECT_EQ(ThreadPolicy::deadline_policy(100us, 1ms, 10ms).to_string(), "deadline:100/1000/10000");
  EXPECT_EQ(ThreadPolicy::deadline_policy(1024ns, 2us, 3us).to_string(), "deadline:1024ns/2000ns/3000ns");
}

TEST(ThreadPolicy, RejectsEveryMalformedForm) {
  // Each bad text, and the part of it the message must quote.
  const std::pair<const char*, const char*> cases[] = {
      {"", "''"},
      {"batch", "'batch'"},
      {"FIFO:10", "'FIFO'"},
      {"fifo", "'fifo'"},
      {"fifo:", "'fifo:'"},
      {"fifo:x", "'x'"},
      {"fifo:10x", "'10x'"},
      {"rr:", "'rr:'"},
      {"rr:1.5", "'1.5'"},
      {"other:", "'other:'"},
      {"other:abc", "'abc'"},
      {"deadline", "'deadline'"},
      {"deadline:1/2", "'1/2'"},
      {"deadline:1/2/3/4", "'1/2/3/4'"},
      {"deadline:a/2/3", "'a'"},
      {"deadline:-1/2/3", "'-1'"},
      {"deadline:1/2ks/3", "'2ks'"},
      {"deadline:1//3", "''"},
      {"deadline:99999999999999999999/1/1", "'99999999999999999999'"},
  };
  for (const auto& [text, part] : cases) {
    try {
      ThreadPolicy::parse(text);
      ADD_FAILURE() << "accepted '" << text << "'";
    } catch (const RtError& e) {
      const std::string what = e.what();
      EXPECT_EQ(e.code(), std::errc::invalid_argument);
      EXPECT_NE(what.find("accepted forms: other, other:NICE, fifo:PRIO, rr:PRIO, deadline:"),
                std::string::npos)
          << what;
      EXPECT_NE(what.find(part), std::string::npos) << text << " -> " << what;
    }
  }
}

void expect_invalid(const ThreadPolicy& p, const char* part) {
  try {
    p.validate();
    ADD_FAILURE() << "valid: " << p.to_string();
  } catch (const RtError& e) {
    EXPECT_EQ(e.code(), std::errc::invalid_argument);
    EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
  }
}

TEST(ThreadPolicy, ValidateChecksTheKernelRanges) {
  EXPECT_NO_THROW(ThreadPolicy::other(-20).validate());
  EXPECT_NO_THROW(ThreadPolicy::other(19).validate());
  EXPECT_NO_THROW(ThreadPolicy::fifo(1).validate());
  EXPECT_NO_THROW(ThreadPolicy::round_robin(99).validate());
  EXPECT_NO_THROW(ThreadPolicy::deadline_policy(1024ns, 1ms, 1ms).validate());
  expect_invalid(ThreadPolicy::other(20), "nice 20 is outside -20..19");
  expect_invalid(ThreadPolicy::other(-21), "nice -21 is outside -20..19");
  expect_invalid(ThreadPolicy::fifo(0), "priority 0 is outside 1..99");
  expect_invalid(ThreadPolicy::fifo(100), "priority 100 is outside 1..99");
  expect_invalid(ThreadPolicy::round_robin(-1), "priority -1 is outside 1..99");
  expect_invalid(ThreadPolicy::deadline_policy(1000ns, 1ms, 1ms),
                 "runtime 1000 ns is below the kernel's minimum");
  expect_invalid(ThreadPolicy::deadline_policy(2ms, 1ms, 10ms), "runtime <= deadline <= period");
  expect_invalid(ThreadPolicy::deadline_policy(1ms, 20ms, 10ms), "runtime <= deadline <= period");
  expect_invalid(ThreadPolicy::deadline_policy(1ms, 10s, 10s), "sched_deadline_period_max_us");
  expect_invalid(ThreadPolicy::deadline_policy(10us, 50us, 50us), "sched_deadline_period_min_us");
  ThreadPolicy mixed = ThreadPolicy::fifo(10);
  mixed.runtime = 1ms;
  expect_invalid(mixed, "for the deadline policy only");
  mixed = ThreadPolicy::other();
  mixed.priority = 5;
  expect_invalid(mixed, "for fifo and rr only");
}

TEST(ThreadPolicy, KindAndRouteNames) {
  EXPECT_STREQ(to_string(ThreadPolicy::Kind::other), "other");
  EXPECT_STREQ(to_string(ThreadPolicy::Kind::fifo), "fifo");
  EXPECT_STREQ(to_string(ThreadPolicy::Kind::round_robin), "round-robin");
  EXPECT_STREQ(to_string(ThreadPolicy::Kind::deadline), "deadline");
  EXPECT_STREQ(to_string(DeadlineRoute::admission_control_off), "admission-control-off");
  EXPECT_STREQ(to_string(DeadlineRoute::exclusive_cpuset), "exclusive-cpuset");
}

}  // namespace
}  // namespace moirai::rt
