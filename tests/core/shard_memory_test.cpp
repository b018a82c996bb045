// Each shard's memory is mapped on its own NUMA node at start (frames, task records, message slots, io
// buffers), and Runtime::memory() reports what was obtained; asked-for properties the host refuses degrade
// with a warning instead of failing the start.
#include <gtest/gtest.h>
#include <sys/capability.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <system_error>
#include <vector>

#include "../support/child_process.hpp"

#include "core_test_support.hpp"
#include "moirai/core/detail/frame_allocator.hpp"
#include "moirai/core/runtime.hpp"
#include "moirai/core/spawn.hpp"
#include "moirai/core/submit.hpp"
#include "moirai/core/timer.hpp"
#include "moirai/numa/memory_policy.hpp"
#include "moirai/numa/topology.hpp"

namespace {

using moirai::Task;
using moirai_test::error_message;
using moirai_test::one_shard;
using moirai_test::two_shards;

TEST(ShardMemory, FramesAndIoBuffersLiveOnTheShardsNode) {
  moirai::RuntimeOptions o = one_shard();
  o.memory_per_shard = 2u << 20;
  o.io_buffer_size = 1500;  // not a multiple of 16: the pool rounds it
  o.io_buffer_count = 64;
  moirai::Runtime rt(o);
  int frame_node = -2;
  int buffer_node = -2;
  int shard_node = -2;
  rt.run([&]() -> Task<void> {
    moirai::Shard& s = moirai::this_shard();
    shard_node = s.node();
    void* frame = moirai::detail::frame_allocate(256);
    frame_node = moirai::numa::node_of_address(frame);
    moirai::detail::frame_deallocate(frame);
    if (s.io_buffers() == nullptr) co_return;
    void* buffer = s.io_buffers()->allocate();
    if (buffer == nullptr) co_return;
    buffer_node = moirai::numa::node_of_address(buffer);
    s.io_buffers()->deallocate(buffer);
  });
  const int expected = moirai::numa::Topology::system().node_of_cpu(0);
  EXPECT_EQ(shard_node, expected < 0 ? 0 : expected);
  EXPECT_EQ(frame_node, shard_node);
  EXPECT_EQ(buffer_node, shard_node);

  const moirai::ShardMemory m = rt.memory(0);
  EXPECT_EQ(m.cpu, 0);
  EXPECT_EQ(m.node, shard_node);
  EXPECT_GE(m.frame_bytes, o.memory_per_shard);
  EXPECT_GE(m.message_bytes, o.queue_capacity * 64u);  // one incoming ring per shard (here: itself)
  EXPECT_GE(m.io_buffer_bytes, 64u * 1504u);
  EXPECT_EQ(m.bound, moirai::numa::Topology::system().numa_available());
  EXPECT_TRUE(m.prefaulted);
  EXPECT_FALSE(m.locked);
  EXPECT_TRUE(m.warning.empty()) << m.warning;
}

TEST(ShardMemory, NoIoBuffersWhenTheCountIsZero) {
  moirai::RuntimeOptions o = one_shard();
  o.io_buffer_count = 0;
  moirai::Runtime rt(o);
  bool none = false;
  rt.run([&]() -> Task<void> {
    none = moirai::this_shard().io_buffers() == nullptr;
    co_return;
  });
  EXPECT_TRUE(none);
  EXPECT_EQ(rt.memory(0).io_buffer_bytes, 0u);
}

TEST(ShardMemory, LockedWhenAskedAndAllowed) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (CAP_IPC_LOCK) to lock memory beyond RLIMIT_MEMLOCK";
  moirai::RuntimeOptions o = one_shard();
  o.lock_memory = true;
  moirai::Runtime rt(o);
  rt.run([]() -> Task<void> { co_return; });
  EXPECT_TRUE(rt.memory(0).locked);
  EXPECT_TRUE(rt.memory(0).warning.empty()) << rt.memory(0).warning;
}

