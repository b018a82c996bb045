// RunQueue: the order it serves runnables in, per class and across classes, through growth, with its counts,
// and against a reference model over long random runs. The handles are fake addresses, never resumed: the
// queue only stores and returns them.
#include "moirai/core/detail/run_queue.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <deque>
#include <limits>
#include <map>
#include <random>
#include <tuple>
#include <utility>
#include <vector>

namespace {

using moirai::detail::Runnable;
using moirai::detail::RunQueue;
using moirai::detail::SchedClass;
using moirai::detail::TaskControl;

std::coroutine_handle<> fake_handle(std::size_t i) {
  return std::coroutine_handle<>::from_address(reinterpret_cast<void*>(i * 16 + 16));
}

std::size_t id_of(const Runnable& r) {
  return (reinterpret_cast<std::uintptr_t>(r.handle.address()) - 16) / 16;
}

// Tasks whose SchedParams the tests set; runnable i carries handle i and task i, so a popped runnable says
// which one it was and that its task came back with it.
struct Fixture {
  explicit Fixture(std::size_t n) : tasks(n) {}

  Runnable runnable(std::size_t i) { return {fake_handle(i), &tasks[i]}; }
  TaskControl& set(std::size_t i, SchedClass c, std::int64_t key = 0, std::uint8_t priority = 0) {
    tasks[i].sched.cls = c;
    tasks[i].sched.key = key;
    tasks[i].sched.priority = priority;
    return tasks[i];
  }

  std::vector<std::size_t> drain(RunQueue& q) {
    std::vector<std::size_t> out;
    while (!q.empty()) {
      const Runnable r = q.pop();
      const std::size_t id = id_of(r);
      EXPECT_EQ(r.task, &tasks[id]) << "runnable " << id << " came back with another task";
      out.push_back(id);
    }
    return out;
  }

