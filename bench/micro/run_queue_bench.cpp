// The policy run queue, one push and one pop per iteration, per scheduling class, with 0 or 1000 runnables
// already queued, beside a plain FIFO ring (BM_Baseline_Ring_PushPop): the best-effort rows
// must cost what the ring costs, the others at most 20 ns with 1000 queued. The deadline class is also run
// under adversarial key patterns (BM_RunQueue_Deadline_Pattern).
#include <benchmark/benchmark.h>

#include <bit>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <vector>

#include "moirai/core/detail/run_queue.hpp"

namespace {

using moirai::detail::Runnable;
using moirai::detail::RunQueue;
using moirai::detail::SchedClass;
using moirai::detail::TaskControl;

// A run queue without scheduling classes: a growable power-of-two FIFO ring.
class BaselineRing {
 public:
  explicit BaselineRing(std::size_t capacity = 4096) {
    const std::size_t cap = std::bit_ceil(capacity < 16 ? std::size_t{16} : capacity);
    items_ = std::make_unique<Runnable[]>(cap);
    mask_ = cap - 1;
  }
  bool empty() const noexcept { return head_ == tail_; }
  void push(Runnable r) {
    if (tail_ - head_ == mask_ + 1) [[unlikely]]
      grow();
    items_[tail_++ & mask_] = r;
  }
  Runnable pop() noexcept { return items_[head_++ & mask_]; }

 private:
  void grow() {
    const std::size_t cap = (mask_ + 1) * 2;
    auto bigger = std::make_unique<Runnable[]>(cap);
    std::size_t n = 0;
    for (std::size_t i = head_; i != tail_; ++i)
      bigger[n++] = items_[i & mask_];
    items_ = std::move(bigger);
    mask_ = cap - 1;
    head_ = 0;
    tail_ = n;
  }

