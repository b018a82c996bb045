// Fixed-size blocks on every node of a topology, for any thread: allocation prefers one node and falls back
// to the nearest others by distance when it is exhausted. Never a silent malloc: when every node is exhausted
// the pool says so (NumaError, or nullptr from try_allocate) and counts the failure.
//
// How it is fast. Each node's free blocks form a lock-free stack of block indices (a 32-bit index and a
// 32-bit ABA tag in one 64-bit head; the links live in a side table of atomics, not in the blocks, so that a
// racing pop never reads user data). Each thread keeps a small cache ("magazine") of free blocks of the
// preferred node: an allocate or free that hits the cache touches only thread-local data, no atomic RMW. The
// cache refills and spills half a magazine at a time, one CAS per batch. The hit paths are inline: the
// calling thread remembers the last pool it used and that pool's magazine, so a hit is one compare with a
// thread-local word, then a pop or push on the magazine and one store of its combined count/allocations word.
// The price: up to kCacheBlocks blocks per thread sit in that thread's cache, invisible to other threads,
// until it spills them or exits (its cache goes back to the pool then). allocate_preferring(another node) and
// frees of other nodes' blocks bypass the cache (one CAS).
//
// Memory: on the real topology each node's blocks are mbind'ed to that node. On a simulated topology
// (Topology::simulated()) or one without NUMA they are mapped without mbind: the nodes are labels that need
// not exist on this host, which is what lets tests and what-if runs model a 4-node box on a laptop.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "moirai/numa/node_pool.hpp"
#include "moirai/numa/topology.hpp"

namespace moirai::numa {

struct NodePoolStats {
  int node = -1;
  std::size_t capacity = 0;
  std::size_t in_use = 0;  // handed to users; blocks in threads' caches count as free
  std::size_t high_water =
      0;  // most blocks out at once; may exceed the true peak by the blocks threads cached
  std::uint64_t allocations = 0;  // served by this node
  std::uint64_t fallbacks = 0;    // of those, served here for a request preferring another node
  std::uint64_t failures = 0;     // requests preferring this node that no node could serve
};

struct NumaPoolStats {
  std::vector<NodePoolStats> nodes;  // in the topology's node order
  std::size_t capacity = 0;
  std::size_t in_use = 0;
  std::size_t high_water = 0;  // sum of the nodes' high waters
  std::uint64_t allocations = 0;
  std::uint64_t fallbacks = 0;
  std::uint64_t failures = 0;
  std::uint64_t foreign_frees =
      0;  // deallocate() of a pointer no node owns (ignored; aborts in checked mode)
};

class NumaAwarePool {
 public:
  static constexpr std::size_t kCacheBlocks = 32;  // per thread; refill and spill move half of it

  // `blocks_per_node` blocks of `block_size` bytes (rounded up to 16) on every node of `topo` that has
  // memory. Throws NumaError for a preferred node not in `topo`, zero sizes, or memory that cannot be had. A
  // memoryless preferred node is allowed: every allocation then comes from the nearest nodes (and counts as a
  // fallback).
  NumaAwarePool(const Topology& topo, std::size_t block_size, std::size_t blocks_per_node, int preferred_node,
                const PoolOptions& options = {});
  ~NumaAwarePool();
  NumaAwarePool(const NumaAwarePool&) = delete;
  NumaAwarePool& operator=(const NumaAwarePool&) = delete;

  // The preferred node, then the nearest by distance. Throws NumaError(ENOMEM) naming every node tried.
  void* allocate() {
    void* p;
    if (pop_cached(p)) [[likely]]
      return p;
    return allocate_slow();
  }
  // The same; nullptr when every node is exhausted (counted as a failure).
  void* try_allocate() noexcept {
    void* p;
    if (pop_cached(p)) [[likely]]
      return p;
    return try_allocate_slow();
  }
  // The same order starting from `node` (bypasses the thread cache unless `node` is the preferred node).
  // Throws NumaError(ENODEV) for a node not in the topology, NumaError(ENOMEM) when exhausted.
  void* allocate_preferring(int node);
  void* try_allocate_preferring(int node) noexcept;  // nullptr when exhausted or `node` is unknown
  // Any thread. nullptr is ignored; so is a foreign pointer (counted), which aborts in checked mode, as do a
  // misaligned pointer and a double free.
  void deallocate(void* p) noexcept;

  int node_of(const void* p) const noexcept;  // -1 for a pointer no node owns
  int preferred_node() const noexcept { return preferred_node_; }
  std::size_t block_size() const noexcept { return block_size_; }
  std::size_t blocks_per_node() const noexcept { return blocks_per_node_; }
  bool checked() const noexcept { return checked_; }
  NumaPoolStats stats() const;

  // Gives the calling thread's cached blocks, of every pool, back to their pools (and its counters). Runs by
  // itself when a thread exits; call it earlier when a thread stops using pools for a long time.
  static void release_thread_caches() noexcept;

  struct Arena;  // one node's blocks and free stack (numa_aware_pool.cpp)