// Without CAP_IPC_LOCK and with a small RLIMIT_MEMLOCK the lock is refused: the runtime starts anyway, runs
// tasks, reports the memory as unlocked and says why. Runs in a death-test child; the exit code is the
// verdict.
// The child runs as the unprivileged user `nobody`: the kernel counts the pages io_uring pins against
// RLIMIT_MEMLOCK per user, so as root it would share the count with every other root process (parallel
// tests' rings), and its own ring could find the 64 KiB already taken.
[[noreturn]] void run_with_lock_refused() {
  const rlimit small{64 << 10, 64 << 10};
  if (setrlimit(RLIMIT_MEMLOCK, &small) != 0) std::_Exit(11);
  if (getuid() == 0) {
    if (setresgid(65534, 65534, 65534) != 0 || setresuid(65534, 65534, 65534) != 0) std::_Exit(10);
  } else {
    cap_t caps = cap_get_proc();
    const cap_value_t lock[] = {CAP_IPC_LOCK};
    cap_set_flag(caps, CAP_EFFECTIVE, 1, lock, CAP_CLEAR);
    cap_set_flag(caps, CAP_PERMITTED, 1, lock, CAP_CLEAR);
    if (cap_set_proc(caps) != 0) std::_Exit(10);
    cap_free(caps);
  }
  moirai::RuntimeOptions o = one_shard();
  o.lock_memory = true;
  moirai::Runtime rt(o);
  int ran = 0;
  rt.run([&]() -> Task<void> { ran = co_await moirai::spawn([]() -> Task<int> { co_return 7; }).join(); });
  const moirai::ShardMemory m = rt.memory(0);
  if (ran != 7) std::_Exit(12);
  if (m.locked) std::_Exit(13);
  if (m.warning.find("not locked") == std::string::npos) std::_Exit(14);
  if (m.warning.find("RLIMIT_MEMLOCK") == std::string::npos) std::_Exit(15);
  std::_Exit(0);
}

TEST(ShardMemoryDeathTest, LockRefusedRunsUnlockedAndSaysWhy) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  // It says so on stderr too, once, with the limit and the fix.
  EXPECT_EXIT(run_with_lock_refused(), ::testing::ExitedWithCode(0),
              "moirai: shard 0 \\(cpu 0\\): memory not locked: .*RLIMIT_MEMLOCK.*raise it");
}

TEST(ShardMemory, HugePagesAskedAreObtainedOrExplained) {
  moirai::RuntimeOptions o = one_shard();
  o.huge_pages = true;
  moirai::Runtime rt(o);
  rt.run([]() -> Task<void> { co_return; });
  const moirai::ShardMemory m = rt.memory(0);
  if (m.pages == moirai::numa::PageKind::normal) {
    EXPECT_NE(m.warning.find("huge pages"), std::string::npos) << m.warning;
  } else {
    EXPECT_TRUE(m.warning.empty()) << m.warning;
  }
}

TEST(ShardMemory, BadSizesAreRefusedWithTheirName) {
  moirai::RuntimeOptions o = one_shard();
  o.memory_per_shard = 0;
  EXPECT_NE(
      error_message([&] { moirai::Runtime rt(o); }, moirai::Errc::invalid_argument).find("memory_per_shard"),
      std::string::npos);
  o = one_shard();
  o.io_buffer_size = 0;
  EXPECT_NE(
      error_message([&] { moirai::Runtime rt(o); }, moirai::Errc::invalid_argument).find("io_buffer_size"),
      std::string::npos);
}

TEST(ShardMemory, MoreMemoryThanTheNodeHasFailsTheStartNamingTheNode) {
  moirai::RuntimeOptions o = one_shard();
  const auto* node = moirai::numa::Topology::system().node(0);
  ASSERT_NE(node, nullptr);
  o.memory_per_shard = static_cast<std::size_t>(node->memory_bytes) * 4;
  const std::string what = error_message([&] { moirai::Runtime(o).run([]() -> Task<void> { co_return; }); },
                                         moirai::Errc::setup_failed);
  EXPECT_NE(what.find("node 0"), std::string::npos) << what;
}

TEST(ShardMemory, ReportOfAShardThatDoesNotExistIsAnError) {
  moirai::Runtime rt(one_shard());
  EXPECT_NE(error_message([&] { (void)rt.memory(5); }, moirai::Errc::no_such_shard).find("memory(5)"),
            std::string::npos);
}

// The io buffer pool runs out as nullptr, never as a crash or a block: every buffer handed out stays valid,
// and one freed (here on another shard: it travels home) can be taken again.
TEST(ShardMemory, IoBuffersRunOutAsNullptrAndOneFreedElsewhereComesBack) {
  moirai::RuntimeOptions o = two_shards();
  o.io_buffer_count = 8;
  moirai::Runtime rt(o);
  int handed_out = 0;
  bool refused_when_out = false;
  bool came_back = false;
  rt.run([&]() -> Task<void> {
    moirai::numa::NodePool& pool = *moirai::this_shard().io_buffers();
    std::vector<void*> held;
    while (void* b = pool.allocate()) {
      held.push_back(b);
      if (held.size() > 64) break;  // a pool that never runs out fails below
    }
    handed_out = static_cast<int>(held.size());
    refused_when_out = pool.allocate() == nullptr;
    void* given = held.back();
    held.pop_back();
    co_await moirai::submit_to(1, [&pool, given] { pool.deallocate(given); });
    for (int i = 0; i < 100 && !came_back; ++i) {  // the remote free arrives with the owner's next take-back
      if (void* b = pool.allocate()) {
        held.push_back(b);
        came_back = true;
      } else {
        co_await moirai::sleep_for(std::chrono::microseconds(100));
      }
    }
    for (void* b : held)
      pool.deallocate(b);
  });
  EXPECT_EQ(handed_out, 8);
  EXPECT_TRUE(refused_when_out);
  EXPECT_TRUE(came_back);
}

