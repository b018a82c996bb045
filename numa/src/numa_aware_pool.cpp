#include "moirai/numa/numa_aware_pool.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <string>
#include <unordered_map>

#include "moirai/base/cache_line.hpp"
#include "moirai/numa/error.hpp"
#include "pool_abort.hpp"

namespace moirai::numa {

namespace {
constexpr std::uint32_t kNil = 0xffffffffu;  // "no block": the empty stack's top, the last block's link
constexpr std::size_t kCacheSlots = 4;  // pools a thread caches for at once; more go through the shared path
constexpr std::size_t kBatch = NumaAwarePool::kCacheBlocks / 2;

std::uint64_t pack(std::uint64_t tag, std::uint32_t top) noexcept {
  return (tag << 32) | top;
}
std::uint32_t top_of(std::uint64_t head) noexcept {
  return static_cast<std::uint32_t>(head);
}
std::uint64_t tag_of(std::uint64_t head) noexcept {
  return head >> 32;
}
}  // namespace

// One node's blocks.
struct NumaAwarePool::Arena {
  int node = -1;
  NodeMemory memory;
  char* base = nullptr;
  std::uintptr_t span = 0;
  std::size_t block_size = 0;
  std::uint32_t capacity = 0;
  std::unique_ptr<std::atomic<std::uint32_t>[]> next;       // free-stack links, by block index
  std::unique_ptr<std::atomic<std::uint64_t>[]> live_bits;  // checked mode: bit i set while block i is out

  // The free stack's head and the counters every push and pop touch with it: one line, moved once per batch.
  // Own line so that traffic on one node's stack does not slow the fields above, which every free reads.
  alignas(kCacheLine) std::atomic<std::uint64_t> head{pack(0, kNil)};
  std::atomic<std::uint64_t> taken{0};     // blocks popped off the stack (into a cache or to a user)
  std::atomic<std::uint64_t> returned{0};  // blocks pushed back
  std::atomic<std::uint64_t> high_water{0};

  // Counters of the shared path (and of exited threads' caches). Relaxed everywhere: they order nothing.
  alignas(kCacheLine) std::atomic<std::uint64_t> allocations{0};
  std::atomic<std::uint64_t> fallbacks{0};
  std::atomic<std::uint64_t> failures{0};
  std::atomic<std::uint64_t> foreign_frees{0};

  bool contains(const void* p) const noexcept {
    return reinterpret_cast<std::uintptr_t>(p) - reinterpret_cast<std::uintptr_t>(base) < span;
  }
  std::uint32_t index_of(const void* p) const noexcept {
    return static_cast<std::uint32_t>(static_cast<std::size_t>(static_cast<const char*>(p) - base) /
                                      block_size);
  }
  void* block(std::uint32_t index) const noexcept { return base + std::size_t{index} * block_size; }

  // Pops up to `max` blocks into `out`; returns how many. Lock-free: the tag, bumped by every successful CAS,
  // makes a head that was popped and pushed back in between compare unequal (ABA). The walk may read links
  // that a racing thread is rewriting; they are atomics, so the read is no data race, and the CAS then fails
  // because the tag moved. Acquire on the head (load and CAS) pairs with the release of the pushes: the links
  // read here and whatever the freeing thread wrote into the blocks are visible.
  std::size_t pop(void** out, std::size_t max) noexcept {
    std::uint64_t old_head = head.load(std::memory_order_acquire);
    for (;;) {
      std::uint32_t cur = top_of(old_head);
      std::size_t n = 0;
      while (n < max && cur != kNil && cur < capacity) {
        out[n++] = block(cur);
        cur = next[cur].load(std::memory_order_relaxed);
      }
      if (n == 0 && top_of(old_head) == kNil) return 0;
      if (cur != kNil && cur >= capacity) {  // cannot happen with intact links; reload rather than trust it
        old_head = head.load(std::memory_order_acquire);
        continue;
      }
      if (head.compare_exchange_weak(old_head, pack(tag_of(old_head) + 1, cur), std::memory_order_acquire,
                                     std::memory_order_acquire)) {
        const std::uint64_t out_now =
            taken.fetch_add(n, std::memory_order_relaxed) + n - returned.load(std::memory_order_relaxed);
        std::uint64_t seen = high_water.load(std::memory_order_relaxed);
        while (out_now > seen && out_now <= capacity &&
               !high_water.compare_exchange_weak(seen, out_now, std::memory_order_relaxed)) {
        }
        return n;
      }
    }
  }

