// Zero heap allocations per task and per message in steady state: global operator new and (outside sanitizer
// builds, which own malloc) malloc itself are replaced by counting versions, and 100k spawns and 100k
// submit_to round trips run after a warm-up with the counter armed.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>

#include "moirai/core/periodic.hpp"
#include "moirai/core/runtime.hpp"
#include "moirai/core/submit.hpp"
#include "moirai/core/timer.hpp"

namespace {
std::atomic<bool> g_counting{false};
std::atomic<std::uint64_t> g_allocations{0};
void note_allocation() noexcept {
  if (g_counting.load(std::memory_order_relaxed)) g_allocations.fetch_add(1, std::memory_order_relaxed);
}
}  // namespace

void* operator new(std::size_t n) {
  note_allocation();
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) {
  return operator new(n);
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete[](void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::size_t) noexcept {
  std::free(p);
}
// std::stable_sort's buffer (the admission test's analysis) comes through the nothrow forms.
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  note_allocation();
  return std::malloc(n == 0 ? 1 : n);
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  return operator new(n, std::nothrow);
}
void operator delete(void* p, const std::nothrow_t&) noexcept {
  std::free(p);
}
void operator delete[](void* p, const std::nothrow_t&) noexcept {
  std::free(p);
}
// Over-aligned types (a histogram, a cache-line-padded record) come through these: count them too, and keep
// new and delete paired on malloc/free so the sanitizers see matching calls.
void* operator new(std::size_t n, std::align_val_t a) {
  note_allocation();
  const auto align = static_cast<std::size_t>(a);
  if (void* p = std::aligned_alloc(align, (n + align - 1) / align * align)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n, std::align_val_t a) {
  return operator new(n, a);
}
void operator delete(void* p, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept {
  std::free(p);
}

#if !defined(MOIRAI_SANITIZED)
extern "C" {
void* __libc_malloc(std::size_t);
void* __libc_calloc(std::size_t, std::size_t);
void* __libc_realloc(void*, std::size_t);
void* malloc(std::size_t n) {
  note_allocation();
  return __libc_malloc(n);
}
void* calloc(std::size_t n, std::size_t size) {
  note_allocation();
  return __libc_calloc(n, size);
}
void* realloc(void* p, std::size_t n) {
  note_allocation();
  return __libc_realloc(p, n);
}
}
#endif

namespace {

using moirai::Task;

Task<int> small_work(int x) {
  co_return x + 1;
}

struct Counted {
  std::uint64_t allocations = 0;
  std::uint64_t sum = 0;
};

template <class Body>
Counted count_allocations(Body body) {
  moirai::RuntimeOptions o;
  o.cpus = {0, 1};
  o.idle = moirai::IdleStrategy::spin_then_sleep;
  moirai::Runtime rt(o);
  Counted c;
  rt.run([&]() -> Task<void> {
    c.sum += co_await body(1000);  // warm-up: pools, queues and timer heap reach their working size
    g_allocations.store(0);
    g_counting.store(true);
    c.sum += co_await body(100'000);
    g_counting.store(false);
    c.allocations = g_allocations.load();
  });
  return c;
}

TEST(Allocations, NoneAcrossOneHundredThousandSpawns) {
  auto body = [](int n) -> Task<std::uint64_t> {
    std::uint64_t sum = 0;
    for (int i = 0; i < n; ++i)
      sum += static_cast<std::uint64_t>(co_await moirai::spawn(small_work(i)).join());
    co_return sum;
  };
  Counted c = count_allocations(body);
  EXPECT_EQ(c.allocations, 0u);
  EXPECT_GT(c.sum, 0u);  // the work really ran
}

TEST(Allocations, NoneAcrossOneHundredThousandSubmitTo) {
  auto body = [](int n) -> Task<std::uint64_t> {
    std::uint64_t sum = 0;
    for (int i = 0; i < n; ++i) {
      sum += co_await moirai::submit_to(
          1, [i] { return static_cast<std::uint64_t>(i) + moirai::this_shard_id(); });
    }
    co_return sum;
  };
  Counted c = count_allocations(body);
  EXPECT_EQ(c.allocations, 0u);
  EXPECT_GT(c.sum, 0u);
}

TEST(Allocations, NoneAcrossCrossShardTasksAndTimers) {
  auto body = [](int n) -> Task<std::uint64_t> {
    std::uint64_t sum = 0;
    for (int i = 0; i < n / 10; ++i) {
      sum += static_cast<std::uint64_t>(co_await moirai::submit_to(1, [i] { return small_work(i); }));
      co_await moirai::sleep_for(std::chrono::nanoseconds(1));
    }
    co_return sum;
  };
  Counted c = count_allocations(body);
  EXPECT_EQ(c.allocations, 0u);
  EXPECT_GT(c.sum, 0u);
}

// Real-time tasks take the same path plus their class's queue (EDF heap, priority level, period bucket):
// after the warm-up has grown those, spawning them allocates nothing either.
TEST(Allocations, NoneAcrossRealTimeSpawns) {
  auto body = [](int n) -> Task<std::uint64_t> {
    std::uint64_t sum = 0;
    for (int i = 0; i < n; ++i) {
      moirai::TaskContext ctx;
      switch (i % 3) {
        case 0:
          ctx.with_deadline(std::chrono::seconds(1));
          break;
        case 1:
          ctx.with_priority(7);
          break;
        default:
          ctx.with_round_robin(std::chrono::microseconds(100)).with_priority(3);
      }
      sum += static_cast<std::uint64_t>(co_await moirai::spawn(small_work(i), ctx).join());
    }
    co_return sum;
  };
  Counted c = count_allocations(body);
  EXPECT_EQ(c.allocations, 0u);
  EXPECT_GT(c.sum, 0u);
}

// A periodic task's releases (timer, job frame, accounting) allocate nothing once it runs.
TEST(Allocations, NoneAcrossPeriodicReleases) {
  auto body = [](int n) -> Task<std::uint64_t> {
    std::uint64_t jobs = 0;
    const int releases = n / 100;
    auto p = moirai::every(
        std::chrono::microseconds(20),
        [&jobs, releases](const moirai::JobInfo& job) {
          ++jobs;
          return job.index + 1 < static_cast<std::uint64_t>(releases);
        },
        moirai::TaskContext{}.with_period(std::chrono::microseconds(20), std::chrono::microseconds(5)));
    g_allocations.store(0);  // every() made the task's statistics record; count the releases only
    co_await p.join();
    co_return jobs;
  };
  Counted c = count_allocations(body);
  EXPECT_EQ(c.allocations, 0u);
  EXPECT_EQ(c.sum, 1000u + 10u);
}

}  // namespace
