#include "bench.hpp"
#include "metrics_option.hpp"

#include <unistd.h>

#include <atomic>
#include <coroutine>
#include <cstdio>
#include <memory>

#include "baselines.hpp"
#include "bench_support.hpp"
#include "moirai/core/cpu_set.hpp"
#include "moirai/core/runtime.hpp"
#include "moirai/core/submit.hpp"
#include "moirai/core/timer.hpp"

namespace moirai::cli {
namespace {

using namespace detail;

using Hist = LatencyHistogram;
using Clock = std::chrono::steady_clock;

std::int64_t now_ns() noexcept {
  return monotonic_ns();
}

// ---- pingpong
// ----------------------------------------------------------------------------------------------

void moirai_pingpong(const BenchOptions& o, int a, int b, IdleStrategy idle, const RunBudget& budget,
                     Hist& hist) {
  RuntimeOptions ro = bench_runtime(o, {a, b}, idle);
  Runtime rt(ro);
  rt.run([&]() -> Task<void> {
    serve_metrics_if_asked(o.metrics);
    for (int i = 0; i < 1000; ++i)
      co_await submit_to(1, [] { return 0; });
    const std::int64_t start = now_ns();
    for (std::uint64_t i = 0;; ++i) {
      const std::int64_t t0 = now_ns();
      if (budget.done(i, std::chrono::nanoseconds(t0 - start))) break;
      co_await submit_to(1, [] { return 0; });
      hist.record(static_cast<std::uint64_t>(now_ns() - t0));
    }
  });
}

// ---- timer
// -------------------------------------------------------------------------------------------------

void moirai_sleep(const BenchOptions& o, int cpu, IdleStrategy idle, std::chrono::nanoseconds interval,
                  const RunBudget& budget, Hist& hist) {
  RuntimeOptions ro = bench_runtime(o, {cpu}, idle);
  Runtime rt(ro);
  rt.run([&]() -> Task<void> {
    serve_metrics_if_asked(o.metrics);
    const std::int64_t start = now_ns();
    std::int64_t target = start;
    for (std::uint64_t i = 0;; ++i) {
      if (budget.done(i, std::chrono::nanoseconds(now_ns() - start))) break;
      target += interval.count();
      co_await sleep_until(Clock::time_point(std::chrono::nanoseconds(target)));
      const std::int64_t late = now_ns() - target;
      hist.record(late > 0 ? static_cast<std::uint64_t>(late) : 0);
    }
  });
}

// ---- spawn
// -------------------------------------------------------------------------------------------------

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

constexpr std::uint64_t kBatch =
    64;  // operations per timed sample: a clock read costs about as much as a spawn

void bare_coroutines(const RunBudget& budget, Hist& hist) {
  record_batches(budget, kBatch, hist, [] {
    BareCoroutine c = bare_empty();
    c.h.resume();
    c.h.destroy();
  });
}

void moirai_spawn(const BenchOptions& o, int cpu, IdleStrategy idle, const RunBudget& budget, Hist& hist) {
  RuntimeOptions ro = bench_runtime(o, {cpu}, idle);
  Runtime rt(ro);
  rt.run([&]() -> Task<void> {
    serve_metrics_if_asked(o.metrics);
    for (int i = 0; i < 1000; ++i)
      co_await spawn(empty_task()).join();  // warm the frame pool
    const std::int64_t start = now_ns();
    for (std::uint64_t i = 0;; i += kBatch) {
      const std::int64_t t0 = now_ns();
      if (budget.done(i, std::chrono::nanoseconds(t0 - start))) break;
      for (std::uint64_t k = 0; k < kBatch; ++k)
        co_await spawn(empty_task()).join();
      hist.record(static_cast<std::uint64_t>(now_ns() - t0) / kBatch);
    }
  });
}

// One-way submit_to: posts to shard 1 back to back, letting backpressure pace the sender; a final round trip
// (ordered behind every post on the same ring) marks the end.
double moirai_throughput(const BenchOptions& o, int a, int b, IdleStrategy idle, const RunBudget& budget,
                         Hist& hist) {
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
    const std::int64_t start = now_ns();
    std::uint64_t sent = 0;
    for (;;) {
      const std::int64_t t0 = now_ns();
      if (budget.done(sent, std::chrono::nanoseconds(t0 - start))) break;
      for (std::uint64_t k = 0; k < kSample; ++k)
        co_await post_to(1, [] { ++received; });
      sent += kSample;
      hist.record(static_cast<std::uint64_t>(now_ns() - t0) / kSample);
    }
    const std::uint64_t got = co_await submit_to(1, [] { return received; });
    per_sec = per_second(got, start);
  });
  return per_sec;
}

}  // namespace

