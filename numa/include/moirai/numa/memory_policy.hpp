// The kernel's NUMA memory policies (set_mempolicy(2), mbind(2), get_mempolicy(2)) with the node lists
// checked against the topology before any syscall, so that a bad request changes nothing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace moirai::numa {

class Topology;

enum class PolicyMode : std::uint8_t {
  default_policy,  // MPOL_DEFAULT: the process's (or, for a range, the thread's) policy; usually "local node"
  bind,            // MPOL_BIND: only these nodes; an allocation fails rather than spill elsewhere
  preferred,       // MPOL_PREFERRED: this node first, any other when it is full
  interleave,      // MPOL_INTERLEAVE: page by page round-robin over these nodes
};

const char* to_string(PolicyMode mode) noexcept;

struct NumaPolicy {
  PolicyMode mode = PolicyMode::default_policy;
  std::vector<int> nodes;  // empty for default_policy, one node for preferred

  static NumaPolicy default_policy();
  static NumaPolicy bind(std::vector<int> nodes);
  static NumaPolicy preferred(int node);
  static NumaPolicy interleave(std::vector<int> nodes);

  friend bool operator==(const NumaPolicy&, const NumaPolicy&) = default;
};

// Throws NumaError when `policy` cannot be applied on `topo`: a node that does not exist or has no memory, an
// empty node list for bind/interleave, nodes given to default_policy, more than one node for preferred.
void validate(const NumaPolicy& policy, const Topology& topo);

// The calling thread's policy for its future allocations (set_mempolicy). Validated against
// Topology::system(). On a host without NUMA, any valid policy (it can only name node 0) is accepted and
// changes nothing.
void set_memory_policy(const NumaPolicy& policy);

// The policy of [addr, addr + len) (mbind). `addr` must be page-aligned and `len` non-zero. With
// `move_existing`, pages already faulted elsewhere are moved (MPOL_MF_MOVE) and a page that cannot be is an
// error (MPOL_MF_STRICT, EIO).
void set_memory_policy(void* addr, std::size_t len, const NumaPolicy& policy, bool move_existing = false);

// The calling thread's policy (get_mempolicy). default_policy on a host without NUMA.
NumaPolicy current_memory_policy();

// The node holding the page at `p`, or -1 when the page is not resident (never faulted in, or swapped out).
// Does not fault the page in. 0 for a resident page on a host without NUMA.
int node_of_address(const void* p);

}  // namespace moirai::numa