  std::unique_ptr<Runnable[]> items_;
  std::size_t mask_ = 0;
  std::size_t head_ = 0;
  std::size_t tail_ = 0;
};

std::coroutine_handle<> fake_handle(std::size_t i) {
  return std::coroutine_handle<>::from_address(reinterpret_cast<void*>(i * 16 + 16));
}

// A cheap, well-mixed stream for keys and levels (SplitMix64's finaliser over a counter).
std::uint64_t mix(std::uint64_t x) noexcept {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// Sets task t's ordering for the i-th runnable of class c. Deadlines are "now + relative deadline" with a
// clock that advances by 100 ns per runnable, as in a live EDF shard, so the heap's contents stay stationary
// instead of silting up with the largest keys; periods come from 64 distinct values; levels from all 256.
void give_order(TaskControl& t, SchedClass c, std::uint64_t i) noexcept {
  const std::uint64_t h = mix(i);
  t.sched.cls = c;
  switch (c) {
    case SchedClass::deadline:
      t.sched.key = static_cast<std::int64_t>(i * 100 + h % 100'000);
      break;
    case SchedClass::rate_monotonic:
      t.sched.key = static_cast<std::int64_t>((1 + h % 64) * 1'000'000);
      break;
    case SchedClass::fixed_priority:
      t.sched.priority = static_cast<std::uint8_t>(h);
      break;
    case SchedClass::best_effort:
      break;
  }
}

void BM_RunQueue_PushPop(benchmark::State& state, SchedClass c) {
  const auto queued = static_cast<std::size_t>(state.range(0));
  constexpr std::size_t kPool = 64;  // task records the timed pushes cycle through
  std::vector<TaskControl> tasks(queued + kPool);
  RunQueue q;
  std::uint64_t i = 0;
  for (; i < queued; ++i) {
    give_order(tasks[i], c, i);
    q.push({fake_handle(i), &tasks[i]});
  }
  TaskControl* pool = tasks.data() + queued;
  for (auto _ : state) {
    TaskControl& t = pool[i % kPool];
    give_order(t, c, i);
    q.push({fake_handle(i), &t});
    benchmark::DoNotOptimize(q.pop());
    ++i;
  }
}
BENCHMARK_CAPTURE(BM_RunQueue_PushPop, deadline, SchedClass::deadline)->Arg(0)->Arg(1000);
BENCHMARK_CAPTURE(BM_RunQueue_PushPop, rate_monotonic, SchedClass::rate_monotonic)->Arg(0)->Arg(1000);
BENCHMARK_CAPTURE(BM_RunQueue_PushPop, fixed_priority, SchedClass::fixed_priority)->Arg(0)->Arg(1000);
BENCHMARK_CAPTURE(BM_RunQueue_PushPop, best_effort, SchedClass::best_effort)->Arg(0)->Arg(1000);

// The deadline class under key patterns other than a live shard's, so that what the calendar does not
// suit shows: every pattern is served exactly, some at about the heap's cost. The first is give_order's
// pattern again, for reference.
enum class DeadlinePattern {
  live,         // now + uniform(0 .. 100 us), the clock advancing 100 ns per push
  negative,     // the same, shifted to around INT64_MIN / 2
  full_range,   // uniform over INT64_MIN .. INT64_MAX
  all_equal,    // one deadline for everyone: FIFO
  decreasing,   // every push earlier than everything queued
  far_outliers  // live, but 1 push in 16 at now + 1000 s (a job far in the future)
};

std::int64_t deadline_key(DeadlinePattern p, std::uint64_t i) noexcept {
  const std::uint64_t h = mix(i);
  const auto live = static_cast<std::int64_t>(i * 100 + h % 100'000);
  switch (p) {
    case DeadlinePattern::live:
      return live;
    case DeadlinePattern::negative:
      return live + std::numeric_limits<std::int64_t>::min() / 2;
    case DeadlinePattern::full_range:
      return static_cast<std::int64_t>(h);
    case DeadlinePattern::all_equal:
      return 42;
    case DeadlinePattern::decreasing:
      return -static_cast<std::int64_t>(i) * 100;
    case DeadlinePattern::far_outliers:
      return h % 16 == 0 ? live + 1'000'000'000'000 : live;
  }
  return 0;
}

void BM_RunQueue_Deadline_Pattern(benchmark::State& state, DeadlinePattern p) {
  const auto queued = static_cast<std::size_t>(state.range(0));
  constexpr std::size_t kPool = 64;
  std::vector<TaskControl> tasks(queued + kPool);
  RunQueue q;
  std::uint64_t i = 0;
  for (; i < queued; ++i) {
    tasks[i].sched.cls = SchedClass::deadline;
    tasks[i].sched.key = deadline_key(p, i);
    q.push({fake_handle(i), &tasks[i]});
  }
  TaskControl* pool = tasks.data() + queued;
  for (auto _ : state) {
    TaskControl& t = pool[i % kPool];
    t.sched.cls = SchedClass::deadline;
    t.sched.key = deadline_key(p, i);
    q.push({fake_handle(i), &t});
    benchmark::DoNotOptimize(q.pop());
    ++i;
  }
}
BENCHMARK_CAPTURE(BM_RunQueue_Deadline_Pattern, live, DeadlinePattern::live)->Arg(1000);
BENCHMARK_CAPTURE(BM_RunQueue_Deadline_Pattern, negative, DeadlinePattern::negative)->Arg(1000);
BENCHMARK_CAPTURE(BM_RunQueue_Deadline_Pattern, full_range, DeadlinePattern::full_range)->Arg(1000);
BENCHMARK_CAPTURE(BM_RunQueue_Deadline_Pattern, all_equal, DeadlinePattern::all_equal)->Arg(1000);
BENCHMARK_CAPTURE(BM_RunQueue_Deadline_Pattern, decreasing, DeadlinePattern::decreasing)->Arg(1000);
BENCHMARK_CAPTURE(BM_RunQueue_Deadline_Pattern, far_outliers, DeadlinePattern::far_outliers)->Arg(1000);

// The shard's common case: resumptions with no task record at all.
void BM_RunQueue_PushPop_NullTask(benchmark::State& state) {
  RunQueue q;
  for (std::size_t i = 0; i < static_cast<std::size_t>(state.range(0)); ++i)
    q.push({fake_handle(i), nullptr});
  std::uint64_t i = 0;
  for (auto _ : state) {
    q.push({fake_handle(i++), nullptr});
    benchmark::DoNotOptimize(q.pop());
  }
}
BENCHMARK(BM_RunQueue_PushPop_NullTask)->Arg(0)->Arg(1000);

// The same loop as the best-effort row, task records included, over the plain ring.
void BM_Baseline_Ring_PushPop(benchmark::State& state) {
  const auto queued = static_cast<std::size_t>(state.range(0));
  constexpr std::size_t kPool = 64;
  std::vector<TaskControl> tasks(queued + kPool);
  BaselineRing q;
  std::uint64_t i = 0;
  for (; i < queued; ++i)
    q.push({fake_handle(i), &tasks[i]});
  TaskControl* pool = tasks.data() + queued;
  for (auto _ : state) {
    TaskControl& t = pool[i % kPool];
    give_order(t, SchedClass::best_effort, i);
    q.push({fake_handle(i), &t});
    benchmark::DoNotOptimize(q.pop());
    ++i;
  }
}
BENCHMARK(BM_Baseline_Ring_PushPop)->Arg(0)->Arg(1000);

}  // namespace
