// The cache line: the unit the coherence protocol moves between CPUs. Data one thread writes and another
// reads is aligned to it, so that a writer does not invalidate a neighbour's line (false sharing).
#pragma once

#include <cstddef>

namespace moirai {

// 64 bytes on x86-64 and on most AArch64 cores. std::hardware_destructive_interference_size is not used: its
// value may differ between compilers and flags, and a layout shared between processes (IPC rings) must not.
inline constexpr std::size_t kCacheLine = 64;

}  // namespace moirai