  // Pushes `n` blocks already linked first -> ... -> last. Release publishes the links and the blocks'
  // contents to the acquire of the pop that takes them.
  void push(std::uint32_t first, std::uint32_t last, std::size_t n) noexcept {
    std::uint64_t old_head = head.load(std::memory_order_relaxed);
    do {
      next[last].store(top_of(old_head), std::memory_order_relaxed);
    } while (!head.compare_exchange_weak(old_head, pack(tag_of(old_head) + 1, first),
                                         std::memory_order_release, std::memory_order_relaxed));
    returned.fetch_add(n, std::memory_order_relaxed);
  }

  // Checked mode: the block's "out" bit, set on allocation and cleared on free. Relaxed RMWs: one word's RMWs
  // are totally ordered, which is all that detecting "already free" / "already out" needs.
  void mark_out(void* p) const noexcept {
    const std::uint32_t i = index_of(p);
    const std::uint64_t bit = std::uint64_t{1} << (i % 64);
    if (live_bits[i / 64].fetch_or(bit, std::memory_order_relaxed) & bit) {
      detail::pool_abort(
          "NumaAwarePool handed out a block that is already in use: a block was freed twice or "
          "written after free",
          p);
    }
  }
  void mark_free(void* p) const noexcept {
    if ((static_cast<const char*>(p) - base) % static_cast<std::ptrdiff_t>(block_size) != 0) {
      detail::pool_abort(
          "NumaAwarePool::deallocate of a misaligned pointer (not the start of a block: an "
          "interior pointer?)",
          p);
    }
    const std::uint32_t i = index_of(p);
    const std::uint64_t bit = std::uint64_t{1} << (i % 64);
    if ((live_bits[i / 64].fetch_and(~bit, std::memory_order_relaxed) & bit) == 0) {
      detail::pool_abort("NumaAwarePool: double free detected (the block is already free)", p);
    }
  }
};

namespace {

// Live pools by uid, and each pool's list of caches. One mutex for both: it is taken only to claim a cache
// slot, at thread exit, by stats() and by a pool's constructor and destructor, never on the hot path.
// Leaked on purpose: threads may exit after static destructors ran.
struct Registry {
  std::mutex mutex;
  std::unordered_map<std::uint64_t, NumaAwarePool*> pools;
};
Registry& registry() {
  static Registry* r = new Registry;
  return *r;
}
std::atomic<std::uint64_t> g_next_uid{1};

// The uids sit apart from the magazines so that the lookup scans one cache line.
thread_local std::uint64_t tl_uids[kCacheSlots] = {};
thread_local NumaAwarePool::ThreadCache tl_caches[kCacheSlots];
thread_local bool tl_exiting = false;

// Constructed on a thread's first claimed slot, so that its destructor gives the caches back at thread exit.
struct CacheReaper {
  CacheReaper() noexcept {}
  ~CacheReaper() {
    tl_exiting = true;  // a pool used by a later thread_local destructor goes through the shared path
    NumaAwarePool::release_thread_caches();
  }
};
thread_local CacheReaper tl_reaper;

}  // namespace

NumaAwarePool::NumaAwarePool(const Topology& topo, std::size_t block_size, std::size_t blocks_per_node,
                             int preferred_node, const PoolOptions& options)
    : preferred_node_(preferred_node), checked_(options.checked) {
  if (topo.node(preferred_node) == nullptr) {
    throw NumaError(ENODEV, "numa: preferred node " + std::to_string(preferred_node) + " does not exist (" +
                                topo.node_list() + "); pick a node from `moirai topo`");
  }
  if (block_size == 0 || blocks_per_node == 0) {
    throw NumaError(EINVAL, "numa: NumaAwarePool of " + std::to_string(blocks_per_node) + " blocks of " +
                                std::to_string(block_size) + " bytes per node; both must be at least 1");
  }
  if (block_size > (std::size_t{1} << 40) || blocks_per_node >= kNil) {
    throw NumaError(EINVAL,
                    "numa: NumaAwarePool of " + std::to_string(blocks_per_node) + " blocks of " +
                        std::to_string(block_size) +
                        " bytes per node is beyond its limits (block indices are 32-bit); ask for less");
  }
  block_size_ = (block_size + NodePool::kAlignment - 1) / NodePool::kAlignment * NodePool::kAlignment;
  blocks_per_node_ = blocks_per_node;
  if (blocks_per_node > SIZE_MAX / block_size_) {
    throw NumaError(EINVAL, "numa: NumaAwarePool size overflows; ask for fewer or smaller blocks");
  }
  const auto& nodes = topo.nodes();
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    auto arena = std::make_unique<Arena>();
    arena->node = nodes[i].id;
    arena->block_size = block_size_;
    if (nodes[i].memory_bytes > 0) {
      arena->memory = allocate_on_node(topo, nodes[i].id, block_size_ * blocks_per_node, options.memory);
      arena->base = static_cast<char*>(arena->memory.data());
      arena->capacity = static_cast<std::uint32_t>(blocks_per_node);
      arena->span = block_size_ * blocks_per_node;
      arena->next = std::make_unique<std::atomic<std::uint32_t>[]>(blocks_per_node);
      for (std::uint32_t b = 0; b < arena->capacity; ++b) {
        arena->next[b].store(b + 1 < arena->capacity ? b + 1 : kNil, std::memory_order_relaxed);
      }
      arena->head.store(pack(0, 0), std::memory_order_relaxed);
      if (checked_)
        arena->live_bits = std::make_unique<std::atomic<std::uint64_t>[]>((blocks_per_node + 63) / 64);
    }
    if (nodes[i].id == preferred_node) {
      preferred_ = i;
      preferred_has_memory_ = nodes[i].memory_bytes > 0;
      preferred_base_ = reinterpret_cast<std::uintptr_t>(arena->base);
      preferred_span_ = arena->span;
    }
    arenas_.push_back(std::move(arena));
  }
  for (const NodeInfo& info : nodes) {
    std::vector<std::size_t> order;
    for (int id : topo.nodes_by_distance(info.id)) {
      for (std::size_t i = 0; i < nodes.size(); ++i) {
        if (nodes[i].id == id) order.push_back(i);
      }
    }
    order_.push_back(std::move(order));
  }
  uid_ = g_next_uid.fetch_add(1, std::memory_order_relaxed);
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  r.pools.emplace(uid_, this);
}

