#include "moirai/numa/memory_policy.hpp"

#include <numaif.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstring>
#include <string>

#include "moirai/numa/cpu_list.hpp"
#include "moirai/numa/error.hpp"
#include "moirai/numa/topology.hpp"
#include "node_mask.hpp"

namespace moirai::numa {
namespace {

int kernel_mode(PolicyMode mode) noexcept {
  switch (mode) {
    case PolicyMode::default_policy:
      return MPOL_DEFAULT;
    case PolicyMode::bind:
      return MPOL_BIND;
    case PolicyMode::preferred:
      return MPOL_PREFERRED;
    case PolicyMode::interleave:
      return MPOL_INTERLEAVE;
  }
  return MPOL_DEFAULT;
}

std::string describe(const NumaPolicy& policy) {
  std::string out = to_string(policy.mode);
  if (!policy.nodes.empty()) out += " to node(s) " + format_cpu_list(policy.nodes);
  return out;
}

[[noreturn]] void throw_syscall(const char* call, int err, const NumaPolicy& policy) {
  std::string fix;
  switch (err) {
    case EPERM:
      fix = "; moving pages of other processes or with MPOL_MF_MOVE_ALL needs CAP_SYS_NICE";
      break;
    case ENOMEM:
      fix = "; the kernel is short of memory for its policy structures";
      break;
    case EIO:
      fix = "; some pages could not be moved (pinned, locked or shared); retry without move_existing";
      break;
    case ENOSYS:
      fix = "; this kernel or its seccomp profile forbids NUMA policies";
      break;
    case EINVAL:
      fix = "; the nodes are outside this process's cpuset (see /proc/self/status Mems_allowed)";
      break;
    default:
      break;
  }
  throw NumaError(
      err, std::string("numa: ") + call + " (" + describe(policy) + ") failed: " + std::strerror(err) + fix);
}

}  // namespace

const char* to_string(PolicyMode mode) noexcept {
  switch (mode) {
    case PolicyMode::default_policy:
      return "default";
    case PolicyMode::bind:
      return "bind";
    case PolicyMode::preferred:
      return "preferred";
    case PolicyMode::interleave:
      return "interleave";
  }
  return "?";
}

NumaPolicy NumaPolicy::default_policy() {
  return {};
}
NumaPolicy NumaPolicy::bind(std::vector<int> nodes) {
  return {PolicyMode::bind, std::move(nodes)};
}
NumaPolicy NumaPolicy::preferred(int node) {
  return {PolicyMode::preferred, {node}};
}
NumaPolicy NumaPolicy::interleave(std::vector<int> nodes) {
  return {PolicyMode::interleave, std::move(nodes)};
}

void validate(const NumaPolicy& policy, const Topology& topo) {
  const char* mode = to_string(policy.mode);
  switch (policy.mode) {
    case PolicyMode::default_policy:
      if (!policy.nodes.empty()) {
        throw NumaError(EINVAL, "numa: the default policy takes no nodes (got " +
                                    format_cpu_list(policy.nodes) +
                                    "); use bind, preferred or interleave to name nodes");
      }
      return;
    case PolicyMode::preferred:
      if (policy.nodes.size() != 1) {
        throw NumaError(EINVAL, "numa: the preferred policy takes exactly one node (got " +
                                    std::to_string(policy.nodes.size()) +
                                    "); use NumaPolicy::preferred(node)");
      }
      break;
    case PolicyMode::bind:
    case PolicyMode::interleave:
      if (policy.nodes.empty()) {
        throw NumaError(EINVAL,
                        std::string("numa: the ") + mode +
                            " policy needs at least one node (got an empty list); name nodes from `moirai "
                            "topo`, or use NumaPolicy::default_policy()");
      }
      break;
  }
  for (int id : policy.nodes) {
    const NodeInfo* info = topo.node(id);
    if (info == nullptr) {
      throw NumaError(ENODEV, "numa: node " + std::to_string(id) + " does not exist (" + topo.node_list() +
                                  "); pick a node from `moirai topo`");
    }
    if (info->memory_bytes == 0) {
      throw NumaError(
          EINVAL,
          "numa: node " + std::to_string(id) + " has no memory (a CPU-only node); " + mode +
              " to a node with memory, e.g. the nearest: node " +
              std::to_string(topo.nodes_by_distance(id).size() > 1 ? topo.nodes_by_distance(id)[1] : id));
    }
  }
}

void set_memory_policy(const NumaPolicy& policy) {
  const Topology& topo = Topology::system();
  validate(policy, topo);
  if (!topo.numa_available()) return;  // one node: every policy amounts to the default
  detail::NodeMask mask(policy.nodes);
  if (::set_mempolicy(kernel_mode(policy.mode), mask.empty() ? nullptr : mask.bits(), mask.max_node()) != 0) {
    throw_syscall("set_mempolicy", errno, policy);
  }
}

void set_memory_policy(void* addr, std::size_t len, const NumaPolicy& policy, bool move_existing) {
  const auto page = static_cast<std::uintptr_t>(sysconf(_SC_PAGESIZE));
  if (addr == nullptr || reinterpret_cast<std::uintptr_t>(addr) % page != 0) {
    throw NumaError(EINVAL, "numa: mbind needs a page-aligned address (got " +
                                std::to_string(reinterpret_cast<std::uintptr_t>(addr)) + ", page size " +
                                std::to_string(page) + "); pass the start of an mmap'ed range");
  }
  if (len == 0) {
    throw NumaError(EINVAL, "numa: mbind of an empty range (len 0); pass the length of the mapping");
  }
  const Topology& topo = Topology::system();
  validate(policy, topo);
  if (!topo.numa_available()) return;
  detail::NodeMask mask(policy.nodes);
  const unsigned flags = move_existing ? (MPOL_MF_STRICT | MPOL_MF_MOVE) : 0;
  if (::mbind(addr, len, kernel_mode(policy.mode), mask.empty() ? nullptr : mask.bits(), mask.max_node(),
              flags) != 0) {
    const int err = errno;
    if (err == EFAULT) {
      throw NumaError(EFAULT,
                      "numa: mbind (" + describe(policy) +
                          ") failed: part of the range is not mapped; pass a range inside one mapping");
    }
    throw_syscall("mbind", err, policy);
  }
}

NumaPolicy current_memory_policy() {
  if (!Topology::system().numa_available()) return NumaPolicy::default_policy();
  int mode = 0;
  detail::NodeMask mask;
  if (::get_mempolicy(&mode, mask.bits(), mask.max_node(), nullptr, 0) != 0) {
    throw_syscall("get_mempolicy", errno, NumaPolicy::default_policy());
  }
  // Optional mode flags (MPOL_F_STATIC_NODES and friends) ride in the high bits.
  switch (mode & 0xff) {
    case MPOL_BIND:
      return NumaPolicy::bind(mask.nodes());
    case MPOL_PREFERRED: {
      auto nodes = mask.nodes();
      // An empty preferred mask is the kernel's "local allocation": as near as this API gets, the default.
      return nodes.empty() ? NumaPolicy::default_policy()
                           : NumaPolicy{PolicyMode::preferred, std::move(nodes)};
    }
    case MPOL_INTERLEAVE:
      return NumaPolicy::interleave(mask.nodes());
    default:
      return NumaPolicy::default_policy();
  }
}

int node_of_address(const void* p) {
  const auto page = static_cast<std::uintptr_t>(sysconf(_SC_PAGESIZE));
  void* aligned = reinterpret_cast<void*>(reinterpret_cast<std::uintptr_t>(p) & ~(page - 1));
  // move_pages with no target nodes only reports where each page is, without faulting it in (get_mempolicy
  // with MPOL_F_ADDR would fault a missing page in to answer).
  int status = -1;
  if (::move_pages(0, 1, &aligned, nullptr, &status, 0) == 0) return status >= 0 ? status : -1;
  if (errno == ENOSYS) {
    unsigned char resident = 0;
    return ::mincore(aligned, page, &resident) == 0 && (resident & 1) != 0 ? 0 : -1;
  }
  return -1;
}

}  // namespace moirai::numa
