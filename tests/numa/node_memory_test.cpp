#include "moirai/numa/node_memory.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <numaif.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <climits>
#include <cstdint>
#include <fstream>

#include "moirai/numa/error.hpp"
#include "moirai/numa/memory_policy.hpp"
#include "moirai/numa/topology.hpp"
#include "numa_test_support.hpp"

namespace moirai::numa {
namespace {

using testing::expect_numa_error;
using testing::FakeSysfs;
using ::testing::HasSubstr;
using testing::mapping_count;

constexpr std::size_t kPage = 4096;

// Where every page of the range is, per the kernel (move_pages with no target: query only).
std::vector<int> page_nodes(const NodeMemory& m) {
  std::vector<void*> pages;
  for (std::size_t off = 0; off < m.size(); off += kPage)
    pages.push_back(static_cast<char*>(m.data()) + off);
  std::vector<int> status(pages.size(), -1);
  EXPECT_EQ(move_pages(0, pages.size(), pages.data(), nullptr, status.data(), 0), 0);
  return status;
}

long nr_hugepages() {
  std::ifstream in("/proc/sys/vm/nr_hugepages");
  long n = 0;
  in >> n;
  return n;
}

TEST(NodeMemory, PlacedOnNodeZeroAndPrefaulted) {
  NodeMemory m = allocate_on_node(0, 1 << 20);
  ASSERT_TRUE(m);
  EXPECT_EQ(m.size(), 1u << 20);
  EXPECT_EQ(m.node(), 0);
  EXPECT_TRUE(m.prefaulted());
  EXPECT_FALSE(m.locked());
  EXPECT_EQ(m.pages(), PageKind::normal);
  EXPECT_EQ(m.bound(), Topology::system().numa_available());
  for (int node : page_nodes(m))
    ASSERT_EQ(node, 0);  // resident (prefaulted) and on node 0
  if (m.bound()) {
    int mode = -1;
    unsigned long mask[16] = {};
    ASSERT_EQ(get_mempolicy(&mode, mask, 1025, m.data(), MPOL_F_ADDR), 0);
    EXPECT_EQ(mode, MPOL_BIND);
    EXPECT_EQ(mask[0], 1ul);
    int node = -1;
    ASSERT_EQ(get_mempolicy(&node, nullptr, 0, m.data(), MPOL_F_NODE | MPOL_F_ADDR), 0);
    EXPECT_EQ(node, 0);
  }
}

TEST(NodeMemory, WithoutPrefaultPagesAppearOnFirstTouch) {
  NodeMemory m = allocate_on_node(0, 3 * kPage + 1, {.prefault = false});
  EXPECT_EQ(m.size(), 4 * kPage);  // rounded up to the page size
  EXPECT_FALSE(m.prefaulted());
  EXPECT_EQ(node_of_address(m.data()), -1);
  static_cast<char*>(m.data())[0] = 1;
  EXPECT_EQ(node_of_address(m.data()), 0);
  EXPECT_EQ(node_of_address(static_cast<char*>(m.data()) + kPage), -1);
}

TEST(NodeMemory, LockedWhenAllowed) {
  NodeMemory m = allocate_on_node(0, 64 * 1024, {.lock = true});
  EXPECT_TRUE(m.locked());
  for (int node : page_nodes(m))
    EXPECT_EQ(node, 0);
}

TEST(NodeMemory, MoveOnlyAndReset) {
  NodeMemory a = allocate_on_node(0, kPage);
  void* p = a.data();
  NodeMemory b = std::move(a);
  EXPECT_FALSE(a);  // NOLINT(bugprone-use-after-move): the moved-from state is part of the contract
  EXPECT_EQ(b.data(), p);
  b.reset();
  EXPECT_FALSE(b);
  errno = 0;
  EXPECT_EQ(msync(p, kPage, MS_ASYNC), -1);  // unmapped
  EXPECT_EQ(errno, ENOMEM);
}

TEST(NodeMemory, BadInputIsRefusedAndNothingLeaks) {
  const std::size_t before = mapping_count();
  EXPECT_EQ(expect_numa_error([] { (void)allocate_on_node(7, kPage); }, "node 7 does not exist"), ENODEV);
  EXPECT_EQ(expect_numa_error([] { (void)allocate_on_node(-1, kPage); }, "node -1 does not exist"), ENODEV);
  EXPECT_EQ(expect_numa_error([] { (void)allocate_on_node(0, 0); }, "allocation of 0 bytes on node 0"),
            EINVAL);
  EXPECT_EQ(expect_numa_error([] { (void)allocate_on_node(0, SIZE_MAX); }, "overflows"), EINVAL);
  EXPECT_EQ(expect_numa_error([] { (void)allocate_on_node(0, std::size_t{1} << 50); }, "which holds"),
            ENOMEM);
  EXPECT_EQ(mapping_count(), before);
}

TEST(NodeMemory, NodeWithoutMemoryIsRefused) {
  FakeSysfs fs;
  FakeSysfs::four_nodes(fs, /*memoryless=*/1);
  const Topology topo = Topology::from_sysfs(fs.root());
  EXPECT_EQ(expect_numa_error([&] { (void)allocate_on_node(topo, 1, kPage); }, "node 1 has no memory"),
            EINVAL);
  // A simulated node with memory is mapped, but not bound: the node need not exist here.
  NodeMemory m = allocate_on_node(topo, 3, kPage);
  EXPECT_TRUE(m);
  EXPECT_EQ(m.node(), 3);
  EXPECT_FALSE(m.bound());
}

TEST(NodeMemory, HugePagesRequiredButNoneReserved) {
  if (nr_hugepages() != 0) GTEST_SKIP() << "this host has huge pages reserved";
  const std::size_t before = mapping_count();
  EXPECT_EQ(expect_numa_error([] { (void)allocate_on_node(0, 4 << 20, {.huge_pages = HugePages::require}); },
                              "sysctl vm.nr_hugepages=N"),
            ENOMEM);
  EXPECT_EQ(mapping_count(), before);
}

// Reserves a few huge pages for the test and gives the host its own count back at the end, pass or fail.
class ReservedHugePages {
 public:
  explicit ReservedHugePages(long pages) : before_(nr_hugepages()) { write(pages); }
  ~ReservedHugePages() { write(before_); }
  ReservedHugePages(const ReservedHugePages&) = delete;
  ReservedHugePages& operator=(const ReservedHugePages&) = delete;

