#include "moirai/rt/analysis.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <numeric>
#include <optional>
#include <string>
#include <vector>

namespace moirai::rt {
namespace {

using Duration = std::chrono::nanoseconds;
__extension__ using Int128 = __int128;  // sums of products of nanosecond counts; __extension__ for -Wpedantic

// Products such as U = prod(U_i + 1) are doubles; two sums that are mathematically equal may differ in the
// last bits, so a set exactly at a bound is accepted within this relative tolerance.
constexpr double kTolerance = 1e-12;
// The demand test visits every absolute deadline up to its bound; past this many it gives up rather than
// stall admission control (the result says so). 10 tasks with periods 1..100 ms need a few thousand.
constexpr std::uint64_t kMaxDemandPoints = 20'000'000;
constexpr std::int64_t kMaxHyperperiod = std::numeric_limits<std::int64_t>::max() / 4;

struct TaskModel {
  std::int64_t c;     // wcet
  std::int64_t d;     // relative deadline
  std::int64_t t;     // period (or minimum inter-arrival)
  std::size_t index;  // in the input span
};

std::vector<TaskModel> models_of(std::span<const RtConstraints> tasks) {
  std::vector<TaskModel> out;
  out.reserve(tasks.size());
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    const RtConstraints& task = tasks[i];
    if (task.is_periodic()) {
      out.push_back({task.wcet().count(), task.deadline().count(), task.period().count(), i});
    } else if (task.has_deadline()) {
      out.push_back({task.wcet().count(), task.deadline().count(), task.deadline().count(), i});
    }
  }
  return out;
}

bool implicit_deadlines(const std::vector<TaskModel>& models) {
  return std::all_of(models.begin(), models.end(), [](const TaskModel& m) { return m.d == m.t; });
}

// lcm of the chosen field, or 0 when it would exceed kMaxHyperperiod.
std::int64_t common_multiple(const std::vector<TaskModel>& models, std::int64_t TaskModel::*field) {
  std::int64_t l = 1;
  for (const TaskModel& m : models) {
    const std::int64_t v = m.*field;
    const std::int64_t g = std::gcd(l, v);
    const Int128 next = static_cast<Int128>(l / g) * v;
    if (next > kMaxHyperperiod) return 0;
    l = static_cast<std::int64_t>(next);
  }
  return l;
}

// sum(C_i / den_i) compared with 1, exactly when the common denominator fits, else in doubles: -1, 0 or 1.
int compare_load_to_one(const std::vector<TaskModel>& models, std::int64_t TaskModel::*den) {
  if (models.empty()) return -1;
  if (const std::int64_t l = common_multiple(models, den); l != 0) {
    Int128 sum = 0;
    for (const TaskModel& m : models)
      sum += static_cast<Int128>(m.c) * (l / (m.*den));
    return sum < l ? -1 : (sum == l ? 0 : 1);
  }
  double sum = 0;
  for (const TaskModel& m : models)
    sum += static_cast<double>(m.c) / static_cast<double>(m.*den);
  return sum < 1 - kTolerance ? -1 : (sum <= 1 + kTolerance ? 0 : 1);
}

double utilization_of(const std::vector<TaskModel>& models) {
  double sum = 0;
  for (const TaskModel& m : models)
    sum += static_cast<double>(m.c) / static_cast<double>(m.t);
  return sum;
}

std::string fmt_duration(std::int64_t v) {
  if (v == std::numeric_limits<std::int64_t>::max()) return "inf";
  if (v != 0 && v % 1'000'000 == 0) return std::to_string(v / 1'000'000) + " ms";
  if (v != 0 && v % 1'000 == 0) return std::to_string(v / 1'000) + " us";
  return std::to_string(v) + " ns";
}

std::string fmt_double(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4f", v);
  return buf;
}

double liu_layland_bound(std::size_t n) {
  if (n == 0) return 1.0;
  const double nd = static_cast<double>(n);
  return nd * (std::pow(2.0, 1.0 / nd) - 1.0);
}

std::string task_label(const TaskModel& m) {
  return "task " + std::to_string(m.index) + " (C=" + fmt_duration(m.c) + ", D=" + fmt_duration(m.d) +
         ", T=" + fmt_duration(m.t) + ")";
}

// The interval a processor-demand test must check, and how it was bounded (for the explanation).
struct DemandInterval {
  std::int64_t limit = 0;
  std::string bound_text;
};

// The synchronous busy period, w = sum ceil(w / T_i) C_i from w = sum C_i, when it converges at or below
// `limit` (it does when U < 1).
std::optional<std::int64_t> busy_period(const std::vector<TaskModel>& models, std::int64_t limit) {
  Int128 w = 0;
  for (const TaskModel& m : models)
    w += m.c;
  for (int iteration = 0; iteration < 1'000'000 && w <= limit; ++iteration) {
    Int128 next = 0;
    for (const TaskModel& m : models)
      next += (w + m.t - 1) / m.t * m.c;
    if (next == w) return static_cast<std::int64_t>(w);
    w = next;
  }
  return std::nullopt;
}

// The interval to check: the hyperperiod, and for U < 1 also max(D_max, L*) and the synchronous busy period,
// whichever is smallest. Each of them alone is enough; a smaller one is fewer deadlines to visit. Nothing
// when U = 1 and the hyperperiod is too large to visit.
std::optional<DemandInterval> demand_interval(const std::vector<TaskModel>& models, bool below_one,
                                              double utilization) {
  const std::int64_t hyperperiod = common_multiple(models, &TaskModel::t);
  if (!below_one && hyperperiod == 0) return std::nullopt;
  DemandInterval interval;
  interval.limit = hyperperiod != 0 ? hyperperiod : std::numeric_limits<std::int64_t>::max();
  interval.bound_text =
      hyperperiod != 0 ? "hyperperiod " + fmt_duration(hyperperiod) : "hyperperiod too large";
  if (!below_one) return interval;
  std::int64_t d_max = 0;
  double numerator = 0;
  for (const TaskModel& m : models) {
    d_max = std::max(d_max, m.d);
    numerator += static_cast<double>(m.t - m.d) * static_cast<double>(m.c) / static_cast<double>(m.t);
  }
  const double l_star = numerator / (1.0 - utilization);
  const double l_a = std::max(static_cast<double>(d_max), std::ceil(l_star));
  if (l_a < static_cast<double>(interval.limit)) interval.limit = static_cast<std::int64_t>(l_a);
  interval.bound_text += ", max(D_max, L*) " + fmt_duration(static_cast<std::int64_t>(std::min(l_a, 9.0e18)));
  if (const std::optional<std::int64_t> w = busy_period(models, interval.limit)) {
    if (*w < interval.limit) interval.limit = *w;
    interval.bound_text += ", busy period " + fmt_duration(*w);
  }
  return interval;
}

// Visits every absolute deadline t up to the interval's limit and checks the demand h(t) <= t; fills in the
// verdict and its explanation.
void check_demand(const std::vector<TaskModel>& models, const DemandInterval& interval, AnalysisResult& r) {
  std::vector<std::int64_t> next_deadline(models.size());
  for (std::size_t i = 0; i < models.size(); ++i)
    next_deadline[i] = models[i].d;
  std::uint64_t points = 0;
  for (;;) {
    const std::int64_t t = *std::min_element(next_deadline.begin(), next_deadline.end());
    if (t > interval.limit) break;
    if (++points > kMaxDemandPoints) {
      r.explanation = "processor-demand: more than " + std::to_string(kMaxDemandPoints) +
                      " deadlines to check up to " + fmt_duration(interval.limit) + " (" +
                      interval.bound_text + "): cannot decide; lower U or make the periods harmonic";
      return;
    }
    Int128 demand = 0;
    for (std::size_t i = 0; i < models.size(); ++i) {
      const TaskModel& m = models[i];
      if (t >= m.d) demand += static_cast<Int128>((t - m.d) / m.t + 1) * m.c;
      if (next_deadline[i] == t) next_deadline[i] += m.t;
    }
    if (demand > t) {
      r.first_failing_interval = Duration(t);
      r.demand_at_failure = Duration(static_cast<std::int64_t>(demand));
      r.explanation = "processor-demand: h(t) = " + fmt_duration(r.demand_at_failure.count()) +
                      " > t = " + fmt_duration(t) + " (U = " + fmt_double(r.utilization) +
                      "): not schedulable under EDF";
      return;
    }
  }
  r.schedulable = true;
  r.explanation = "processor-demand: h(t) <= t at all " + std::to_string(points) + " deadlines up to " +
                  fmt_duration(interval.limit) + " (" + interval.bound_text +
                  "), U = " + fmt_double(r.utilization) + ": schedulable under EDF";
}

}  // namespace

