// `moirai bench spawn`: spawn, run and join of an empty task on one shard, beside a bare C++20 coroutine
// with a malloc'd frame; and the throughput of one-way post_to from shard 0 to shard 1.
#include <coroutine>
#include <memory>
#include <string>

#include "bench.hpp"
#include "bench_support.hpp"
#include "metrics_option.hpp"
#include "moirai/core/runtime.hpp"
#include "moirai/core/submit.hpp"

namespace moirai::cli {
namespace {

using namespace detail;

Task<void> empty_task() {
  co_return;
}

// The baseline: the same coroutine without the runtime, its frame from malloc: what a bare C++20 coroutine
// costs.
struct BareCoroutine {
  struct promise_type {
    BareCoroutine get_return_object() { return {std::coroutine_handle<promise_type>::from_promise(*this)}; }
    std::suspend_always initial_suspend() noexcept { return {}; }
    std::suspend_always final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
    void unhandled_exception() noexcept {}
  };
  std::coroutine_handle<promise_type> h;
};
BareCoroutine bare_empty() {
  co_return;
}

// Operations per timed sample, so that the two clock reads around a sample are a small part of it.
constexpr std::uint64_t kBatch = 64;

void bare_coroutines(const RunBudget& budget, LatencyHistogram& hist) {
  record_batches(budget, kBatch, hist, [] {
    BareCoroutine c = bare_empty();
    c.h.resume();
    c.h.destroy();
  });
}

void moirai_spawn(const BenchOptions& o, int cpu, IdleStrategy idle, const RunBudget& budget,
                  LatencyHistogram& hist) {
  RuntimeOptions ro = bench_runtime(o, {cpu}, idle);
  Runtime rt(ro);
  rt.run([&]() -> Task<void> {
    serve_metrics_if_asked(o.metrics);
    for (int i = 0; i < 1000; ++i)
      co_await spawn(empty_task()).join();  // warm the frame pool
    TimedPasses passes(budget);
    for (std::uint64_t i = 0; passes.next(i); i += kBatch) {
      for (std::uint64_t k = 0; k < kBatch; ++k)
        co_await spawn(empty_task()).join();
      passes.record(hist, kBatch);
    }
  });
}

// One-way submit_to: posts to shard 1 back to back, letting backpressure pace the sender; a final round trip
// (ordered behind every post on the same ring) marks the end.
double moirai_throughput(const BenchOptions& o, int a, int b, IdleStrategy idle, const RunBudget& budget,
                         LatencyHistogram& hist) {
  RuntimeOptions ro = bench_runtime(o, {a, b}, idle);
  // The sender posts back to back and suspends only when the ring is full: by design it runs for milliseconds
  // without suspending, which is exactly what the stall check reports. Nothing else runs here, so turn it
  // off.
  ro.stall_budget = std::chrono::nanoseconds(0);
  Runtime rt(ro);
  double per_sec = 0;
  rt.run([&]() -> Task<void> {
    serve_metrics_if_asked(o.metrics);
    static std::uint64_t received;  // touched on shard 1 only
    constexpr std::uint64_t kSample = 1024;
    TimedPasses passes(budget);
    std::uint64_t sent = 0;
    for (; passes.next(sent); sent += kSample) {
      for (std::uint64_t k = 0; k < kSample; ++k)
        co_await post_to(1, [] { ++received; });
      passes.record(hist, kSample);
    }
    const std::uint64_t got = co_await submit_to(1, [] { return received; });
    per_sec = per_second(got, passes.start_ns());
  });
  return per_sec;
}

BenchReport bench_spawn(const BenchOptions& o) {
  const auto [a, b] = two_cpus(o);
  const IdleStrategy idle = idle_or(o, IdleStrategy::spin);
  const RunBudget budget = or_default(o.budget, 2'000'000);
  auto base = std::make_unique<LatencyHistogram>();
  auto mine = std::make_unique<LatencyHistogram>();
  auto tput = std::make_unique<LatencyHistogram>();
  for (unsigned round = 0; round < kRounds; ++round) {
    progress(o, "spawn: baseline.coroutine_malloc");
    bare_coroutines(share(budget, kRounds), *base);
    progress(o, "spawn: moirai.spawn");
    moirai_spawn(o, a, idle, share(budget, kRounds), *mine);
  }
  progress(o, "spawn: moirai.submit_to.throughput");
  const double per_sec = moirai_throughput(o, a, b, idle, or_default(o.budget, 20'000'000), *tput);
  BenchReport r;
  r.bench = "spawn";
  r.rows.push_back(summarize("baseline.coroutine_malloc", *base));
  r.rows.push_back(summarize("moirai.spawn", *mine));
  BenchRow t = summarize("moirai.submit_to.throughput", *tput);
  t.per_sec = per_sec;
  r.rows.push_back(t);
  r.note =
      "spawn: spawn + run + join of an empty task, timed in batches of 64 (ns per task); baseline: a bare "
      "C++20 coroutine with a malloc'd frame, created, resumed and destroyed. throughput: one-way post_to "
      "from shard " +
      std::to_string(a) + " to " + std::to_string(b) + " (ns per message, in samples of 1024)";
  return r;
}

}  // namespace

const LatencyBench kSpawnBench{"spawn", "Spawn-run-join of an empty task; one-way submit_to throughput",
                               bench_spawn};

}  // namespace moirai::cli
