// The memory a shard maps on its own NUMA node when it starts, and the report of what it obtained: the node,
// the sizes, the page kind, whether it is locked and placed. Asked-for properties the host refuses (a lock
// over RLIMIT_MEMLOCK, huge pages none of which are reserved) degrade with a warning instead of failing the
// start; no memory at all fails it.
#pragma once

#include <cstddef>
#include <string>

#include "moirai/numa/node_memory.hpp"

namespace moirai {

struct ShardMemory {
  int cpu = -1;
  int node = -1;                                  // the NUMA node the shard's memory is bound to
  std::size_t frame_bytes = 0;                    // coroutine frames and task records, mapped at start
  std::size_t message_bytes = 0;                  // the shard's incoming cross-core message slots
  std::size_t io_buffer_bytes = 0;                // io buffers
  numa::PageKind pages = numa::PageKind::normal;  // what backs the frame memory
  bool bound = false;  // placed on `node` by mbind (false on a host without NUMA support)
  bool locked = false;
  bool prefaulted = false;
  std::string warning;  // what was asked for and not obtained, and why; empty when everything was
};

}  // namespace moirai