BenchReport bench_pingpong(const BenchOptions& o) {
  const auto [a, b] = two_cpus(o);
  const RunBudget budget = or_default(o.budget, 200'000);
  const IdleStrategy idle = idle_or(o, IdleStrategy::spin);
  auto base = std::make_unique<Hist>();
  auto mine = std::make_unique<Hist>();
  for (unsigned round = 0; round < kRounds; ++round) {
    progress(o, "pingpong: baseline.cacheline");
    cacheline_pingpong(a, b, share(budget, kRounds), *base);
    progress(o, "pingpong: moirai.submit_to");
    moirai_pingpong(o, a, b, idle, share(budget, kRounds), *mine);
  }
  BenchReport r;
  r.bench = "pingpong";
  r.rows.push_back(summarize("baseline.cacheline", *base));
  r.rows.push_back(summarize("moirai.submit_to", *mine));
  r.note = "round trip shard " + std::to_string(a) + " -> " + std::to_string(b) + " and back; idle " +
           to_string(idle) + "; baseline: two pinned threads bouncing one cache line";
  return r;
}

BenchReport bench_timer(const BenchOptions& o) {
  const int cpu = resolve_shard_cpus(o.cpus, CpuFacts::current()).front();
  const std::chrono::nanoseconds interval = o.interval;
  if (interval.count() <= 0) throw Error(Errc::invalid_argument, "--interval-us must be at least 1");
  const RunBudget budget = or_default(o.budget, 5'000);
  const IdleStrategy idle = idle_or(o, IdleStrategy::sleep);
  auto base = std::make_unique<Hist>();
  auto mine = std::make_unique<Hist>();
  auto spin = std::make_unique<Hist>();
  for (unsigned round = 0; round < kRounds; ++round) {
    progress(o, "timer: baseline.clock_nanosleep");
    clock_nanosleep_lateness(cpu, interval, share(budget, kRounds), *base, bench_policy(o));
    progress(o, "timer: moirai.sleep_for");
    moirai_sleep(o, cpu, idle, interval, share(budget, kRounds), *mine);
    if (o.idle.empty()) {
      progress(o, "timer: moirai.sleep_for.spin");
      moirai_sleep(o, cpu, IdleStrategy::spin, interval, share(budget, kRounds), *spin);
    }
  }
  BenchReport r;
  r.bench = "timer";
  r.rows.push_back(summarize("baseline.clock_nanosleep", *base));
  r.rows.push_back(summarize("moirai.sleep_for", *mine));
  if (o.idle.empty()) r.rows.push_back(summarize("moirai.sleep_for.spin", *spin));
  r.note = "wake-up lateness of a " + std::to_string(interval.count() / 1000) + " us periodic sleep on CPU " +
           std::to_string(cpu) + "; moirai.sleep_for idles by '" + to_string(idle) +
           "'; baseline: clock_nanosleep(TIMER_ABSTIME) on the same CPU (cyclictest's method)";
  return r;
}

BenchReport bench_spawn(const BenchOptions& o) {
  const auto [a, b] = two_cpus(o);
  const IdleStrategy idle = idle_or(o, IdleStrategy::spin);
  const RunBudget budget = or_default(o.budget, 2'000'000);
  auto base = std::make_unique<Hist>();
  auto mine = std::make_unique<Hist>();
  auto tput = std::make_unique<Hist>();
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

const std::vector<std::string>& bench_names() {
  static const std::vector<std::string> names = {"pingpong", "timer", "spawn", "alloc", "rt", "echo"};
  return names;
}

namespace {

BenchReport run_one(const std::string& name, const BenchOptions& o) {
  if (name == "pingpong") return bench_pingpong(o);
  if (name == "timer") return bench_timer(o);
  if (name == "spawn") return bench_spawn(o);
  if (name == "alloc") return bench_alloc(o);
  if (name == "rt") return bench_rt(o);
  if (name == "echo") return bench_echo(o);
  throw Error(Errc::invalid_argument,
              "unknown bench '" + name + "': use pingpong, timer, spawn, alloc, rt or echo");
}

}  // namespace

BenchReport run_bench(const std::string& name, const BenchOptions& o) {
  BenchReport r = run_one(name, o);
  if (!o.policy.empty()) {
    r.note +=
        "; shards asked for --policy " + bench_policy(o).to_string() + " (a refusal is warned on stderr)";
  }
  return r;
}

}  // namespace moirai::cli