 private:
  static void write(long pages) { std::ofstream("/proc/sys/vm/nr_hugepages") << pages << '\n'; }
  long before_;
};

TEST(NodeMemory, HugeTlbPagesWhenReservedPlacedOnTheNode) {
  if (geteuid() != 0) GTEST_SKIP() << "reserving huge pages needs root";
  if (nr_hugepages() != 0) GTEST_SKIP() << "this host has huge pages reserved already";
  ReservedHugePages reserve(4);
  if (nr_hugepages() < 2) GTEST_SKIP() << "the kernel could not reserve 2 huge pages (fragmented memory)";
  {
    NodeMemory m = allocate_on_node(0, 3 << 20, {.huge_pages = HugePages::require});
    ASSERT_TRUE(m);
    EXPECT_EQ(m.pages(), PageKind::huge_tlb);
    EXPECT_EQ(m.page_size(), std::size_t{2} << 20);
    EXPECT_EQ(m.size(), std::size_t{4} << 20);  // rounded up to whole huge pages
    EXPECT_TRUE(m.prefaulted());
    for (int node : page_nodes(m))
      EXPECT_EQ(node, 0);
  }
  // More than the node has free: refused with the count, before anything is mapped (a fault would SIGBUS).
  const std::size_t before = mapping_count();
  expect_numa_error([] { (void)allocate_on_node(0, 64 << 20, {.huge_pages = HugePages::require}); },
                    "are free there");
  EXPECT_EQ(mapping_count(), before);
  // `prefer` takes transparent huge pages instead.
  NodeMemory m = allocate_on_node(0, 64 << 20, {.huge_pages = HugePages::prefer});
  EXPECT_NE(m.pages(), PageKind::huge_tlb);
}

TEST(NodeMemory, HugePagesPreferredFallBackToTransparentHugePages) {
  if (nr_hugepages() != 0) GTEST_SKIP() << "this host has huge pages reserved";
  NodeMemory m = allocate_on_node(0, 4 << 20, {.huge_pages = HugePages::prefer});
  ASSERT_TRUE(m);
  // HugeTlbPagesWhenReservedPlacedOnTheNode reserves pages for a moment, and ctest -j may run it alongside.
  if (m.pages() == PageKind::huge_tlb && nr_hugepages() != 0)
    GTEST_SKIP() << "another test reserved huge pages while this one mapped";
  std::ifstream thp("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string mode;
  std::getline(thp, mode);
  if (mode.find("[never]") == std::string::npos) {
    EXPECT_EQ(m.pages(), PageKind::transparent_huge);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(m.data()) % (2 << 20), 0u);  // aligned for huge pages
  } else {
    EXPECT_EQ(m.pages(), PageKind::normal);
  }
  for (int node : page_nodes(m))
    EXPECT_EQ(node, 0);
}

// Drops CAP_IPC_LOCK from this process, so that RLIMIT_MEMLOCK applies even to root. Child processes only.
void drop_ipc_lock() {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  if (syscall(SYS_capget, &header, data) != 0) _exit(3);
  data[CAP_IPC_LOCK / 32].effective &= ~(1u << (CAP_IPC_LOCK % 32));
  if (syscall(SYS_capset, &header, data) != 0) _exit(4);
}

// In a child: without CAP_IPC_LOCK and with a 64 KiB RLIMIT_MEMLOCK, a locked 4 MiB allocation must fail with
// a message naming the limit and both fixes, and leave no mapping behind.
[[noreturn]] void lock_refused_child() {
  drop_ipc_lock();
  rlimit lim{};
  lim.rlim_cur = lim.rlim_max = 64 * 1024;
  if (setrlimit(RLIMIT_MEMLOCK, &lim) != 0) _exit(5);
  const std::size_t before = mapping_count();
  try {
    (void)allocate_on_node(0, 4 << 20, {.lock = true});
  } catch (const NumaError& e) {
    const std::string what = e.what();
    const bool named = what.find("RLIMIT_MEMLOCK") != std::string::npos &&
                       what.find("ulimit -l") != std::string::npos &&
                       what.find("CAP_IPC_LOCK") != std::string::npos;
    _exit(named && mapping_count() == before && e.code().value() == ENOMEM ? 0 : 2);
  }
  _exit(1);
}

TEST(NodeMemoryDeathTest, LockRefusedByRlimitMemlockNamesTheFix) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(lock_refused_child(), ::testing::ExitedWithCode(0), "");
}

}  // namespace
}  // namespace moirai::numa
