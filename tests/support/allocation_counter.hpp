// Test support: counts heap allocations (allocation_hooks.hpp); count_allocations() runs a body once to warm
// up, then again with the counter armed. Include it in exactly one source file of a test executable: it
// defines the replacement functions.
#pragma once

#include <cstdint>

#include "allocation_hooks.hpp"
#include "moirai/core/runtime.hpp"
#include "moirai/core/task.hpp"

namespace moirai_test {

struct Counted {
  std::uint64_t allocations = 0;
  std::uint64_t sum = 0;
};

// Runs body(1000) to warm up (pools, queues and timer heap reach their working size), then body(100000)
// with the counter armed, on a runtime of two shards; `sum` adds both results, to prove the work ran.
template <class Body>
Counted count_allocations(Body body) {
  moirai::RuntimeOptions o;
  o.cpus = {0, 1};
  o.idle = moirai::IdleStrategy::spin_then_sleep;
  moirai::Runtime rt(o);
  Counted c;
  rt.run([&]() -> moirai::Task<void> {
    c.sum += co_await body(1000);
    g_allocations.store(0);
    g_counting.store(true);
    c.sum += co_await body(100'000);
    g_counting.store(false);
    c.allocations = g_allocations.load();
  });
  return c;
}

}  // namespace moirai_test