NumaAwarePool::~NumaAwarePool() {
  // Threads' caches that still name this pool keep a uid that will never match again; their slots are
  // reclaimed when those threads next claim one. Nothing of theirs is touched here.
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  r.pools.erase(uid_);
  for (ThreadCache* cache : caches_)
    cache->pool = nullptr;
}

std::size_t NumaAwarePool::arena_index(int node) const noexcept {
  for (std::size_t i = 0; i < arenas_.size(); ++i) {
    if (arenas_[i]->node == node) return i;
  }
  return arenas_.size();
}

namespace {
// Forced inline: the paths that look a cache up are a handful of instructions, which a call would add to.
[[gnu::always_inline]] inline NumaAwarePool::ThreadCache* lookup_cache(std::uint64_t uid) noexcept {
  for (std::size_t i = 0; i < kCacheSlots; ++i) {
    if (tl_uids[i] == uid) return &tl_caches[i];
  }
  return nullptr;
}
}  // namespace

NumaAwarePool::ThreadCache* NumaAwarePool::claim_cache() noexcept {
  if (tl_exiting || !preferred_has_memory_) return nullptr;
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  for (std::size_t i = 0; i < kCacheSlots; ++i) {
    // A free slot, or one whose pool is gone (its cached pointers point into unmapped memory: drop them).
    if (tl_uids[i] != 0 && r.pools.count(tl_uids[i]) != 0) continue;
    ThreadCache& cache = tl_caches[i];
    try {
      caches_.push_back(&cache);
    } catch (...) {
      return nullptr;  // no memory for the list: go without a cache
    }
    (void)&tl_reaper;  // odr-use: constructs the reaper, whose destructor gives the cache back at thread exit
    cache.pool = this;
    cache.state.store(0, std::memory_order_relaxed);
    tl_uids[i] = uid_;
    remember(&cache);
    return &cache;
  }
  return nullptr;  // every slot serves a live pool: this one goes through the shared path
}

void NumaAwarePool::release_thread_caches() noexcept {
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  for (std::size_t i = 0; i < kCacheSlots; ++i) {
    if (tl_uids[i] == 0) continue;
    ThreadCache& cache = tl_caches[i];
    if (auto it = r.pools.find(tl_uids[i]); it != r.pools.end()) {
      NumaAwarePool& pool = *it->second;
      pool.spill(cache, cache.count());
      pool.arenas_[pool.preferred_]->allocations.fetch_add(cache.allocations(), std::memory_order_relaxed);
      auto& list = pool.caches_;
      list.erase(std::remove(list.begin(), list.end(), &cache), list.end());
    }
    cache.pool = nullptr;
    cache.state.store(0, std::memory_order_relaxed);
    tl_uids[i] = 0;
  }
  // The inline paths must not find a magazine that is no longer claimed.
  detail::t_last_numa_cache = {};
}

