// Memory on one node. allocate_on_node checks the request, plans its pages (hugetlb, transparent huge or
// base), maps them, binds them to the node before their first touch, then locks or prefaults them.
#include "moirai/numa/node_memory.hpp"

#include <numaif.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "moirai/numa/error.hpp"
#include "moirai/numa/topology.hpp"
#include "node_mask.hpp"

namespace moirai::numa {
namespace {

constexpr std::size_t kHugePageSize = 2 * 1024 * 1024;  // the default hugetlb and THP size on x86-64
// No MAP_POPULATE: it would fault the pages in before mbind, i.e. on whatever node the thread runs on.
constexpr int kMapFlags = MAP_PRIVATE | MAP_ANONYMOUS;

std::size_t base_page_size() noexcept {
  return static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
}

long read_long(const char* path) {
  std::ifstream in(path);
  long value = -1;
  if (!(in >> value)) return -1;
  return value;
}

bool thp_enabled() {
  std::ifstream in("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string text;
  std::getline(in, text);
  return !text.empty() && text.find("[never]") == std::string::npos;
}

std::string mib(std::size_t bytes) {
  return std::to_string(bytes / (1024 * 1024)) + " MiB";
}

// Owns a mapping until released, so that every error path below unmaps what it mapped.
struct MappingGuard {
  void* addr = MAP_FAILED;
  std::size_t len = 0;
  ~MappingGuard() {
    if (addr != MAP_FAILED) ::munmap(addr, len);
  }
  void* release() noexcept { return std::exchange(addr, MAP_FAILED); }
};

std::string memlock_limit() {
  rlimit lim{};
  if (getrlimit(RLIMIT_MEMLOCK, &lim) != 0) return "unknown";
  if (lim.rlim_cur == RLIM_INFINITY) return "unlimited";
  return std::to_string(lim.rlim_cur / 1024) + " KiB";
}

// Fault every page in now: MADV_POPULATE_WRITE (Linux 5.14+) in one call, else a write to each page.
// Returns 0 or an errno (ENOMEM when the node cannot hold the range).
int prefault(void* addr, std::size_t len, std::size_t page) noexcept {
  if (::madvise(addr, len, MADV_POPULATE_WRITE) == 0) return 0;
  const int err = errno;
  if (err != EINVAL) return err;  // EINVAL: an older kernel without the advice; anything else is real
  auto* p = static_cast<volatile char*>(addr);
  for (std::size_t off = 0; off < len; off += page)
    p[off] = 0;
  return 0;
}

// The node to allocate on, once the request is known to fit it.
const NodeInfo& checked_node(const Topology& topo, int node, std::size_t bytes, const std::string& where) {
  const NodeInfo* info = topo.node(node);
  if (info == nullptr) {
    throw NumaError(ENODEV, "numa: " + where + " does not exist (" + topo.node_list() +
                                "); pick a node from `moirai topo`");
  }
  if (info->memory_bytes == 0) {
    throw NumaError(EINVAL,
                    "numa: " + where +
                        " has no memory (a CPU-only node); allocate on the nearest node with memory (see "
                        "Topology::nodes_by_distance)");
  }
  if (bytes == 0) {
    throw NumaError(EINVAL, "numa: allocation of 0 bytes on " + where + "; ask for at least one byte");
  }
  return *info;
}

// The pages a request is mapped with, decided before anything is mapped.
struct PagePlan {
  bool hugetlb = false;  // MAP_HUGETLB: enough reserved huge pages are free on the node
  std::size_t len = 0;   // the request rounded up to the page size
  long reserved = 0;     // /proc/sys/vm/nr_hugepages, for the message when the kernel refuses the mapping
};

// Free huge pages on `node`: its own share of the pool, or the whole pool's on a simulated topology (whose
// nodes are not this host's) and where the node does not say.
long free_huge_pages(const Topology& topo, int node) {
  const std::string node_free =
      "/sys/devices/system/node/node" + std::to_string(node) + "/hugepages/hugepages-2048kB/free_hugepages";
  const long free_here = topo.simulated() ? -1 : read_long(node_free.c_str());
  return free_here >= 0 ? free_here : read_long("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages");
}

PagePlan plan_pages(const Topology& topo, const NodeInfo& info, std::size_t bytes, HugePages huge_pages,
                    const std::string& where) {
  PagePlan plan;
  const bool try_hugetlb = huge_pages != HugePages::off;
  plan.reserved = try_hugetlb ? read_long("/proc/sys/vm/nr_hugepages") : 0;
  if (huge_pages == HugePages::require && plan.reserved <= 0) {
    throw NumaError(ENOMEM, "numa: huge pages required on " + where +
                                " but none are reserved (/proc/sys/vm/nr_hugepages is 0); reserve some with "
                                "`sysctl vm.nr_hugepages=N` (N pages of 2 MiB), or use HugePages::prefer");
  }
  // mmap(MAP_HUGETLB) reserves huge pages from the whole pool, but a page bound to this node must come from
  // this node's share: faulting it in with none free there is a SIGBUS, not an error. So count the node's
  // free huge pages first.
  const long free_here = try_hugetlb && plan.reserved > 0 ? free_huge_pages(topo, info.id) : 0;
  const long huge_needed = static_cast<long>((bytes + kHugePageSize - 1) / kHugePageSize);
  if (huge_pages == HugePages::require && free_here < huge_needed) {
    throw NumaError(
        ENOMEM, "numa: " + std::to_string(huge_needed) + " huge pages required on " + where + " but only " +
                    std::to_string(free_here < 0 ? 0 : free_here) +
                    " are free there; reserve more with `sysctl vm.nr_hugepages=N` (or per node in "
                    "/sys/devices/system/node/nodeN/hugepages), or use HugePages::prefer");
  }
  plan.hugetlb = try_hugetlb && plan.reserved > 0 && free_here >= huge_needed;
  const std::size_t page = plan.hugetlb ? kHugePageSize : base_page_size();
  if (bytes > SIZE_MAX - (page - 1)) {
    throw NumaError(EINVAL, "numa: allocation of " + std::to_string(bytes) + " bytes on " + where +
                                " overflows when rounded up to the page size; ask for less");
  }
  plan.len = (bytes + page - 1) / page * page;
  if (plan.len > info.memory_bytes) {
    throw NumaError(ENOMEM, "numa: " + std::to_string(bytes) + " bytes requested on " + where +
                                ", which holds " + mib(info.memory_bytes) +
                                " in all; ask for less or spread over several nodes");
  }
  return plan;
}

// Base pages, over-mapped by one huge page and trimmed for THP so that the range starts on a 2 MiB boundary:
// only aligned 2 MiB extents can be huge pages.
PageKind map_base_pages(MappingGuard& map, std::size_t bytes, HugePages huge_pages,
                        const std::string& where) {
  const std::size_t map_len = (bytes + base_page_size() - 1) / base_page_size() * base_page_size();
  const bool want_thp = huge_pages == HugePages::prefer && map_len >= kHugePageSize && thp_enabled();
  const std::size_t extra = want_thp ? kHugePageSize : 0;
  void* raw = ::mmap(nullptr, map_len + extra, PROT_READ | PROT_WRITE, kMapFlags, -1, 0);
  if (raw == MAP_FAILED) {
    const int err = errno;
    throw NumaError(err, "numa: mmap of " + std::to_string(map_len) + " bytes for " + where +
                             " failed: " + std::strerror(err) + "; check ulimit -v and vm.overcommit_memory");
  }
  auto start = reinterpret_cast<std::uintptr_t>(raw);
  if (want_thp) {
    const std::uintptr_t aligned = (start + kHugePageSize - 1) & ~(kHugePageSize - 1);
    if (aligned > start) ::munmap(raw, aligned - start);
    const std::uintptr_t tail = start + map_len + extra - (aligned + map_len);
    if (tail > 0) ::munmap(reinterpret_cast<void*>(aligned + map_len), tail);
    start = aligned;
  }
  map.addr = reinterpret_cast<void*>(start);
  map.len = map_len;
  if (want_thp && ::madvise(map.addr, map_len, MADV_HUGEPAGE) == 0) return PageKind::transparent_huge;
  return PageKind::normal;
}

// Maps the plan's pages into `map`: hugetlb when planned and the kernel gives them, else base pages.
PageKind map_pages(MappingGuard& map, const PagePlan& plan, std::size_t bytes, HugePages huge_pages,
                   const std::string& where) {
  if (plan.hugetlb) {
    map.addr = ::mmap(nullptr, plan.len, PROT_READ | PROT_WRITE, kMapFlags | MAP_HUGETLB, -1, 0);
    if (map.addr != MAP_FAILED) {
      map.len = plan.len;
      return PageKind::huge_tlb;
    }
    if (huge_pages == HugePages::require) {
      const int err = errno;
      throw NumaError(ENOMEM,
                      "numa: " + mib(plan.len) + " of hugetlb pages on " + where + " refused (" +
                          std::strerror(err) + "; " + std::to_string(plan.reserved) +
                          " pages reserved, /proc/meminfo HugePages_Free says how many are left); reserve "
                          "more with `sysctl vm.nr_hugepages=N`");
    }
  }
  return map_base_pages(map, bytes, huge_pages, where);
}

void bind_to_node(const MappingGuard& map, int node, const std::string& where) {
  detail::NodeMask mask(std::vector<int>{node});
  if (::mbind(map.addr, map.len, MPOL_BIND, mask.bits(), mask.max_node(), 0) != 0) {
    const int err = errno;
    throw NumaError(err,
                    "numa: mbind of " + mib(map.len) + " to " + where + " failed: " + std::strerror(err) +
                        (err == EINVAL ? "; the node is outside this process's cpuset (Mems_allowed)" : ""));
  }
}

// mlock faults the range in as it locks it; MLOCK_ONFAULT locks each page as it is first touched instead.
// The raw syscalls: sanitizer runtimes replace mlock() with a no-op that reports success, which would leave
// the memory neither locked nor faulted in while we say it is.
void lock_pages(const MappingGuard& map, bool prefault, const std::string& where) {
  const long rc = prefault ? ::syscall(SYS_mlock, map.addr, map.len)
                           : ::syscall(SYS_mlock2, map.addr, map.len, MLOCK_ONFAULT);
  if (rc != 0) {
    const int err = errno;
    throw NumaError(err == EAGAIN ? ENOMEM : err,
                    "numa: locking " + mib(map.len) + " on " + where + " refused (" + std::strerror(err) +
                        "): RLIMIT_MEMLOCK is " + memlock_limit() +
                        "; raise it (`ulimit -l`, LimitMEMLOCK= in systemd, or limits.conf memlock) or grant "
                        "CAP_IPC_LOCK, or allocate with lock = false");
  }
}

void prefault_pages(const MappingGuard& map, std::size_t page, const std::string& where) {
  if (const int err = prefault(map.addr, map.len, page); err != 0) {
    throw NumaError(ENOMEM, "numa: " + where + " could not supply " + mib(map.len) + " (" +
                                std::strerror(err) + "); it is full: ask for less, or for another node");
  }
}

}  // namespace

const char* to_string(PageKind kind) noexcept {
  switch (kind) {
    case PageKind::normal:
      return "normal";
    case PageKind::transparent_huge:
      return "transparent huge";
    case PageKind::huge_tlb:
      return "hugetlb";
  }
  return "?";
}

NodeMemory& NodeMemory::operator=(NodeMemory&& other) noexcept {
  if (this != &other) {
    reset();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    page_size_ = std::exchange(other.page_size_, 0);
    node_ = std::exchange(other.node_, -1);
    pages_ = std::exchange(other.pages_, PageKind::normal);
    locked_ = std::exchange(other.locked_, false);
    prefaulted_ = std::exchange(other.prefaulted_, false);
    bound_ = std::exchange(other.bound_, false);
  }
  return *this;
}

void NodeMemory::reset() noexcept {
  if (data_ != nullptr) ::munmap(data_, size_);  // munmap also unlocks
  data_ = nullptr;
  size_ = 0;
  page_size_ = 0;
  node_ = -1;
  pages_ = PageKind::normal;
  locked_ = prefaulted_ = bound_ = false;
}

NodeMemory allocate_on_node(int node, std::size_t bytes, const AllocationOptions& options) {
  return allocate_on_node(Topology::system(), node, bytes, options);
}

NodeMemory allocate_on_node(const Topology& topo, int node, std::size_t bytes,
                            const AllocationOptions& options) {
  const std::string where = "node " + std::to_string(node);
  // Every check before the first syscall: a refused request maps nothing.
  const NodeInfo& info = checked_node(topo, node, bytes, where);
  const PagePlan plan = plan_pages(topo, info, bytes, options.huge_pages, where);

  MappingGuard map;
  const PageKind kind = map_pages(map, plan, bytes, options.huge_pages, where);
  // A simulated node is a label, not this host's: nothing to bind to.
  const bool bound = topo.numa_available() && !topo.simulated();
  if (bound) bind_to_node(map, node, where);
  const std::size_t page = kind == PageKind::huge_tlb ? kHugePageSize : base_page_size();
  if (options.lock) {
    lock_pages(map, options.prefault, where);
  } else if (options.prefault) {
    prefault_pages(map, page, where);
  }

  NodeMemory out;
  out.size_ = map.len;
  out.data_ = map.release();
  out.page_size_ = page;
  out.node_ = node;
  out.pages_ = kind;
  out.locked_ = options.lock;
  out.prefaulted_ = options.prefault;
  out.bound_ = bound;
  return out;
}

}  // namespace moirai::numa
