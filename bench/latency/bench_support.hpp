// What every `moirai bench` shares: how a budget is split into alternating rounds, which CPUs and idle
// strategy a bench runs on, progress lines, and the batch timing of operations cheaper than a clock read.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <utility>

#include "bench.hpp"
#include "moirai/core/clock.hpp"
#include "moirai/core/cpu_set.hpp"
#include "moirai/core/error.hpp"
#include "moirai/core/histogram.hpp"
#include "moirai/core/runtime_options.hpp"
#include "moirai/rt/thread_policy.hpp"

namespace moirai::cli::detail {

// Baseline and Moirai rows alternate this many times, each round a share of the budget.
inline constexpr unsigned kRounds = 4;

inline RunBudget or_default(const RunBudget& b, std::uint64_t count) {
  if (b.count == 0 && b.duration.count() <= 0) return RunBudget{count, {}};
  return b;
}

// A budget split in `parts` so that baseline and Moirai rounds can alternate: drift of a shared host then
// lands on both instead of on whichever ran second.
inline RunBudget share(const RunBudget& b, unsigned parts) {
  RunBudget r = b;
  if (r.count != 0) r.count = (r.count + parts - 1) / parts;
  r.duration /= parts;
  return r;
}

inline std::pair<int, int> two_cpus(const BenchOptions& o) {
  std::vector<int> cpus = resolve_shard_cpus(o.cpus, CpuFacts::current());
  if (cpus.size() < 2) {
    throw Error(Errc::invalid_cpu_set,
                "this bench needs two CPUs (--cpus A,B); only " + format_cpu_list(cpus) + " is available");
  }
  return {cpus[0], cpus[1]};
}

inline int first_cpu(const BenchOptions& o) {
  return resolve_shard_cpus(o.cpus, CpuFacts::current()).front();
}

inline IdleStrategy idle_or(const BenchOptions& o, IdleStrategy fallback) {
  return o.idle.empty() ? fallback : parse_idle_strategy(o.idle);
}

// The --policy of a bench, parsed ("other" when none was given).
inline rt::ThreadPolicy bench_policy(const BenchOptions& o) {
  return o.policy.empty() ? rt::ThreadPolicy{} : rt::ThreadPolicy::parse(o.policy);
}

// Gives the runtime the bench's --policy. Refuses SCHED_FIFO or SCHED_RR shards that spin on every CPU this
// process may use: a real-time thread that never blocks starves the kernel's own work on its CPU, and with
// every CPU taken the host stalls (RT throttling leaves it 5%).
inline void apply_bench_policy(const BenchOptions& o, RuntimeOptions& ro) {
  ro.thread_policy = bench_policy(o);
  ro.thread_policy.validate();
  const auto kind = ro.thread_policy.kind;
  const bool realtime = kind == rt::ThreadPolicy::Kind::fifo || kind == rt::ThreadPolicy::Kind::round_robin;
  const std::vector<int> allowed = resolve_shard_cpus({}, CpuFacts::current());
  const bool spins = ro.idle == IdleStrategy::spin || ro.idle == IdleStrategy::busy_poll;
  if (realtime && spins && ro.cpus.size() >= allowed.size()) {
    throw Error(
        Errc::invalid_argument,
        "--policy " + o.policy + " with spinning shards on every CPU (" + format_cpu_list(ro.cpus) +
            ") would leave none to the system; use --idle sleep or spin-then-sleep, or leave a CPU free");
  }
}

// The runtime of a bench: its CPUs, its idle strategy and the bench's --policy.
inline RuntimeOptions bench_runtime(const BenchOptions& o, std::vector<int> cpus, IdleStrategy idle) {
  RuntimeOptions ro;
  ro.cpus = std::move(cpus);
  ro.idle = idle;
  ro.inline_io_per_resumption = o.inline_io;
  ro.busy_poll_after = o.busy_poll_after;
  ro.metrics = !o.metrics.empty();  // the histograms cost a clock read per wake-up: only when served
  apply_bench_policy(o, ro);
  apply_caps_options(o.caps, ro, {o.metrics});
  return ro;
}

// Operations per second from `n` operations since `start_ns` (monotonic_ns()).
inline double per_second(std::uint64_t n, std::int64_t start_ns) noexcept {
  const double secs = static_cast<double>(monotonic_ns() - start_ns) / 1e9;
  return secs > 0 ? static_cast<double>(n) / secs : 0;
}

inline void progress(const BenchOptions& o, const char* what) {
  if (o.progress) std::fprintf(stderr, "moirai bench: %s...\n", what);
}

// The clock of a measured loop, one pass per sample: next() reads the clock as a pass starts and says whether
// the budget allows it; record() reads it as the pass ends. Nothing else lies between the two reads and the
// operations timed:
//
//   TimedPasses passes(budget);
//   for (std::uint64_t done = 0; passes.next(done); done += n) {
//     ...n operations...
//     passes.record(hist, n);
//   }
class TimedPasses {
 public:
  explicit TimedPasses(const RunBudget& budget) noexcept : budget_(budget), start_(monotonic_ns()) {}

  // Starts a pass after `done` operations; false once the budget is spent.
  bool next(std::uint64_t done) noexcept {
    pass_start_ = monotonic_ns();
    return !budget_.done(done, std::chrono::nanoseconds(pass_start_ - start_));
  }
  // Records the pass's time per operation, of `ops` operations, in nanoseconds times `scale`.
  void record(LatencyHistogram& hist, std::uint64_t ops = 1, std::uint64_t scale = 1) noexcept {
    hist.record(static_cast<std::uint64_t>(monotonic_ns() - pass_start_) * scale / ops);
  }
  // When the first pass could start (monotonic_ns()), for a rate over the whole loop.
  std::int64_t start_ns() const noexcept { return start_; }

 private:
  RunBudget budget_;
  std::int64_t start_;
  std::int64_t pass_start_ = 0;
};

// Times `op` in batches of `batch` calls and records the mean cost of one call per batch, in nanoseconds
// times `scale` (1000: picoseconds): for operations of a few nanoseconds, which a single call between two
// clock reads would not resolve.
template <class Op>
void record_batches(const RunBudget& budget, std::uint64_t batch, LatencyHistogram& hist, Op&& op,
                    std::uint64_t scale = 1) {
  TimedPasses passes(budget);
  for (std::uint64_t i = 0; passes.next(i); i += batch) {
    for (std::uint64_t k = 0; k < batch; ++k)
      op();
    passes.record(hist, batch, scale);
  }
}

}  // namespace moirai::cli::detail
