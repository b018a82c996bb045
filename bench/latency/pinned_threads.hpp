// What the two-thread baselines share: threads pinned to their CPUs (and given their policy) by their creator
// before their bodies start, and the timing of round trips between two of them.
#pragma once

#include <pthread.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>
#include <utility>

#include "moirai/core/histogram.hpp"
#include "report.hpp"

namespace moirai::cli::baselines {

// Pins `thread` to `cpu`. Throws std::runtime_error naming the CPU and the reason when it cannot be.
void pin(pthread_t thread, int cpu);

// A thread that spins must stay SCHED_OTHER: under SCHED_FIFO a spinner that never blocks can starve the
// kernel's own per-CPU work on its CPU. Threads inherit the creator's policy, so this sets it explicitly;
// lowering a policy needs no privilege. Throws std::runtime_error when the kernel refuses.
void make_time_shared(pthread_t thread, int cpu);

enum class Policy { inherit, time_shared };

// A thread that is pinned (and given its policy) by its creator before its body starts: the body waits behind
// a gate until start(), so neither thread of a pair measures anything while the other may still be unpinned.
// If setting the thread up fails, the gate opens on "abort", the thread ends without running its body and the
// constructor throws; destroying a thread that was never started does the same.
class PinnedThread {
 public:
  template <class Body>
  PinnedThread(int cpu, Policy policy, Body body)
      : thread_([this, body = std::move(body)]() mutable {
          gate_.wait(kClosed, std::memory_order_acquire);
          if (gate_.load(std::memory_order_acquire) == kGo) body();
        }) {
    try {
      pin(thread_.native_handle(), cpu);
      if (policy == Policy::time_shared) make_time_shared(thread_.native_handle(), cpu);
    } catch (...) {
      open(kAbort);
      thread_.join();
      throw;
    }
  }

  PinnedThread(const PinnedThread&) = delete;
  PinnedThread& operator=(const PinnedThread&) = delete;

  ~PinnedThread() {
    if (thread_.joinable()) {
      open(kAbort);  // no effect if start() already opened it on kGo
      thread_.join();
    }
  }

  void start() noexcept { open(kGo); }
  void join() { thread_.join(); }

 private:
  static constexpr int kClosed = 0;
  static constexpr int kGo = 1;
  static constexpr int kAbort = 2;

  void open(int how) noexcept {
    int expected = kClosed;
    // Release: whatever the creator set up before start() is visible to the body, which loads with acquire.
    if (gate_.compare_exchange_strong(expected, how, std::memory_order_release)) gate_.notify_one();
  }

  // Declared before thread_ so that it exists before the thread does.
  std::atomic<int> gate_{kClosed};
  std::thread thread_;
};

inline constexpr int kPingPongWarmup = 1000;

// A warm-up of kPingPongWarmup round trips (lines of code and cache lines settle, both CPUs are awake), then
// each round trip timed (steady clock: clock_gettime(CLOCK_MONOTONIC) through the vDSO) into `hist` until
// `budget` is done. `round_trip` returns false when the peer is gone, which ends it early.
template <class RoundTrip>
void time_round_trips(const RunBudget& budget, LatencyHistogram& hist, RoundTrip round_trip) {
  for (int i = 0; i < kPingPongWarmup; ++i)
    if (!round_trip()) return;
  using Clock = std::chrono::steady_clock;
  const Clock::time_point begin = Clock::now();
  std::uint64_t iterations = 0;
  std::chrono::nanoseconds elapsed{0};
  while (!budget.done(iterations, elapsed)) {
    const Clock::time_point t0 = Clock::now();
    if (!round_trip()) return;
    const Clock::time_point t1 = Clock::now();
    hist.record(static_cast<std::uint64_t>(std::chrono::nanoseconds(t1 - t0).count()));
    ++iterations;
    elapsed = t1 - begin;
  }
}

// Throws std::invalid_argument when the two CPUs of a pair of spinning threads are one.
void check_two_cpus(int cpu_a, int cpu_b, const char* what);

}  // namespace moirai::cli::baselines