double total_utilization(std::span<const RtConstraints> tasks) noexcept {
  double sum = 0;
  for (const RtConstraints& task : tasks)
    sum += task.utilization();
  return sum;
}

AnalysisResult liu_layland_test(std::span<const RtConstraints> tasks) {
  const std::vector<TaskModel> models = models_of(tasks);
  AnalysisResult r;
  r.test = "liu-layland";
  r.utilization = utilization_of(models);
  r.bound = liu_layland_bound(models.size());
  if (!implicit_deadlines(models)) {
    r.explanation =
        "liu-layland: not applicable, a deadline differs from its period; use response_time_analysis";
    return r;
  }
  r.schedulable = r.utilization <= r.bound * (1 + kTolerance);
  r.explanation =
      "liu-layland: U = " + fmt_double(r.utilization) + (r.schedulable ? " <= " : " > ") +
      "n(2^(1/n)-1) = " + fmt_double(r.bound) + " for n = " + std::to_string(models.size()) +
      (r.schedulable ? ": schedulable under rate-monotonic" : ": inconclusive (the test is only sufficient)");
  return r;
}

AnalysisResult hyperbolic_test(std::span<const RtConstraints> tasks) {
  const std::vector<TaskModel> models = models_of(tasks);
  AnalysisResult r;
  r.test = "hyperbolic";
  r.utilization = utilization_of(models);
  r.bound = 2.0;
  if (!implicit_deadlines(models)) {
    r.explanation =
        "hyperbolic: not applicable, a deadline differs from its period; use response_time_analysis";
    return r;
  }
  double product = 1;
  for (const TaskModel& m : models)
    product *= 1.0 + static_cast<double>(m.c) / static_cast<double>(m.t);
  r.schedulable = product <= r.bound * (1 + kTolerance);
  r.explanation =
      "hyperbolic: prod(U_i + 1) = " + fmt_double(product) + (r.schedulable ? " <= 2" : " > 2") +
      " (U = " + fmt_double(r.utilization) + ")" +
      (r.schedulable ? ": schedulable under rate-monotonic" : ": inconclusive (the test is only sufficient)");
  return r;
}