// Frame memory grows by frame_chunk_bytes while thousands of tasks are parked at once, and every one ends.
TEST(ShardMemory, FrameMemoryGrowsByChunksUnderThousandsOfParkedTasks) {
  moirai::RuntimeOptions o = one_shard();
  o.memory_per_shard = 64u << 10;
  o.frame_chunk_bytes = 64u << 10;
  o.stall_budget = std::chrono::nanoseconds(0);
  moirai::Runtime rt(o);
  std::size_t mapped_at_start = 0;
  std::size_t mapped_at_peak = 0;
  int ended = 0;
  rt.run([&]() -> Task<void> {
    mapped_at_start = moirai::detail::this_frame_allocator()->bytes_mapped();
    std::vector<moirai::TaskHandle<int>> parked;
    for (int i = 0; i < 5000; ++i)
      parked.push_back(moirai::spawn([]() -> Task<int> {
        co_await moirai::sleep_for(std::chrono::milliseconds(1));
        co_return 1;
      }()));
    mapped_at_peak = moirai::detail::this_frame_allocator()->bytes_mapped();
    for (auto& h : parked)
      ended += co_await h.join();
  });
  EXPECT_EQ(ended, 5000);
  EXPECT_GT(mapped_at_peak, mapped_at_start);
}

// When the kernel refuses more frame memory (here RLIMIT_AS, in a forked child), spawn throws a
// std::system_error naming the mapping and the fix at the call site; the tasks already running are untouched
// and end, and the shard goes on spawning once memory is free again.
int spawn_until_the_kernel_refuses() {
  moirai::RuntimeOptions o = one_shard();
  o.memory_per_shard = 64u << 10;
  o.frame_chunk_bytes = 1u << 20;
  o.stall_budget = std::chrono::nanoseconds(0);
  int verdict = 0;
  try {
    moirai::Runtime rt(o);
    rt.run([&]() -> Task<void> {
      std::vector<moirai::TaskHandle<int>> parked;
      parked.reserve(1u << 20);  // no vector growth on the way: only frames ask for memory
      rlimit as{};
      getrlimit(RLIMIT_AS, &as);
      std::string refusal;
      {
        // A ceiling a little above what is mapped now: the next few frame chunks are refused.
        std::FILE* f = std::fopen("/proc/self/statm", "r");
        unsigned long pages = 0;
        if (f == nullptr || std::fscanf(f, "%lu", &pages) != 1) verdict = 20;
        if (f != nullptr) std::fclose(f);
        const rlimit ceiling{pages * 4096ul + (8ul << 20), as.rlim_max};
        if (setrlimit(RLIMIT_AS, &ceiling) != 0) verdict = 21;
      }
      while (verdict == 0 && refusal.empty() && parked.size() < parked.capacity()) {
        try {
          parked.push_back(moirai::spawn([]() -> Task<int> {
            co_await moirai::sleep_for(std::chrono::milliseconds(1));
            co_return 1;
          }()));
        } catch (const std::system_error& e) {
          refusal = e.what();
        }
      }
      setrlimit(RLIMIT_AS, &as);
      std::fprintf(stderr, "child: %zu tasks parked, then: %s\n", parked.size(), refusal.c_str());
      if (refusal.empty()) verdict = 22;
      if (verdict == 0 && refusal.find("ulimit -v") == std::string::npos) verdict = 23;  // names the fix
      int ended = 0;
      for (auto& h : parked)
        ended += co_await h.join();
      if (verdict == 0 && ended != static_cast<int>(parked.size())) verdict = 24;
      parked.clear();
      if (verdict == 0 && co_await moirai::spawn([]() -> Task<int> { co_return 7; }()).join() != 7)
        verdict = 25;
    });
  } catch (const std::exception& e) {
    std::fprintf(stderr, "child: %s\n", e.what());
    return 26;
  }
  return verdict;
}

TEST(ShardMemory, FrameMemoryTheKernelRefusesIsAnErrorAtSpawnAndTheShardGoesOn) {
#if defined(MOIRAI_SANITIZED)
  GTEST_SKIP() << "sanitizer runtimes reserve terabytes of address space: RLIMIT_AS cannot be used";
#endif
  const moirai_test::ChildOutcome child = moirai_test::run_in_child(spawn_until_the_kernel_refuses, true);
  ASSERT_TRUE(child.exited) << child.describe();
  EXPECT_EQ(child.status, 0) << child.output;
}

}  // namespace