  std::vector<TaskControl> tasks;
};

TEST(RunQueue, BestEffortIsFifo) {
  Fixture f(100);
  RunQueue q(16);
  for (std::size_t i = 0; i < 100; ++i)
    q.push(f.runnable(i));  // default SchedParams: best effort
  std::vector<std::size_t> want(100);
  for (std::size_t i = 0; i < 100; ++i)
    want[i] = i;
  EXPECT_EQ(f.drain(q), want);
}

TEST(RunQueue, NullTaskRunnablesAreBestEffort) {
  Fixture f(4);
  RunQueue q;
  f.set(0, SchedClass::fixed_priority, 0, 7);
  q.push({fake_handle(10), nullptr});
  q.push(f.runnable(0));
  q.push({fake_handle(11), nullptr});
  EXPECT_EQ(q.size(SchedClass::best_effort), 2u);
  EXPECT_EQ(q.size(SchedClass::fixed_priority), 1u);
  EXPECT_EQ(id_of(q.pop()), 0u);
  Runnable r = q.pop();
  EXPECT_EQ(id_of(r), 10u);
  EXPECT_EQ(r.task, nullptr);
  q.push_front({fake_handle(12), nullptr});
  EXPECT_EQ(id_of(q.pop()), 12u);
  EXPECT_EQ(id_of(q.pop()), 11u);
  EXPECT_TRUE(q.empty());
}

TEST(RunQueue, DeadlineIsEarliestFirstWithFifoTies) {
  Fixture f(8);
  RunQueue q;
  const std::int64_t keys[] = {500, 100, 300, 100, 200, 500, 100, 50};
  for (std::size_t i = 0; i < 8; ++i) {
    f.set(i, SchedClass::deadline, keys[i]);
    q.push(f.runnable(i));
  }
  EXPECT_EQ(f.drain(q), (std::vector<std::size_t>{7, 1, 3, 6, 4, 2, 0, 5}));
}

TEST(RunQueue, NegativeDeadlinesOrderBeforePositive) {
  Fixture f(3);
  RunQueue q;
  f.set(0, SchedClass::deadline, 5);
  f.set(1, SchedClass::deadline, -5);
  f.set(2, SchedClass::deadline, 0);
  for (std::size_t i = 0; i < 3; ++i)
    q.push(f.runnable(i));
  EXPECT_EQ(f.drain(q), (std::vector<std::size_t>{1, 2, 0}));
}

TEST(RunQueue, RateMonotonicIsShortestPeriodFirstWithFifoTies) {
  Fixture f(6);
  RunQueue q;
  const std::int64_t periods[] = {10'000'000, 1'000'000, 10'000'000, 5'000'000, 1'000'000, 2'000'000};
  for (std::size_t i = 0; i < 6; ++i) {
    f.set(i, SchedClass::rate_monotonic, periods[i]);
    q.push(f.runnable(i));
  }
  EXPECT_EQ(f.drain(q), (std::vector<std::size_t>{1, 4, 5, 3, 0, 2}));
}

TEST(RunQueue, HeapClassesIgnoreFrontForOrder) {
  Fixture f(4);
  RunQueue q;
  f.set(0, SchedClass::deadline, 10);
  f.set(1, SchedClass::deadline, 10);
  f.set(2, SchedClass::deadline, 5);
  f.set(3, SchedClass::rate_monotonic, 1);
  q.push(f.runnable(0));
  q.push_front(f.runnable(1));  // same key, later arrival: still after 0
  q.push_front(f.runnable(3));
  q.push(f.runnable(2));
  EXPECT_EQ(f.drain(q), (std::vector<std::size_t>{2, 0, 1, 3}));
}

TEST(RunQueue, FixedPriorityIsHighestLevelFirstFifoWithinLevel) {
  Fixture f(10);
  RunQueue q;
  // Levels in every bitmap word, including both ends of the range.
  const std::uint8_t levels[] = {3, 200, 3, 0, 255, 64, 63, 200, 128, 0};
  for (std::size_t i = 0; i < 10; ++i) {
    f.set(i, SchedClass::fixed_priority, 0, levels[i]);
    q.push(f.runnable(i));
  }
  EXPECT_EQ(f.drain(q), (std::vector<std::size_t>{4, 1, 7, 8, 5, 6, 0, 2, 3, 9}));
}

TEST(RunQueue, PushFrontGoesToTheFrontOfItsLevelOnly) {
  Fixture f(6);
  RunQueue q;
  f.set(0, SchedClass::fixed_priority, 0, 5);
  f.set(1, SchedClass::fixed_priority, 0, 5);
  f.set(2, SchedClass::fixed_priority, 0, 9);
  f.set(3, SchedClass::fixed_priority, 0, 5);  // the round-robin task yielding with slice left
  f.set(4, SchedClass::fixed_priority, 0, 1);
  q.push(f.runnable(0));
  q.push(f.runnable(1));
  q.push(f.runnable(2));
  q.push(f.runnable(4));
  q.push_front(f.runnable(3));
  EXPECT_EQ(f.drain(q), (std::vector<std::size_t>{2, 3, 0, 1, 4}));
}

TEST(RunQueue, PushFrontOnAnEmptyLevelAndOnBestEffort) {
  Fixture f(4);
  RunQueue q;
  f.set(0, SchedClass::fixed_priority, 0, 42);
  q.push_front(f.runnable(0));  // first use of the level: allocation then a wrapping head
  q.push(f.runnable(1));
  q.push_front(f.runnable(2));
  EXPECT_EQ(f.drain(q), (std::vector<std::size_t>{0, 2, 1}));
}

TEST(RunQueue, ClassesAreServedDeadlineThenRateMonotonicThenFixedThenBestEffort) {
  Fixture f(12);
  RunQueue q;
  // Pushed interleaved, lowest class first, with keys that would invert the order if classes were ignored.
  f.set(0, SchedClass::best_effort);
  f.set(1, SchedClass::fixed_priority, 0, 1);
  f.set(2, SchedClass::rate_monotonic, 1'000'000'000);
  f.set(3, SchedClass::deadline, 1'000'000'000);
  f.set(4, SchedClass::best_effort);
  f.set(5, SchedClass::fixed_priority, 0, 255);
  f.set(6, SchedClass::rate_monotonic, 1);
  f.set(7, SchedClass::deadline, 1);
  for (std::size_t i = 0; i < 8; ++i)
    q.push(f.runnable(i));
  EXPECT_EQ(id_of(q.pop()), 7u);
  // A later arrival of a higher class jumps ahead of everything lower that is still queued.
  f.set(8, SchedClass::deadline, 2'000'000'000);
  q.push(f.runnable(8));
  EXPECT_EQ(id_of(q.pop()), 3u);
  EXPECT_EQ(id_of(q.pop()), 8u);
  EXPECT_EQ(id_of(q.pop()), 6u);
  f.set(9, SchedClass::fixed_priority, 0, 100);
  q.push(f.runnable(9));
  EXPECT_EQ(id_of(q.pop()), 2u);
  EXPECT_EQ(f.drain(q), (std::vector<std::size_t>{5, 9, 1, 0, 4}));
}

TEST(RunQueue, CountsPerClassAndInTotal) {
  Fixture f(10);
  RunQueue q;
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.size(), 0u);
  const SchedClass classes[] = {SchedClass::deadline,       SchedClass::deadline,
                                SchedClass::rate_monotonic, SchedClass::fixed_priority,
                                SchedClass::best_effort,    SchedClass::fixed_priority,
                                SchedClass::fixed_priority};
  for (std::size_t i = 0; i < 7; ++i) {
    f.set(i, classes[i], static_cast<std::int64_t>(i), static_cast<std::uint8_t>(i));
    q.push(f.runnable(i));
  }
  q.push({fake_handle(9), nullptr});
  EXPECT_FALSE(q.empty());
  EXPECT_EQ(q.size(), 8u);
  EXPECT_EQ(q.size(SchedClass::deadline), 2u);
  EXPECT_EQ(q.size(SchedClass::rate_monotonic), 1u);
  EXPECT_EQ(q.size(SchedClass::fixed_priority), 3u);
  EXPECT_EQ(q.size(SchedClass::best_effort), 2u);
  q.pop();
  q.pop();
  EXPECT_EQ(q.size(SchedClass::deadline), 0u);
  q.pop();
  EXPECT_EQ(q.size(SchedClass::rate_monotonic), 0u);
  q.pop();
  EXPECT_EQ(q.size(SchedClass::fixed_priority), 2u);
  EXPECT_EQ(q.size(), 4u);
  while (!q.empty())
    q.pop();
  for (SchedClass c : {SchedClass::deadline, SchedClass::rate_monotonic, SchedClass::fixed_priority,
                       SchedClass::best_effort})
    EXPECT_EQ(q.size(c), 0u);
  // Usable again after draining, from every class.
  q.push(f.runnable(0));
  q.push(f.runnable(3));
  q.push(f.runnable(4));
  EXPECT_EQ(f.drain(q), (std::vector<std::size_t>{0, 3, 4}));
}

// The key a runnable was queued with is the one it is ordered by: changing the task's SchedParams while it
// waits (the shard sets the next job's deadline only when it runs) does not corrupt the heap.
TEST(RunQueue, OrderUsesTheKeyAtPushTime) {
  Fixture f(3);
  RunQueue q;
  f.set(0, SchedClass::deadline, 30);
  f.set(1, SchedClass::deadline, 10);
  f.set(2, SchedClass::deadline, 20);
  for (std::size_t i = 0; i < 3; ++i)
    q.push(f.runnable(i));
  f.tasks[1].sched.key = 1000;
  f.tasks[0].sched.key = -1000;
  EXPECT_EQ(f.drain(q), (std::vector<std::size_t>{1, 2, 0}));
}

// 10,000 runnables per class from a queue whose initial sizes are far smaller: every class grows several
// times and the order holds.
TEST(RunQueue, GrowthKeepsOrderInEveryClass) {
  constexpr std::size_t kN = 10'000;
  std::mt19937_64 rng(12345);
  for (SchedClass c : {SchedClass::deadline, SchedClass::rate_monotonic, SchedClass::fixed_priority,
                       SchedClass::best_effort}) {
    SCOPED_TRACE(static_cast<int>(c));
    Fixture f(kN);
    RunQueue q(16);
    std::vector<std::tuple<std::int64_t, std::size_t>> want;  // (order key, arrival)
    for (std::size_t i = 0; i < kN; ++i) {
      const std::int64_t key = static_cast<std::int64_t>(rng() % 5000) - 2500;  // plenty of ties
      const auto level = static_cast<std::uint8_t>(rng());
      f.set(i, c, key, level);
      q.push(f.runnable(i));
      switch (c) {
        case SchedClass::deadline:
        case SchedClass::rate_monotonic:
          want.emplace_back(key, i);
          break;
        case SchedClass::fixed_priority:
          want.emplace_back(-static_cast<std::int64_t>(level), i);
          break;
        case SchedClass::best_effort:
          want.emplace_back(0, i);
          break;
      }
    }
    EXPECT_EQ(q.size(), kN);
    EXPECT_EQ(q.size(c), kN);
    std::sort(want.begin(), want.end());
    std::vector<std::size_t> want_ids;
    for (const auto& w : want)
      want_ids.push_back(std::get<1>(w));
    EXPECT_EQ(f.drain(q), want_ids);
  }
}

// The same ring wrapping many times at a steady size, then growing while its head sits mid-array (the copy
// must unwrap it), with push_front in the mix.
TEST(RunQueue, RingsGrowWhileWrapped) {
  Fixture f(1);
  RunQueue q(16);
  std::deque<std::size_t> model;
  std::size_t next = 0;
  for (int round = 0; round < 200; ++round) {
    for (int i = 0; i < 10; ++i) {
      q.push({fake_handle(next), nullptr});
      model.push_back(next++);
    }
    q.push_front({fake_handle(next), nullptr});
    model.push_front(next++);
    for (int i = 0; i < 9; ++i) {
      ASSERT_EQ(id_of(q.pop()), model.front());
      model.pop_front();
    }
  }
  while (!q.empty()) {
    ASSERT_EQ(id_of(q.pop()), model.front());
    model.pop_front();
  }
  EXPECT_TRUE(model.empty());
}

// The reference: one ordered map over (class rank, level-or-key, sequence), where sequence counts up for push
// and down for push_front, so the front of a level is whoever was put in front last.
struct Model {
  using Key = std::tuple<int, std::int64_t, std::int64_t>;
  std::map<Key, std::size_t> items;
  std::int64_t back_seq = 0;
  std::int64_t front_seq = 0;

  static int rank(SchedClass c) {
    switch (c) {
      case SchedClass::deadline:
        return 0;
      case SchedClass::rate_monotonic:
        return 1;
      case SchedClass::fixed_priority:
        return 2;
      case SchedClass::best_effort:
        return 3;
    }
    return 3;
  }

  void push(const TaskControl* t, std::size_t id, bool front) {
    const SchedClass c = t == nullptr ? SchedClass::best_effort : t->sched.cls;
    std::int64_t order = 0;
    if (c == SchedClass::deadline || c == SchedClass::rate_monotonic) order = t->sched.key;
    if (c == SchedClass::fixed_priority) order = -static_cast<std::int64_t>(t->sched.priority);
    // The heap classes order by key then arrival whatever the end asked for.
    const bool heap = c == SchedClass::deadline || c == SchedClass::rate_monotonic;
    const std::int64_t seq = front && !heap ? --front_seq : ++back_seq;
    items.emplace(Key{rank(c), order, seq}, id);
  }
  std::size_t pop() {
    auto it = items.begin();
    const std::size_t id = it->second;
    items.erase(it);
    return id;
  }
  std::size_t count(SchedClass c) const {
    return static_cast<std::size_t>(std::count_if(
        items.begin(), items.end(), [&](const auto& kv) { return std::get<0>(kv.first) == rank(c); }));
  }
};

// Random pushes (either end, every class, with and without a task) and pops, checked against the model at
// every step; `draw_key` gives each push its deadline or period.
template <typename DrawKey>
void run_against_model(std::uint64_t seed, DrawKey draw_key) {
  std::mt19937_64 rng(seed);
  constexpr std::size_t kOps = 60'000;
  // Each push gets its own task record, so the record a popped runnable returns identifies the push.
  Fixture f(kOps);
  RunQueue q(16);
  std::vector<bool> had_task(kOps);
  Model m;
  std::size_t pushed = 0;
  // Phases of different pressure: mostly pushing (growth), balanced, mostly popping (draining).
  for (std::size_t op = 0; op < kOps; ++op) {
    const unsigned push_pct = op < kOps / 3 ? 70 : op < 2 * kOps / 3 ? 50 : 30;
    if (m.items.empty() || rng() % 100 < push_pct) {
      const std::size_t id = pushed++;
      const unsigned what = static_cast<unsigned>(rng() % 100);
      const bool front = rng() % 4 == 0;
      const std::int64_t key = draw_key(rng, op);
      const auto level = static_cast<std::uint8_t>(rng() % 8 == 0 ? rng() : rng() % 4);
      Runnable r = f.runnable(id);
      if (what < 10) {
        r.task = nullptr;  // a plain resumption with no task
      } else {
        const SchedClass c = what < 30   ? SchedClass::deadline
                             : what < 50 ? SchedClass::rate_monotonic
                             : what < 75 ? SchedClass::fixed_priority
                                         : SchedClass::best_effort;
        f.set(id, c, key, level);
        had_task[id] = true;
      }
      if (front) {
        q.push_front(r);
      } else {
        q.push(r);
      }
      m.push(r.task, id, front);
    } else {
      ASSERT_FALSE(q.empty());
      const Runnable r = q.pop();
      const std::size_t want = m.pop();
      ASSERT_EQ(id_of(r), want) << "at op " << op;
      ASSERT_EQ(r.task, had_task[want] ? &f.tasks[want] : nullptr);
    }
    ASSERT_EQ(q.size(), m.items.size());
    if (op % 997 == 0) {
      for (SchedClass c : {SchedClass::deadline, SchedClass::rate_monotonic, SchedClass::fixed_priority,
                           SchedClass::best_effort})
        ASSERT_EQ(q.size(c), m.count(c));
    }
  }
  while (!m.items.empty())
    ASSERT_EQ(id_of(q.pop()), m.pop());
  EXPECT_TRUE(q.empty());
}

TEST(RunQueue, MatchesAReferenceModelOverRandomOperations) {
  for (std::uint64_t seed : {1u, 2u, 3u, 4u, 5u}) {
    SCOPED_TRACE(seed);
    // A small range: many ties.
    run_against_model(
        seed, [](std::mt19937_64& rng, std::size_t) { return static_cast<std::int64_t>(rng() % 64); });
  }
}

// More distinct periods than the rate-monotonic table holds, drawn from ranges that shift between phases: the
// table fills, spills to its heap, reclaims emptied periods and takes new ones while the heap drains. The
// deadlines span the whole key range, negatives and extremes included.
TEST(RunQueue, MatchesAReferenceModelWithManyDistinctKeys) {
  for (std::uint64_t seed : {6u, 7u, 8u}) {
    SCOPED_TRACE(seed);
    run_against_model(seed, [](std::mt19937_64& rng, std::size_t op) {
      const std::int64_t base = static_cast<std::int64_t>(op / 5000) * 37;
      switch (rng() % 8) {
        case 0:
          return static_cast<std::int64_t>(rng());  // anywhere, INT64_MIN .. INT64_MAX
        case 1:
          return rng() % 2 == 0 ? std::numeric_limits<std::int64_t>::min()
                                : std::numeric_limits<std::int64_t>::max();
        default:
          return base + static_cast<std::int64_t>(rng() % 80);  // a few more than the table: repeats
      }
    });
  }
}

// Deadlines as a live EDF shard makes them, "now + relative deadline" with a clock that advances, with an
// occasional deadline earlier than everything queued and runs of equal deadlines.
TEST(RunQueue, MatchesAReferenceModelWithAdvancingDeadlines) {
  for (std::uint64_t seed : {9u, 10u, 11u}) {
    SCOPED_TRACE(seed);
    run_against_model(seed, [](std::mt19937_64& rng, std::size_t op) {
      const auto now = static_cast<std::int64_t>(op) * 100;
      switch (rng() % 16) {
        case 0:
          return now - 1'000'000;  // long overdue: before everything queued
        case 1:
          return now + 5'000;  // shared by every push of this op: ties
        default:
          return now + static_cast<std::int64_t>(rng() % 100'000);
      }
    });
  }
}

// Deadline patterns a calendar could get wrong or slow: all equal, ever earlier, spread over the whole range,
// crowded into one bucket after the buckets were made wide, at the very top of the range (where a window
// of buckets wraps around 2^64), and a scale that changes between phases. Each is served mixed with the
// other classes.
TEST(RunQueue, MatchesAReferenceModelWithAdversarialDeadlines) {
  using Limits = std::numeric_limits<std::int64_t>;
  run_against_model(12, [](std::mt19937_64&, std::size_t) { return std::int64_t{7}; });
  run_against_model(13,
                    [](std::mt19937_64&, std::size_t op) { return -static_cast<std::int64_t>(op) * 1000; });
  run_against_model(14, [](std::mt19937_64& rng, std::size_t) { return static_cast<std::int64_t>(rng()); });
  run_against_model(15, [](std::mt19937_64& rng, std::size_t) {
    return Limits::max() - static_cast<std::int64_t>(rng() % 5000);
  });
  run_against_model(16, [](std::mt19937_64& rng, std::size_t op) {
    return op < 3000 ? static_cast<std::int64_t>(rng()) : static_cast<std::int64_t>(rng() % 500);
  });
  run_against_model(17, [](std::mt19937_64& rng, std::size_t op) {
    const unsigned scale = static_cast<unsigned>(op / 7000) * 7;           // 2^0 .. 2^56
    return static_cast<std::int64_t>(op * 100 + (rng() % 1000 << scale));  // wraps on purpose: anywhere
  });
}

// The deadline class alone against a map over (deadline, arrival), which is exactly EDF with FIFO ties,
// through growth far past every initial size, and drained to empty and refilled between phases.
template <typename DrawKey>
void run_deadlines_against_map(std::uint64_t seed, DrawKey draw_key) {
  std::mt19937_64 rng(seed);
  constexpr std::size_t kOps = 40'000;
  Fixture f(kOps);
  RunQueue q(16);
  std::map<std::pair<std::int64_t, std::size_t>, std::size_t> m;  // (key, arrival) -> id
  std::size_t pushed = 0;
  for (std::size_t op = 0; op < kOps; ++op) {
    // Phases: fill to ~10,000, churn, drain to empty, churn small.
    const unsigned push_pct = op < 12'000 ? 90 : op < 24'000 ? 50 : op < 32'000 ? 10 : 50;
    if (m.empty() || rng() % 100 < push_pct) {
      const std::size_t id = pushed++;
      const std::int64_t key = draw_key(rng, op);
      f.set(id, SchedClass::deadline, key);
      if (rng() % 4 == 0) {
        q.push_front(f.runnable(id));  // documented to behave as push for this class
      } else {
        q.push(f.runnable(id));
      }
      m.emplace(std::pair{key, id}, id);
    } else {
      const Runnable r = q.pop();
      const auto it = m.begin();
      ASSERT_EQ(id_of(r), it->second) << "at op " << op << ", want key " << it->first.first << ", got key "
                                      << f.tasks[id_of(r)].sched.key;
      ASSERT_EQ(r.task, &f.tasks[it->second]);
      m.erase(it);
    }
    ASSERT_EQ(q.size(), m.size());
    ASSERT_EQ(q.size(SchedClass::deadline), m.size());
  }
  while (!m.empty()) {
    ASSERT_EQ(id_of(q.pop()), m.begin()->second);
    m.erase(m.begin());
  }
  EXPECT_TRUE(q.empty());
}

TEST(RunQueue, DeadlinesMatchAMapUnderEveryKeyPattern) {
  using Limits = std::numeric_limits<std::int64_t>;
  struct Pattern {
    const char* name;
    std::int64_t (*draw)(std::mt19937_64&, std::size_t);
  };
  const Pattern patterns[] = {
      {"live",
       [](std::mt19937_64& rng, std::size_t op) {
         return static_cast<std::int64_t>(op) * 100 + static_cast<std::int64_t>(rng() % 100'000);
       }},
      {"live with overdue and far jobs",
       [](std::mt19937_64& rng, std::size_t op) {
         const auto now = static_cast<std::int64_t>(op) * 100;
         switch (rng() % 32) {
           case 0:
             return now - 10'000'000;
           case 1:
             return now + 1'000'000'000'000;
           default:
             return now + static_cast<std::int64_t>(rng() % 100'000);
         }
       }},
      {"negative",
       [](std::mt19937_64& rng, std::size_t op) {
         return Limits::min() / 2 + static_cast<std::int64_t>(op) * 100 +
                static_cast<std::int64_t>(rng() % 100'000);
       }},
      {"full range", [](std::mt19937_64& rng, std::size_t) { return static_cast<std::int64_t>(rng()); }},
      {"extremes",
       [](std::mt19937_64& rng, std::size_t) {
         const std::int64_t v[] = {Limits::min(),     Limits::min() + 1, -1, 0, 1,
                                   Limits::max() - 1, Limits::max()};
         return v[rng() % 7];
       }},
      {"all equal", [](std::mt19937_64&, std::size_t) { return std::int64_t{-3}; }},
      {"few values",
       [](std::mt19937_64& rng, std::size_t) { return static_cast<std::int64_t>(rng() % 4) * 1000; }},
      {"decreasing", [](std::mt19937_64&, std::size_t op) { return -static_cast<std::int64_t>(op) * 37; }},
      {"increasing", [](std::mt19937_64&, std::size_t op) { return static_cast<std::int64_t>(op) * 37; }},
      {"top of the range",
       [](std::mt19937_64& rng, std::size_t) {
         return Limits::max() - static_cast<std::int64_t>(rng() % 3000);
       }},
      {"bottom of the range",
       [](std::mt19937_64& rng, std::size_t) {
         return Limits::min() + static_cast<std::int64_t>(rng() % 3000);
       }},
      // Wide buckets from a spread-out start, then thousands of distinct and repeated keys in one of them:
      // long walks in a bucket, runnables sent to the overflow heap, ties split between the two.
      {"crowded after wide",
       [](std::mt19937_64& rng, std::size_t op) {
         return op < 2000 ? static_cast<std::int64_t>(rng()) : static_cast<std::int64_t>(rng() % 700);
       }},
      {"changing scale",
       [](std::mt19937_64& rng, std::size_t op) {
         const unsigned scale = static_cast<unsigned>(op / 5000) * 8;     // 2^0 .. 2^56
         return static_cast<std::int64_t>((rng() % 1000 << scale) - op);  // wraps on purpose: anywhere
       }},
      {"two clusters far apart",
       [](std::mt19937_64& rng, std::size_t op) {
         const auto near = static_cast<std::int64_t>(op) * 10 + static_cast<std::int64_t>(rng() % 10'000);
         return rng() % 2 == 0 ? near : near + (std::int64_t{1} << 50);
       }},
  };
  std::uint64_t seed = 100;
  for (const Pattern& p : patterns) {
    SCOPED_TRACE(p.name);
    run_deadlines_against_map(seed++, p.draw);
  }
}

// Equal deadlines leave in arrival order however many share one and wherever they are kept: a run of ties
// long enough to grow every structure, mixed with earlier and later deadlines pushed in between.
TEST(RunQueue, ManyEqualDeadlinesStayFifo) {
  constexpr std::size_t kN = 20'000;
  Fixture f(kN);
  RunQueue q(16);
  std::vector<std::tuple<std::int64_t, std::size_t>> want;
  std::mt19937_64 rng(99);
  for (std::size_t i = 0; i < kN; ++i) {
    const std::int64_t key = i % 3 == 0 ? 1'000 : static_cast<std::int64_t>(rng() % 2001);
    f.set(i, SchedClass::deadline, key);
    q.push(f.runnable(i));
    want.emplace_back(key, i);
  }
  std::sort(want.begin(), want.end());
  std::vector<std::size_t> want_ids;
  for (const auto& w : want)
    want_ids.push_back(std::get<1>(w));
  EXPECT_EQ(f.drain(q), want_ids);
}

// Exactly the table's worth of distinct periods, then one more shorter than all (to the heap), then the
// periods in the table again: the heap's runnable leaves first, each period in arrival order.
TEST(RunQueue, RateMonotonicBeyondItsPeriodTable) {
  Fixture f(300);
  RunQueue q;
  std::vector<std::tuple<std::int64_t, std::size_t>> want;
  std::size_t id = 0;
  auto push = [&](std::int64_t period) {
    f.set(id, SchedClass::rate_monotonic, period);
    q.push(f.runnable(id));
    want.emplace_back(period, id);
    ++id;
  };
  for (std::int64_t p = 64; p >= 1; --p)
    push(p * 1000);
  push(5);      // no rank left: the heap
  push(64500);  // the heap, between two table periods
  push(64500);
  for (std::int64_t p = 1; p <= 64; p += 3)
    push(p * 1000);
  push(5);
  std::sort(want.begin(), want.end());
  std::vector<std::size_t> want_ids;
  for (const auto& w : want)
    want_ids.push_back(std::get<1>(w));
  EXPECT_EQ(f.drain(q), want_ids);
  // A period waiting in the heap stays there while the heap holds anything: had its next runnable taken the
  // rank that popping 1000 freed, it would leave before the one queued earlier.
  want.clear();
  for (std::int64_t p = 1; p <= 64; ++p)
    push(p * 1000);
  push(70'000);
  EXPECT_EQ(id_of(q.pop()), id - 65);  // period 1000: its rank is empty now
  want.erase(want.begin());
  push(70'000);
  std::sort(want.begin(), want.end());
  want_ids.clear();
  for (const auto& w : want)
    want_ids.push_back(std::get<1>(w));
  EXPECT_EQ(f.drain(q), want_ids);
  // Drained: a fresh set of periods reclaims the empty ranks.
  want.clear();
  for (std::int64_t p = 100; p > 0; --p)
    push(p * 7);
  std::sort(want.begin(), want.end());
  want_ids.clear();
  for (const auto& w : want)
    want_ids.push_back(std::get<1>(w));
  EXPECT_EQ(f.drain(q), want_ids);
}

}  // namespace