AnalysisResult response_time_analysis(std::span<const RtConstraints> tasks, FixedPriorityOrder order) {
  const std::vector<TaskModel> models = models_of(tasks);
  AnalysisResult r;
  r.test = "response-time";
  r.utilization = utilization_of(models);
  r.bound = 1.0;
  r.response_times.assign(tasks.size(), Duration::zero());

  // Priority order: shorter period (or deadline) first; stable_sort keeps input order among equals.
  std::vector<std::size_t> by_priority(models.size());
  std::iota(by_priority.begin(), by_priority.end(), std::size_t{0});
  std::stable_sort(by_priority.begin(), by_priority.end(), [&](std::size_t a, std::size_t b) {
    return order == FixedPriorityOrder::rate_monotonic ? models[a].t < models[b].t
                                                       : models[a].d < models[b].d;
  });

  std::size_t worst = models.size();  // the task with the largest R/D, for the explanation
  double worst_ratio = -1;
  for (std::size_t k = 0; k < by_priority.size(); ++k) {
    const TaskModel& task = models[by_priority[k]];
    // Start from the sum of all higher-priority WCETs: every job released at the critical instant runs once.
    Int128 response = task.c;
    for (std::size_t j = 0; j < k; ++j)
      response += models[by_priority[j]].c;
    bool missed = response > task.d;
    while (!missed) {
      Int128 next = task.c;
      for (std::size_t j = 0; j < k && next <= task.d; ++j) {
        const TaskModel& hp = models[by_priority[j]];
        const Int128 releases = (response + hp.t - 1) / hp.t;  // ceil(R / T_j)
        next += releases * hp.c;
      }
      if (next > task.d) missed = true;
      if (next == response) break;
      response = next;
    }
    if (missed) {
      r.response_times[task.index] = Duration::max();
      if (!r.first_failing_task) r.first_failing_task = task.index;
      continue;
    }
    r.response_times[task.index] = Duration(static_cast<std::int64_t>(response));
    const double ratio = static_cast<double>(response) / static_cast<double>(task.d);
    if (ratio > worst_ratio) {
      worst_ratio = ratio;
      worst = by_priority[k];
    }
  }
  r.schedulable = !r.first_failing_task.has_value();
  const std::string policy =
      order == FixedPriorityOrder::rate_monotonic ? "rate-monotonic" : "deadline-monotonic";
  if (r.schedulable) {
    r.explanation = "response-time (" + policy + "): all " + std::to_string(models.size()) +
                    " tasks meet their deadlines, U = " + fmt_double(r.utilization);
    if (worst < models.size()) {
      r.explanation += "; tightest: " + task_label(models[worst]) +
                       " with R = " + fmt_duration(r.response_times[models[worst].index].count());
    }
  } else {
    const std::size_t failing = *r.first_failing_task;
    const auto it =
        std::find_if(models.begin(), models.end(), [&](const TaskModel& m) { return m.index == failing; });
    r.explanation = "response-time (" + policy + "): " + task_label(*it) +
                    " misses: its response time grows past D; U = " + fmt_double(r.utilization);
  }
  return r;
}

