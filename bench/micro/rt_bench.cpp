// Micro-figures of the rt module's hot and warm paths: creating validated constraints (per spawned task), the
// deadline check and the utilization (per job), and admission control on a 10-task set (per admitted set).
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>
#include <vector>

#include "moirai/rt/analysis.hpp"
#include "moirai/rt/constraints.hpp"

namespace {

using moirai::rt::RtConstraints;
using moirai::rt::RtSchedulingPolicy;
using std::chrono::nanoseconds;

void BM_RtConstraints_Create(benchmark::State& state) {
  std::int64_t period = 10'000'000;
  std::int64_t wcet = 1'000'000;
  for (auto _ : state) {
    // The inputs pass through DoNotOptimize so the validation cannot be folded at compile time.
    benchmark::DoNotOptimize(period);
    benchmark::DoNotOptimize(wcet);
    RtConstraints c = RtConstraints::periodic(nanoseconds(period), nanoseconds(wcet));
    benchmark::DoNotOptimize(c);
  }
}
BENCHMARK(BM_RtConstraints_Create);

void BM_RtConstraints_DeadlineCheck(benchmark::State& state) {
  const RtConstraints c =
      RtConstraints::periodic(std::chrono::milliseconds(10), std::chrono::milliseconds(1));
  std::int64_t release = 1'000'000'000;
  std::int64_t now = release + 9'999'999;
  for (auto _ : state) {
    benchmark::DoNotOptimize(release);
    benchmark::DoNotOptimize(now);
    bool missed = c.deadline_missed(release, now);
    benchmark::DoNotOptimize(missed);
  }
}
BENCHMARK(BM_RtConstraints_DeadlineCheck);

void BM_RtConstraints_Utilization(benchmark::State& state) {
  RtConstraints c = RtConstraints::periodic(std::chrono::milliseconds(10), std::chrono::milliseconds(3));
  for (auto _ : state) {
    benchmark::DoNotOptimize(c);
    double u = c.utilization();
    benchmark::DoNotOptimize(u);
  }
}
BENCHMARK(BM_RtConstraints_Utilization);

// Ten tasks, periods 5..50 ms (not harmonic), U = 0.80: schedulable under RM, so RTA iterates every task.
std::vector<RtConstraints> ten_rm_tasks() {
  std::vector<RtConstraints> set;
  for (int i = 0; i < 10; ++i) {
    const std::int64_t period_us = 5'000 + 5'000 * i + 700 * (i % 3);
    set.push_back(RtConstraints::periodic(nanoseconds(period_us * 1000), nanoseconds(period_us * 80)));
  }
  return set;
}

// Ten EDF tasks with deadlines at 60..90% of the period, U = 0.70.
std::vector<RtConstraints> ten_constrained_edf_tasks() {
  std::vector<RtConstraints> set;
  for (int i = 0; i < 10; ++i) {
    const std::int64_t period_us = 4'000 + 3'000 * i;
    set.push_back(RtConstraints::periodic(nanoseconds(period_us * 1000), nanoseconds(period_us * 70),
                                          nanoseconds(period_us * (600 + 30 * i)),
                                          RtSchedulingPolicy::DeadlineDriven()));
  }
  return set;
}

void BM_Analyze_RTA_10tasks(benchmark::State& state) {
  const std::vector<RtConstraints> set = ten_rm_tasks();
  for (auto _ : state) {
    auto r = moirai::rt::response_time_analysis(set);
    benchmark::DoNotOptimize(r);
  }
  state.SetLabel(moirai::rt::response_time_analysis(set).schedulable ? "schedulable" : "NOT schedulable");
}
BENCHMARK(BM_Analyze_RTA_10tasks);

void BM_Analyze_ProcessorDemand_10tasks(benchmark::State& state) {
  const std::vector<RtConstraints> set = ten_constrained_edf_tasks();
  for (auto _ : state) {
    auto r = moirai::rt::processor_demand_test(set);
    benchmark::DoNotOptimize(r);
  }
  const auto r = moirai::rt::processor_demand_test(set);
  state.SetLabel(r.schedulable ? "schedulable" : "NOT schedulable");
}
BENCHMARK(BM_Analyze_ProcessorDemand_10tasks);

}  // namespace
