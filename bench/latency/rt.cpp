// `moirai bench rt`: two periodic tasks whose utilization lies between the rate-monotonic bounds and 1, run
// on one shard under EDF and under rate-monotonic ordering. Each job does busy work equal to its WCET, in
// short quanta with a yield between them, so the run queue can hand the CPU to a more urgent job between
// quanta (what preemption is to a kernel scheduler). EDF must miss nothing; RM misses what its response-time
// analysis predicts, for the task it predicts.
#include <memory>
#include <string>
#include <vector>

#include "bench.hpp"
#include "bench_support.hpp"
#include "metrics_option.hpp"
#include "moirai/core/periodic.hpp"
#include "moirai/core/runtime.hpp"
#include "moirai/core/timer.hpp"
#include "moirai/rt/analysis.hpp"

namespace moirai::cli {
namespace {

using namespace detail;
using namespace std::chrono_literals;

struct RtTask {
  const char* name;
  Duration wcet;
  Duration period;  // the deadline too
};

// U = 2/5 + 3.5/7 = 0.9: over the Liu & Layland bound (0.828) and the hyperbolic one; RM's response time of
// t2 is 3.5 + 2 * ceil(7.5 / 5) = 7.5 ms > 7 ms, while EDF needs only U <= 1.
constexpr RtTask kTasks[] = {{"t1", 2ms, 5ms}, {"t2", 3500us, 7ms}};
constexpr std::size_t kTaskCount = std::size(kTasks);
constexpr Duration kQuantum = 50us;  // busy work between two yields: the run queue's reaction time

// Spins for `work` of this task's own running time: quanta of kQuantum, each followed by a yield. Time spent
// while another task ran between two quanta is not counted, so each job costs exactly its WCET of CPU.
Task<void> busy(Duration work) {
  std::int64_t left = work.count();
  while (left > 0) {
    const std::int64_t quantum = left < kQuantum.count() ? left : kQuantum.count();
    const std::int64_t until = monotonic_ns() + quantum;
    while (monotonic_ns() < until) {
    }
    left -= quantum;
    if (left > 0) co_await yield();
  }
}

struct Outcome {
  std::unique_ptr<LatencyHistogram> response[kTaskCount];
  std::uint64_t releases[kTaskCount] = {};
  std::uint64_t misses[kTaskCount] = {};
  Outcome() {
    for (auto& h : response)
      h = std::make_unique<LatencyHistogram>();
  }
};

// Runs `tasks` (a subset of kTasks given by index) on one shard for `duration`, released together (the
// critical instant) and ordered by `policy`; adds their response times, releases and misses to `out`.
void run_set(const BenchOptions& o, int cpu, const std::vector<std::size_t>& tasks,
             rt::RtSchedulingPolicy policy, Duration duration, Outcome& out) {
  RuntimeOptions ro = bench_runtime(o, {cpu}, IdleStrategy::spin);
  ro.task_quota = 1;  // look at the timers after every quantum: releases are seen within one quantum
  Runtime rt(ro);
  // The controller outranks the task set: it runs as a deadline task due 1 ns after its spawn, earlier than
  // any job's deadline, so an overloaded set (RM here, or a host that steals the CPU) cannot starve the end
  // of the run. Its own "miss" is counted on the shard, not in these rows.
  auto control = [&]() -> Task<void> {
    const std::int64_t first = monotonic_ns() + 1'000'000;
    std::vector<PeriodicTask> running;
    for (std::size_t i : tasks) {
      const RtTask& t = kTasks[i];
      TaskContext ctx;
      ctx.with_name(t.name)
          .with_period(t.period, t.wcet, Duration::zero(), policy)
          .without_admission_control();
      running.push_back(every(
          t.period, [w = t.wcet] { return busy(w); }, ctx, first));
    }
    co_await sleep_for(duration);
    for (PeriodicTask& p : running)
      p.cancel();
    for (std::size_t k = 0; k < running.size(); ++k) {
      try {
        co_await running[k].join();
      } catch (const TaskCancelled&) {
      }
      const PeriodicStats& st = running[k].stats();
      out.response[tasks[k]]->merge(st.response_ns);
      out.releases[tasks[k]] += st.releases;
      out.misses[tasks[k]] += st.deadline_misses;
    }
  };
  rt.run([&]() -> Task<void> {
    serve_metrics_if_asked(o.metrics);
    co_await spawn(control, TaskContext{}.with_name("control").with_deadline(Duration(1))).join();
  });
}

std::string verdict(const rt::AnalysisResult& r) {
  return std::string(r.schedulable ? "schedulable" : "unschedulable") + " (" + r.explanation + ")";
}

BenchReport bench_rt(const BenchOptions& o) {
  const int cpu = first_cpu(o);
  // --count N: N hyperperiods (35 ms) per policy; default 2 s per policy.
  const Duration per_policy = o.budget.duration.count() > 0 ? o.budget.duration
                              : o.budget.count > 0
                                  ? Duration(35ms) * static_cast<std::int64_t>(o.budget.count)
                                  : Duration(2s);
  const auto edf = rt::RtSchedulingPolicy::DeadlineDriven();
  const auto rm = rt::RtSchedulingPolicy::RateMonotonic();
  Outcome alone, under_edf, under_rm;
  const std::vector<std::size_t> all = {0, 1};
  for (unsigned round = 0; round < kRounds; ++round) {
    for (std::size_t i = 0; i < kTaskCount; ++i) {
      progress(o, ("rt: baseline.rt.alone." + std::string(kTasks[i].name)).c_str());
      run_set(o, cpu, {i}, rm, per_policy / (kRounds * 4), alone);
    }
    progress(o, "rt: moirai.rt.edf");
    run_set(o, cpu, all, edf, per_policy / kRounds, under_edf);
    progress(o, "rt: moirai.rt.rm");
    run_set(o, cpu, all, rm, per_policy / kRounds, under_rm);
  }

  std::vector<rt::RtConstraints> edf_set, rm_set;
  for (const RtTask& t : kTasks) {
    edf_set.push_back(rt::RtConstraints::periodic(t.period, t.wcet, Duration::zero(), edf));
    rm_set.push_back(rt::RtConstraints::periodic(t.period, t.wcet, Duration::zero(), rm));
  }
  const rt::AnalysisResult edf_verdict = rt::analyze(edf_set, rt::PolicyKind::deadline_driven);
  const rt::AnalysisResult rm_verdict = rt::analyze(rm_set, rt::PolicyKind::rate_monotonic);

  BenchReport r;
  r.bench = "rt";
  auto add = [&](const std::string& prefix, const Outcome& out, bool compare) {
    for (std::size_t i = 0; i < kTaskCount; ++i) {
      BenchRow row = summarize(prefix + kTasks[i].name, *out.response[i]);
      row.releases = out.releases[i];
      row.misses = out.misses[i];
      if (compare) row.compare_with = std::string("baseline.rt.alone.") + kTasks[i].name;
      r.rows.push_back(std::move(row));
    }
  };
  add("baseline.rt.alone.", alone, false);
  add("moirai.rt.edf.", under_edf, true);
  add("moirai.rt.rm.", under_rm, true);
  std::string predicted = "none";
  if (rm_verdict.first_failing_task) predicted = kTasks[*rm_verdict.first_failing_task].name;
  r.note =
      "response time (release to end) of t1 (WCET 2 ms, period = deadline 5 ms) and t2 (3.5 ms, 7 ms), U = "
      "0.9, on one shard on CPU " +
      std::to_string(cpu) + ", busy work in " + std::to_string(kQuantum.count() / 1000) +
      " us quanta; baseline: each task alone. Analysis: EDF " + verdict(edf_verdict) + "; RM " +
      verdict(rm_verdict) + "; RM misses predicted for: " + predicted;
  return r;
}

}  // namespace

const LatencyBench kRtBench{"rt", "EDF and rate-monotonic task sets: response times and deadline misses",
                            bench_rt};

}  // namespace moirai::cli