AnalysisResult edf_utilization_test(std::span<const RtConstraints> tasks) {
  const std::vector<TaskModel> models = models_of(tasks);
  AnalysisResult r;
  r.test = "edf-utilization";
  r.utilization = utilization_of(models);
  r.bound = 1.0;
  if (implicit_deadlines(models)) {
    r.schedulable = compare_load_to_one(models, &TaskModel::t) <= 0;
    r.explanation = "edf-utilization: U = " + fmt_double(r.utilization) + (r.schedulable ? " <= 1" : " > 1") +
                    (r.schedulable ? ": schedulable under EDF" : ": not schedulable by any algorithm");
    return r;
  }
  double density = 0;
  for (const TaskModel& m : models)
    density += static_cast<double>(m.c) / static_cast<double>(m.d);
  r.schedulable = compare_load_to_one(models, &TaskModel::d) <= 0;
  r.explanation =
      "edf-utilization: a deadline is shorter than its period, so the density test (sufficient) "
      "applies: sum C/D = " +
      fmt_double(density) +
      (r.schedulable ? " <= 1: schedulable" : " > 1: inconclusive, use processor_demand_test") +
      " (U = " + fmt_double(r.utilization) + ")";
  return r;
}

AnalysisResult processor_demand_test(std::span<const RtConstraints> tasks) {
  const std::vector<TaskModel> models = models_of(tasks);
  AnalysisResult r;
  r.test = "processor-demand";
  r.utilization = utilization_of(models);
  r.bound = 1.0;
  if (models.empty()) {
    r.schedulable = true;
    r.explanation = "processor-demand: no task with a deadline";
    return r;
  }
  const int load = compare_load_to_one(models, &TaskModel::t);
  if (load > 0) {
    r.explanation =
        "processor-demand: U = " + fmt_double(r.utilization) + " > 1: not schedulable by any algorithm";
    return r;
  }
  const std::optional<DemandInterval> interval = demand_interval(models, load < 0, r.utilization);
  if (!interval) {
    r.explanation = "processor-demand: U = 1 and the hyperperiod exceeds 2^61 ns: cannot decide";
    return r;
  }
  check_demand(models, *interval, r);
  return r;
}

AnalysisResult analyze(std::span<const RtConstraints> tasks, PolicyKind kind) {
  switch (kind) {
    case PolicyKind::rate_monotonic: {
      AnalysisResult r = response_time_analysis(tasks, FixedPriorityOrder::rate_monotonic);
      const AnalysisResult ll = liu_layland_test(tasks);
      const AnalysisResult hyp = hyperbolic_test(tasks);
      r.explanation += "; " + ll.explanation + "; " + hyp.explanation;
      return r;
    }
    case PolicyKind::deadline_driven:
      return implicit_deadlines(models_of(tasks)) ? edf_utilization_test(tasks)
                                                  : processor_demand_test(tasks);
    case PolicyKind::fifo:
    case PolicyKind::round_robin:
      break;
  }
  AnalysisResult r;
  r.schedulable = true;
  r.test = "none";
  r.utilization = total_utilization(tasks);
  r.explanation = std::string(to_string(kind)) + " has no schedulability test: admitted";
  return r;
}

}  // namespace moirai::rt