void NumaAwarePool::remember(ThreadCache* cache) noexcept {
  // A checked pool is never remembered: its every call takes the out-of-line path, which marks blocks.
  if (!checked_) detail::t_last_numa_cache = {uid_, cache};
}

void NumaAwarePool::spill(ThreadCache& cache, std::size_t n) noexcept {
  const std::uint32_t count = cache.count();
  n = std::min<std::size_t>(n, count);
  if (n == 0) return;
  Arena& arena = *arenas_[preferred_];
  // The oldest blocks (bottom of the magazine) go back; the most recently freed, likely still in this CPU's
  // cache, stay for the next allocations.
  for (std::size_t i = 0; i + 1 < n; ++i) {
    arena.next[arena.index_of(cache.blocks[i])].store(arena.index_of(cache.blocks[i + 1]),
                                                      std::memory_order_relaxed);
  }
  arena.push(arena.index_of(cache.blocks[0]), arena.index_of(cache.blocks[n - 1]), n);
  std::memmove(cache.blocks, cache.blocks + n, (count - n) * sizeof(void*));
  cache.state.store(cache.state.load(std::memory_order_relaxed) - n, std::memory_order_relaxed);
}

// The inline pop_cached() missed: another pool was used last on this thread, the magazine is empty, the
// pool is checked, or this thread has no magazine for it yet.
void* NumaAwarePool::allocate_fast() noexcept {
  ThreadCache* cache = lookup_cache(uid_);
  if (cache != nullptr) {
    remember(cache);
    const std::uint64_t state = cache->state.load(std::memory_order_relaxed);
    const std::uint64_t n = state & ThreadCache::kCountMask;
    if (n != 0) {
      cache->state.store(state - 1 + ThreadCache::kOneAllocation, std::memory_order_relaxed);
      void* p = cache->blocks[n - 1];
      if (checked_) arenas_[preferred_]->mark_out(p);
      return p;
    }
  }
  return allocate_from(preferred_, cache);
}

void* NumaAwarePool::try_allocate_slow() noexcept {
  return allocate_fast();
}

void* NumaAwarePool::allocate_from(std::size_t want, ThreadCache* cache) noexcept {
  if (want == preferred_ && preferred_has_memory_) {
    if (cache == nullptr) cache = claim_cache();
    if (cache != nullptr) {
      // Refill half a magazine with one CAS; the other half stays free for the frees that follow.
      const std::size_t n = arenas_[preferred_]->pop(cache->blocks, kBatch);
      if (n != 0) {
        // The magazine was empty: its count becomes n - 1, its allocations one more.
        const std::uint64_t state = cache->state.load(std::memory_order_relaxed);
        cache->state.store((state & ~ThreadCache::kCountMask) + ThreadCache::kOneAllocation + (n - 1),
                           std::memory_order_relaxed);
        void* p = cache->blocks[n - 1];
        if (checked_) arenas_[preferred_]->mark_out(p);
        return p;
      }
    }
  }
  for (std::size_t i : order_[want]) {
    Arena& arena = *arenas_[i];
    void* p = nullptr;
    if (arena.capacity == 0 || arena.pop(&p, 1) == 0) continue;
    arena.allocations.fetch_add(1, std::memory_order_relaxed);
    if (i != want) arena.fallbacks.fetch_add(1, std::memory_order_relaxed);
    if (checked_) arena.mark_out(p);
    return p;
  }
  arenas_[want]->failures.fetch_add(1, std::memory_order_relaxed);
  return nullptr;
}

void* NumaAwarePool::allocate_slow() {
  if (void* p = allocate_fast()) return p;
  throw_exhausted(preferred_);
}

void* NumaAwarePool::try_allocate_preferring(int node) noexcept {
  if (node == preferred_node_) return try_allocate();
  const std::size_t want = arena_index(node);
  if (want == arenas_.size()) return nullptr;
  return allocate_from(want, nullptr);
}

void* NumaAwarePool::allocate_preferring(int node) {
  const std::size_t want = arena_index(node);
  if (want == arenas_.size()) {
    throw NumaError(ENODEV,
                    "numa: allocate_preferring(" + std::to_string(node) +
                        "): the pool has no such node (its nodes are those of the topology it was built "
                        "on); pick a node from `moirai topo`");
  }
  if (void* p = try_allocate_preferring(node)) return p;
  throw_exhausted(want);
}

