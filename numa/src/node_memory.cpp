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

  const bool try_hugetlb = options.huge_pages != HugePages::off;
  const long reserved = try_hugetlb ? read_long("/proc/sys/vm/nr_hugepages") : 0;
  if (options.huge_pages == HugePages::require && reserved <= 0) {
    throw NumaError(ENOMEM, "numa: huge pages required on " + where +
                                " but none are reserved (/proc/sys/vm/nr_hugepages is 0); reserve some with "
                                "`sysctl vm.nr_hugepages=N` (N pages of 2 MiB), or use HugePages::prefer");
  }
  // mmap(MAP_HUGETLB) reserves huge pages from the whole pool, but a page bound to this node must come from
  // this node's share: faulting it in with none free there is a SIGBUS, not an error. So count the node's
  // free huge pages first (the whole pool's on a simulated topology, whose nodes are not this host's).
  long free_here = 0;
  if (try_hugetlb && reserved > 0) {
    const std::string node_free =
        "/sys/devices/system/node/node" + std::to_string(node) + "/hugepages/hugepages-2048kB/free_hugepages";
    free_here = topo.simulated() ? -1 : read_long(node_free.c_str());
    if (free_here < 0) free_here = read_long("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages");
  }
  const long huge_needed = static_cast<long>((bytes + kHugePageSize - 1) / kHugePageSize);
  if (options.huge_pages == HugePages::require && reserved > 0 && free_here < huge_needed) {
    throw NumaError(
        ENOMEM, "numa: " + std::to_string(huge_needed) + " huge pages required on " + where + " but only " +
                    std::to_string(free_here < 0 ? 0 : free_here) +
                    " are free there; reserve more with `sysctl vm.nr_hugepages=N` (or per node in "
                    "/sys/devices/system/node/nodeN/hugepages), or use HugePages::prefer");
  }
  const bool use_hugetlb = try_hugetlb && reserved > 0 && free_here >= huge_needed;
  const std::size_t page = use_hugetlb ? kHugePageSize : base_page_size();
  if (bytes > SIZE_MAX - (page - 1)) {
    throw NumaError(EINVAL, "numa: allocation of " + std::to_string(bytes) + " bytes on " + where +
                                " overflows when rounded up to the page size; ask for less");
  }
  const std::size_t len = (bytes + page - 1) / page * page;
  if (len > info->memory_bytes) {
    throw NumaError(ENOMEM, "numa: " + std::to_string(bytes) + " bytes requested on " + where +
                                ", which holds " + mib(info->memory_bytes) +
                                " in all; ask for less or spread over several nodes");
  }

  MappingGuard map;
  PageKind kind = PageKind::normal;
  // No MAP_POPULATE: it would fault the pages in before mbind, i.e. on whatever node the thread runs on.
  const int base_flags = MAP_PRIVATE | MAP_ANONYMOUS;
  if (use_hugetlb) {
    map.addr = ::mmap(nullptr, len, PROT_READ | PROT_WRITE, base_flags | MAP_HUGETLB, -1, 0);
    if (map.addr != MAP_FAILED) {
      map.len = len;
      kind = PageKind::huge_tlb;
    } else if (options.huge_pages == HugePages::require) {
      const int err = errno;
      throw NumaError(
          ENOMEM, "numa: " + mib(len) + " of hugetlb pages on " + where + " refused (" + std::strerror(err) +
                      "; " + std::to_string(reserved) +
                      " pages reserved, /proc/meminfo HugePages_Free says how many are left); reserve "
                      "more with `sysctl vm.nr_hugepages=N`");
    }
  }
  std::size_t map_len = len;
  if (map.addr == MAP_FAILED) {
    map_len = (bytes + base_page_size() - 1) / base_page_size() * base_page_size();
    // For THP, over-map by one huge page and trim so that the range starts on a 2 MiB boundary: only aligned
    // 2 MiB extents can be huge pages.
    const bool want_thp =
        options.huge_pages == HugePages::prefer && map_len >= kHugePageSize && thp_enabled();
    const std::size_t extra = want_thp ? kHugePageSize : 0;
    void* raw = ::mmap(nullptr, map_len + extra, PROT_READ | PROT_WRITE, base_flags, -1, 0);
    if (raw == MAP_FAILED) {
      const int err = errno;
      throw NumaError(err, "numa: mmap of " + std::to_string(map_len) + " bytes for " + where + " failed: " +
                               std::strerror(err) + "; check ulimit -v and vm.overcommit_memory");
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
    if (want_thp && ::madvise(map.addr, map_len, MADV_HUGEPAGE) == 0) kind = PageKind::transparent_huge;
  }

  bool bound = false;
  if (topo.numa_available() && !topo.simulated()) {
    detail::NodeMask mask(std::vector<int>{node});
    if (::mbind(map.addr, map.len, MPOL_BIND, mask.bits(), mask.max_node(), 0) != 0) {
      const int err = errno;
      throw NumaError(
          err, "numa: mbind of " + mib(map.len) + " to " + where + " failed: " + std::strerror(err) +
                   (err == EINVAL ? "; the node is outside this process's cpuset (Mems_allowed)" : ""));
    }
    bound = true;
  }

  bool locked = false;
  if (options.lock) {
    // mlock faults the range in as it locks it; MLOCK_ONFAULT locks each page as it is first touched instead.
    // The raw syscalls: sanitizer runtimes replace mlock() with a no-op that reports success, which would
    // leave the memory neither locked nor faulted in while we say it is.
    const long rc = options.prefault ? ::syscall(SYS_mlock, map.addr, map.len)
                                     : ::syscall(SYS_mlock2, map.addr, map.len, MLOCK_ONFAULT);
    if (rc != 0) {
      const int err = errno;
      throw NumaError(
          err == EAGAIN ? ENOMEM : err,
          "numa: locking " + mib(map.len) + " on " + where + " refused (" + std::strerror(err) +
              "): RLIMIT_MEMLOCK is " + memlock_limit() +
              "; raise it (`ulimit -l`, LimitMEMLOCK= in systemd, or limits.conf memlock) or grant "
              "CAP_IPC_LOCK, or allocate with lock = false");
    }
    locked = true;
  }
  bool prefaulted = false;
  if (options.prefault) {
    const std::size_t fault_page = kind == PageKind::huge_tlb ? kHugePageSize : base_page_size();
    if (!locked) {
      if (const int err = prefault(map.addr, map.len, fault_page); err != 0) {
        throw NumaError(ENOMEM, "numa: " + where + " could not supply " + mib(map.len) + " (" +
                                    std::strerror(err) + "); it is full: ask for less, or for another node");
      }
    }
    prefaulted = true;
  }

  NodeMemory out;
  out.size_ = map.len;
  out.data_ = map.release();
  out.page_size_ = kind == PageKind::huge_tlb ? kHugePageSize : base_page_size();
  out.node_ = node;
  out.pages_ = kind;
  out.locked_ = locked;
  out.prefaulted_ = prefaulted;
  out.bound_ = bound;
  return out;
}

}  // namespace moirai::numa
