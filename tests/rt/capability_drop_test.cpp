// drop_capabilities: in a forked child (capabilities are per thread and cannot come back, so the test process
// keeps its own), the calling thread ends with exactly the kept set, another thread keeps its own, the
// bounding set follows, and a thread with nothing to drop is left alone.
#include <gtest/gtest.h>

#include <sys/capability.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <future>
#include <string>
#include <thread>

#include "moirai/rt/capability_drop.hpp"
#include "moirai/rt/error.hpp"

namespace moirai::rt {
namespace {

// Runs `body` in a forked child and returns its exit status (0: every check in it held; else the number of
// the check that failed).
template <class Body>
int in_child(Body body) {
  const pid_t pid = fork();
  if (pid == 0) {
    int rc = 99;
    try {
      rc = body();
    } catch (...) {
      rc = 98;
    }
    _exit(rc);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 97;
}

// The "CapEff:" (or other) line of /proc/thread-self/status, as a mask.
CapabilityMask status_mask(const char* field) {
  std::ifstream in("/proc/thread-self/status");
  std::string line;
  const std::string key = std::string(field) + ":";
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) == 0) return std::stoull(line.substr(key.size()), nullptr, 16);
  }
  return ~CapabilityMask{0};
}

bool is_privileged() {
  return (ThreadCapabilities::current().effective & capability_bit(CAP_SETPCAP)) != 0;
}

TEST(CapabilityNames, ParseAcceptsTheKernelsNamesInAnyCase) {
  EXPECT_EQ(parse_capability("CAP_NET_BIND_SERVICE"), CAP_NET_BIND_SERVICE);
  EXPECT_EQ(parse_capability("cap_sys_nice"), CAP_SYS_NICE);
  EXPECT_EQ(parse_capability("ipc_lock"), CAP_IPC_LOCK);
  try {
    parse_capability("CAP_FLY");
    FAIL() << "an unknown name was accepted";
  } catch (const RtError& e) {
    EXPECT_NE(std::string(e.what()).find("CAP_FLY"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("capabilities(7)"), std::string::npos) << e.what();
  }
  EXPECT_THROW(parse_capability(""), RtError);
  EXPECT_THROW(parse_capability("cap_"), RtError);
}

TEST(CapabilityNames, NamesListEveryBit) {
  EXPECT_EQ(capability_names(0), "none");
  EXPECT_EQ(capability_names(capability_bit(CAP_IPC_LOCK) | capability_bit(CAP_SYS_NICE)),
            "cap_ipc_lock,cap_sys_nice");
}

TEST(ThreadCapabilities, CurrentAgreesWithProc) {
  const ThreadCapabilities t = ThreadCapabilities::current();
  EXPECT_EQ(t.effective, status_mask("CapEff"));
  EXPECT_EQ(t.permitted, status_mask("CapPrm"));
  EXPECT_EQ(t.inheritable, status_mask("CapInh"));
  EXPECT_EQ(t.ambient, status_mask("CapAmb"));
  EXPECT_EQ(t.bounding, status_mask("CapBnd"));
}

TEST(DropCapabilities, LeavesExactlyTheKeptSetOnTheCallingThreadOnly) {
  if (!is_privileged()) GTEST_SKIP() << "needs CAP_SETPCAP (run as root) to have capabilities to drop";
  const CapabilityMask keep = capability_bit(CAP_NET_BIND_SERVICE) | capability_bit(CAP_SYS_NICE);
  const int rc = in_child([keep] {
    const CapabilityMask before = ThreadCapabilities::current().permitted;
    // A second thread, started before the drop, keeps its own sets: capabilities are per thread.
    std::promise<void> dropped;
    std::promise<CapabilityMask> other_eff;
    std::thread other([&] {
      dropped.get_future().wait();
      other_eff.set_value(status_mask("CapEff"));
    });
    const CapabilityDropResult r = drop_capabilities(keep);
    dropped.set_value();
    const CapabilityMask other_after = other_eff.get_future().get();
    other.join();
    if (status_mask("CapEff") != keep) return 1;
    if (status_mask("CapPrm") != keep) return 2;
    if (status_mask("CapInh") != 0 || status_mask("CapAmb") != 0) return 3;
    if (status_mask("CapBnd") != keep || !r.bounding_dropped) return 4;
    if (r.dropped != (before & ~keep)) return 5;
    if (other_after != before) return 6;
    // Gone for good: raising a dropped one is refused.
    cap_t caps = cap_get_proc();
    const cap_value_t admin = CAP_SYS_ADMIN;
    cap_set_flag(caps, CAP_EFFECTIVE, 1, &admin, CAP_SET);
    const bool regained = cap_set_proc(caps) == 0;
    cap_free(caps);
    return regained ? 7 : 0;
  });
  EXPECT_EQ(rc, 0) << "check " << rc << " failed in the child";
}

TEST(DropCapabilities, NothingToDropIsANoOpNotAnError) {
  const int rc = in_child([] {
    drop_capabilities(0);  // as root: everything goes; unprivileged: nothing to do already
    const ThreadCapabilities after_first = ThreadCapabilities::current();
    if (after_first.held() != 0) return 1;
    const CapabilityDropResult again = drop_capabilities(capability_bit(CAP_SYS_NICE));
    if (again.dropped != 0 || again.bounding_dropped) return 2;
    const ThreadCapabilities after = ThreadCapabilities::current();
    if (after.held() != 0) return 3;  // a kept capability is never gained
    if (after.bounding != after_first.bounding) return 4;
    return 0;
  });
  EXPECT_EQ(rc, 0) << "check " << rc << " failed in the child";
}

}  // namespace
}  // namespace moirai::rt
