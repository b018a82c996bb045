#include "moirai/numa/current_node.hpp"

#include <gtest/gtest.h>
#include <sched.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <thread>

#include "moirai/numa/topology.hpp"

extern char** environ;

namespace moirai::numa {
namespace {

bool pin_to(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return sched_setaffinity(0, sizeof set, &set) == 0;
}

// Runs `body` on a fresh thread, so that the affinity changes do not leak into other tests.
template <typename F>
void on_own_thread(F body) {
  std::thread(body).join();
}

bool cpus_0_and_1_allowed() {
  cpu_set_t set;
  CPU_ZERO(&set);
  return sched_getaffinity(0, sizeof set, &set) == 0 && CPU_ISSET(0, &set) && CPU_ISSET(1, &set);
}

void expect_follows_migration() {
  for (int round = 0; round < 3; ++round) {
    for (int cpu : {0, 1}) {
      ASSERT_TRUE(pin_to(cpu));
      EXPECT_EQ(current_cpu(), cpu);
      EXPECT_EQ(sched_getcpu(), cpu);
      EXPECT_EQ(current_numa_node(), Topology::system().node_of_cpu(cpu));
    }
  }
}

TEST(CurrentNode, AnswersAreInRange) {
  const int cpu = current_cpu();
  EXPECT_GE(cpu, 0);
  EXPECT_LT(cpu, sysconf(_SC_NPROCESSORS_CONF));
  EXPECT_NE(Topology::system().node(current_numa_node()), nullptr);
}

TEST(CurrentNode, UsesRseqWhenGlibcRegisteredIt) {
  // glibc 2.35+ registers rseq for every thread unless told not to.
  const char* tunables = std::getenv("GLIBC_TUNABLES");
  if (tunables != nullptr && std::string(tunables).find("rseq=0") != std::string::npos) GTEST_SKIP();
  EXPECT_NE(cpu_source(), CpuSource::getcpu) << to_string(cpu_source());
}

TEST(CurrentNode, FollowsAMigration) {
  if (!cpus_0_and_1_allowed()) GTEST_SKIP() << "needs CPUs 0 and 1 in the affinity mask";
  on_own_thread(expect_follows_migration);
}

TEST(CurrentNode, GetcpuFallbackFollowsAMigration) {
  if (!cpus_0_and_1_allowed()) GTEST_SKIP() << "needs CPUs 0 and 1 in the affinity mask";
  detail::force_getcpu_for_testing(true);
  EXPECT_EQ(cpu_source(), CpuSource::getcpu);
  on_own_thread(expect_follows_migration);
  detail::force_getcpu_for_testing(false);
  EXPECT_NE(cpu_source(), CpuSource::getcpu);
}

// Run by RseqDisabledByGlibcTunable in a child whose glibc did not register rseq.
TEST(CurrentNodeChild, WithoutRseq) {
  if (std::getenv("MOIRAI_NUMA_CHILD") == nullptr)
    GTEST_SKIP() << "run as a child by RseqDisabledByGlibcTunable";
  EXPECT_EQ(cpu_source(), CpuSource::getcpu);
  if (cpus_0_and_1_allowed()) on_own_thread(expect_follows_migration);
}

TEST(CurrentNode, RseqDisabledByGlibcTunable) {
  std::string exe(4096, '\0');
  const ssize_t n = readlink("/proc/self/exe", exe.data(), exe.size());
  ASSERT_GT(n, 0);
  exe.resize(static_cast<std::size_t>(n));
  std::string filter = "--gtest_filter=CurrentNodeChild.WithoutRseq";
  char* argv[] = {exe.data(), filter.data(), nullptr};
  std::vector<std::string> env_strings = {"GLIBC_TUNABLES=glibc.pthread.rseq=0", "MOIRAI_NUMA_CHILD=1"};
  std::vector<char*> envp;
  for (auto& s : env_strings)
    envp.push_back(s.data());
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry(*e);
    if (entry.rfind("GLIBC_TUNABLES=", 0) != 0 && entry.rfind("GTEST_", 0) != 0) envp.push_back(*e);
  }
  envp.push_back(nullptr);
  pid_t pid = 0;
  ASSERT_EQ(posix_spawn(&pid, exe.c_str(), nullptr, nullptr, argv, envp.data()), 0);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "the child's WithoutRseq test failed (its output is above)";
}

}  // namespace
}  // namespace moirai::numa