void NumaAwarePool::throw_exhausted(std::size_t want) const {
  std::string tried;
  for (std::size_t i : order_[want]) {
    if (!tried.empty()) tried += ", ";
    tried += "node " + std::to_string(arenas_[i]->node);
    if (arenas_[i]->capacity == 0) tried += " (no memory)";
  }
  throw NumaError(ENOMEM, "numa: NumaAwarePool exhausted: no free " + std::to_string(block_size_) +
                              "-byte block preferring node " + std::to_string(arenas_[want]->node) +
                              "; tried " + tried + ", " + std::to_string(blocks_per_node_) +
                              " blocks each (up to " + std::to_string(kCacheBlocks) +
                              " per thread may sit in other threads' caches); raise blocks_per_node or free "
                              "blocks sooner");
}

void NumaAwarePool::free_to_arena(Arena& arena, void* p) noexcept {
  if (checked_) arena.mark_free(p);
  const std::uint32_t i = arena.index_of(p);
  arena.push(i, i, 1);
}

// The inline deallocate() missed: nullptr, another node's block, a full magazine, a checked pool, another
// pool used last on this thread, or no magazine yet.
void NumaAwarePool::deallocate_slow(void* p) noexcept {
  if (p == nullptr) return;
  if (reinterpret_cast<std::uintptr_t>(p) - preferred_base_ < preferred_span_) [[likely]] {
    Arena& preferred = *arenas_[preferred_];
    if (checked_) preferred.mark_free(p);
    ThreadCache* cache = lookup_cache(uid_);
    if (cache != nullptr)
      remember(cache);
    else
      cache = claim_cache();
    if (cache == nullptr) [[unlikely]] {
      const std::uint32_t i = preferred.index_of(p);
      preferred.push(i, i, 1);
      return;
    }
    if (cache->count() == kCacheBlocks) [[unlikely]]
      spill(*cache, kBatch);
    const std::uint64_t state = cache->state.load(std::memory_order_relaxed);
    cache->blocks[state & ThreadCache::kCountMask] = p;
    cache->state.store(state + 1, std::memory_order_relaxed);
    return;
  }
  for (const auto& arena : arenas_) {
    if (arena->contains(p)) {
      free_to_arena(*arena, p);
      return;
    }
  }
  if (checked_) {
    detail::pool_abort(
        "NumaAwarePool::deallocate of a pointer no node of this pool owns (freed into the wrong "
        "pool, or never allocated from one)",
        p);
  }
  arenas_[preferred_]->foreign_frees.fetch_add(1, std::memory_order_relaxed);
}

int NumaAwarePool::node_of(const void* p) const noexcept {
  for (const auto& arena : arenas_) {
    if (arena->contains(p)) return arena->node;
  }
  return -1;
}

NumaPoolStats NumaAwarePool::stats() const {
  NumaPoolStats out;
  std::uint64_t cached = 0;
  std::uint64_t cache_allocations = 0;
  {
    std::lock_guard lock(registry().mutex);
    for (const ThreadCache* cache : caches_) {
      // One load: the count and the allocations of one instant.
      const std::uint64_t state = cache->state.load(std::memory_order_relaxed);
      cached += state & ThreadCache::kCountMask;
      cache_allocations += state >> ThreadCache::kCountBits;
    }
  }
  for (std::size_t i = 0; i < arenas_.size(); ++i) {
    const Arena& arena = *arenas_[i];
    NodePoolStats s;
    s.node = arena.node;
    s.capacity = arena.capacity;
    // Read returned before taken: a pop racing with this read then only makes in_use look larger, never
    // negative. Clamped all the same, since the caches' counts are read at another instant.
    const std::uint64_t returned = arena.returned.load(std::memory_order_relaxed);
    const std::uint64_t taken = arena.taken.load(std::memory_order_relaxed);
    std::uint64_t out_now = taken >= returned ? taken - returned : 0;
    if (i == preferred_) out_now = out_now >= cached ? out_now - cached : 0;
    s.in_use = static_cast<std::size_t>(std::min<std::uint64_t>(out_now, arena.capacity));
    s.high_water = static_cast<std::size_t>(
        std::max<std::uint64_t>(arena.high_water.load(std::memory_order_relaxed), s.in_use));
    s.allocations =
        arena.allocations.load(std::memory_order_relaxed) + (i == preferred_ ? cache_allocations : 0);
    s.fallbacks = arena.fallbacks.load(std::memory_order_relaxed);
    s.failures = arena.failures.load(std::memory_order_relaxed);
    out.foreign_frees += arena.foreign_frees.load(std::memory_order_relaxed);
    out.capacity += s.capacity;
    out.in_use += s.in_use;
    out.high_water += s.high_water;
    out.allocations += s.allocations;
    out.fallbacks += s.fallbacks;
    out.failures += s.failures;
    out.nodes.push_back(s);
  }
  return out;
}

}  // namespace moirai::numa
