// Memory placed on one NUMA node: an anonymous private mapping bound to the node before its first touch,
// optionally backed by huge pages, locked and pre-faulted, so that using it later never enters the kernel.
#pragma once

#include <cstddef>
#include <cstdint>

namespace moirai::numa {

class Topology;

enum class HugePages : std::uint8_t {
  off,
  prefer,   // MAP_HUGETLB when huge pages are reserved, else transparent huge pages (madvise MADV_HUGEPAGE)
  require,  // MAP_HUGETLB or NumaError
};

enum class PageKind : std::uint8_t { normal, transparent_huge, huge_tlb };

const char* to_string(PageKind kind) noexcept;

struct AllocationOptions {
  HugePages huge_pages = HugePages::off;
  bool lock = false;     // mlock: never swapped out; refused beyond RLIMIT_MEMLOCK without CAP_IPC_LOCK
  bool prefault = true;  // fault every page in now (after the bind), not on the hot path later
};

// Owns one mapping; move-only; unmapped on destruction.
class NodeMemory {
 public:
  NodeMemory() = default;
  ~NodeMemory() { reset(); }
  NodeMemory(NodeMemory&& other) noexcept { *this = static_cast<NodeMemory&&>(other); }
  NodeMemory& operator=(NodeMemory&& other) noexcept;
  NodeMemory(const NodeMemory&) = delete;
  NodeMemory& operator=(const NodeMemory&) = delete;

  void* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return size_; }  // rounded up to the (huge) page size
  int node() const noexcept { return node_; }
  PageKind pages() const noexcept { return pages_; }
  std::size_t page_size() const noexcept { return page_size_; }
  bool locked() const noexcept { return locked_; }
  bool prefaulted() const noexcept { return prefaulted_; }
  // mbind applied. False on a host without NUMA support and for a node of a simulated topology.
  bool bound() const noexcept { return bound_; }
  explicit operator bool() const noexcept { return data_ != nullptr; }
  void reset() noexcept;

 private:
  friend NodeMemory allocate_on_node(const Topology&, int, std::size_t, const AllocationOptions&);

  void* data_ = nullptr;
  std::size_t size_ = 0;
  std::size_t page_size_ = 0;
  int node_ = -1;
  PageKind pages_ = PageKind::normal;
  bool locked_ = false;
  bool prefaulted_ = false;
  bool bound_ = false;
};

// `bytes` on `node` of Topology::system(). Throws NumaError (nothing mapped is left behind) for a node that
// does not exist or has no memory, bytes == 0 or more than the node holds, huge pages required but not
// reserved, or a lock refused by RLIMIT_MEMLOCK.
NodeMemory allocate_on_node(int node, std::size_t bytes, const AllocationOptions& options = {});

// The same against any topology. On a simulated one (Topology::simulated()) or one without NUMA the memory is
// mapped without mbind (bound() is false): the node is a label, since it need not exist on this host.
NodeMemory allocate_on_node(const Topology& topo, int node, std::size_t bytes,
                            const AllocationOptions& options = {});

}  // namespace moirai::numa