  // One thread's magazine for one pool. Lives in thread-local storage, written only by its thread.
  struct ThreadCache {
    // The magazine's block count in the low kCountBits bits, the allocations it served (all from the
    // preferred node) above them: one word, so that a hit loads and stores one word, and stats() reads a
    // consistent pair. Atomic only so that stats() may read it from another thread; the owning thread
    // updates it with a relaxed load and store, plain moves on x86 (no lock prefix).
    static constexpr unsigned kCountBits = 6;
    static constexpr std::uint64_t kCountMask = (std::uint64_t{1} << kCountBits) - 1;
    static constexpr std::uint64_t kOneAllocation = std::uint64_t{1} << kCountBits;
    static_assert(kCacheBlocks <= kCountMask);

    NumaAwarePool* pool = nullptr;
    std::atomic<std::uint64_t> state{0};
    void* blocks[kCacheBlocks] = {};

    std::uint32_t count() const noexcept {
      return static_cast<std::uint32_t>(state.load(std::memory_order_relaxed) & kCountMask);
    }
    std::uint64_t allocations() const noexcept { return state.load(std::memory_order_relaxed) >> kCountBits; }
  };

  // The thread's most recently used unchecked pool (by uid: a pool that died never matches, and its
  // successor at the same address has another uid) and its magazine. Zero uid: none.
  struct LastCache {
    std::uint64_t uid = 0;
    ThreadCache* cache = nullptr;
  };

 private:
  // A hit in the last-used magazine. A bool rather than a null test on the block: saves a branch.
  bool pop_cached(void*& p) noexcept;
  void* allocate_fast() noexcept;
  [[gnu::noinline]] void* allocate_slow();
  [[gnu::noinline]] void* try_allocate_slow() noexcept;
  [[gnu::noinline]] void deallocate_slow(void* p) noexcept;
  void remember(ThreadCache* cache) noexcept;
  void* allocate_from(std::size_t want, ThreadCache* cache) noexcept;
  std::size_t arena_index(int node) const noexcept;
  ThreadCache* claim_cache() noexcept;
  void spill(ThreadCache& cache, std::size_t n) noexcept;
  void free_to_arena(Arena& arena, void* p) noexcept;
  [[noreturn]] void throw_exhausted(std::size_t want) const;

  std::uint64_t uid_ = 0;  // unique for the process's lifetime: a dead pool's id is never matched again
  std::size_t block_size_ = 0;
  std::size_t blocks_per_node_ = 0;
  int preferred_node_ = -1;
  std::size_t preferred_ = 0;  // index of the preferred node's arena
  bool checked_ = false;
  bool preferred_has_memory_ = false;
  // The preferred arena's range, copied here so that a free's "is it the preferred node's?" test is two loads
  // from this object rather than a walk through arenas_.
  std::uintptr_t preferred_base_ = 0;
  std::uintptr_t preferred_span_ = 0;
  std::vector<std::unique_ptr<Arena>> arenas_;   // topology node order
  std::vector<std::vector<std::size_t>> order_;  // per arena: arena indices nearest first, itself first
  std::vector<ThreadCache*> caches_;             // guarded by the registry mutex (numa_aware_pool.cpp)
};

namespace detail {
// Constant-initialised and trivially destructible: no TLS wrapper call on access.
inline thread_local NumaAwarePool::LastCache t_last_numa_cache;
}  // namespace detail

inline bool NumaAwarePool::pop_cached(void*& p) noexcept {
  // Only unchecked pools are remembered (remember()), so a hit needs no checked_ test.
  const LastCache& last = detail::t_last_numa_cache;
  if (last.uid == uid_) [[likely]] {
    ThreadCache& cache = *last.cache;
    const std::uint64_t state = cache.state.load(std::memory_order_relaxed);
    const std::uint64_t n = state & ThreadCache::kCountMask;
    if (n != 0) [[likely]] {
      // One fewer block, one more allocation.
      cache.state.store(state - 1 + ThreadCache::kOneAllocation, std::memory_order_relaxed);
      p = cache.blocks[n - 1];
      return true;
    }
  }
  return false;
}

inline void NumaAwarePool::deallocate(void* p) noexcept {
  // nullptr, and every pointer outside the preferred node's blocks, fail the range test (an empty range when
  // the preferred node has no memory).
  const LastCache& last = detail::t_last_numa_cache;
  if (last.uid == uid_ && reinterpret_cast<std::uintptr_t>(p) - preferred_base_ < preferred_span_)
      [[likely]] {
    ThreadCache& cache = *last.cache;
    const std::uint64_t state = cache.state.load(std::memory_order_relaxed);
    const std::uint64_t n = state & ThreadCache::kCountMask;
    if (n != kCacheBlocks) [[likely]] {
      cache.blocks[n] = p;
      cache.state.store(state + 1, std::memory_order_relaxed);
      return;
    }
  }
  deallocate_slow(p);
}

}  // namespace moirai::numa
