// Per-shard metrics: the histograms a shard records while it runs, read from another thread without
// stopping it, merged, and formatted as Prometheus text and JSON, both parsed back here.
#include "moirai/core/metrics.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>

#include "../../bench/latency/json_reader.hpp"  // header-only JSON reader (test use only here)
#include "../support/prometheus_reader.hpp"
#include "core_test_support.hpp"
#include "moirai/core/runtime.hpp"
#include "moirai/core/spawn.hpp"
#include "moirai/core/submit.hpp"
#include "moirai/core/timer.hpp"

namespace {

using moirai::LatencyHistogram;
using moirai::Runtime;
using moirai::RuntimeMetrics;
using moirai::ShardHistogram;
using moirai::ShardMetrics;
using moirai::Task;

// Two shards whose stall check does not report the 3 ms task of the workload (a loaded host can stretch it).
moirai::RuntimeOptions two_shards() {
  moirai::RuntimeOptions o = moirai_test::two_shards();
  o.stall_budget = std::chrono::seconds(1);
  o.metrics = true;
  return o;
}

TEST(SharedHistogram, ASnapshotHoldsWhatALatencyHistogramWouldHold) {
  auto shared = std::make_unique<moirai::SharedHistogram>();
  auto plain = std::make_unique<LatencyHistogram>();
  for (std::uint64_t v : {0ull, 1ull, 255ull, 256ull, 1000ull, 123456ull, 99999999ull, 1ull << 50}) {
    shared->record(v);
    plain->record(v);
  }
  auto snap = std::make_unique<LatencyHistogram>();
  shared->snapshot_into(*snap);
  EXPECT_EQ(snap->count(), plain->count());
  EXPECT_EQ(snap->min(), plain->min());
  EXPECT_EQ(snap->max(), plain->max());
  EXPECT_DOUBLE_EQ(snap->mean(), plain->mean());
  for (double p : {0.0, 10.0, 50.0, 90.0, 99.0, 100.0})
    EXPECT_EQ(snap->percentile(p), plain->percentile(p)) << p;
}

TEST(SharedHistogram, AnEmptySnapshotIsEmpty) {
  auto shared = std::make_unique<moirai::SharedHistogram>();
  auto snap = std::make_unique<LatencyHistogram>();
  snap->record(5);
  shared->snapshot_into(*snap);
  EXPECT_EQ(snap->count(), 0u);
  EXPECT_EQ(snap->min(), 0u);
  EXPECT_EQ(snap->max(), 0u);
}

// Some work on both shards: tasks that yield, cross-core submits, a few timers, and one task that runs 3 ms
// without suspending.
Task<void> workload() {
  for (int i = 0; i < 50; ++i)
    co_await moirai::submit_to(1, []() -> Task<int> { co_return 1; });
  for (int i = 0; i < 5; ++i)
    co_await moirai::sleep_for(std::chrono::microseconds(200));
  auto h = moirai::spawn([]() -> Task<void> {
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(3);
    while (std::chrono::steady_clock::now() < until) {
    }
    co_return;
  });
  co_await h.join();
  co_await moirai_test::yield_n(20);
}

TEST(Metrics, EachShardRecordsItsResumptionsDelaysAndTimers) {
  Runtime rt(two_shards());
  rt.run(workload);
  const RuntimeMetrics m = rt.metrics();
  ASSERT_EQ(m.shards.size(), 2u);
  for (unsigned i = 0; i < 2; ++i) {
    const ShardMetrics& s = m.shards[i];
    EXPECT_EQ(s.shard, i);
    EXPECT_EQ(s.cpu, rt.cpus()[i]);
    const moirai::ShardStats st = rt.stats(i);
    EXPECT_EQ(s.counters.tasks_run, st.tasks_run);
    EXPECT_EQ(s.counters.messages_in, st.messages_in);
    // Every resumption is timed; every resumption of a task was first made ready.
    EXPECT_EQ(s.histogram(ShardHistogram::task_run_time).count(), st.tasks_run) << i;
    EXPECT_GT(s.histogram(ShardHistogram::scheduling_delay).count(), 0u) << i;
    EXPECT_LE(s.histogram(ShardHistogram::scheduling_delay).count(), st.tasks_run) << i;
    EXPECT_EQ(s.histogram(ShardHistogram::timer_lateness).count(), st.timers_fired) << i;
  }
  // Five sleeps, each a timer unless its deadline had passed by the time it was armed (a shard slowed down,
  // as under ThreadSanitizer, returns from such a sleep at once).
  EXPECT_GE(m.shards[0].histogram(ShardHistogram::timer_lateness).count(), 1u);
  // The 3 ms busy task is one resumption at least that long (the histogram keeps max exactly).
  EXPECT_GE(m.shards[0].histogram(ShardHistogram::task_run_time).max(), 3'000'000u);
  EXPECT_GE(m.shards[1].counters.messages_in, 50u);

  const ShardMetrics all = m.merged();
  EXPECT_EQ(all.shard, ShardMetrics::kAllShards);
  EXPECT_EQ(all.counters.tasks_run, m.shards[0].counters.tasks_run + m.shards[1].counters.tasks_run);
  EXPECT_EQ(all.histogram(ShardHistogram::task_run_time).count(),
            m.shards[0].histogram(ShardHistogram::task_run_time).count() +
                m.shards[1].histogram(ShardHistogram::task_run_time).count());
}

TEST(Metrics, OffKeepsTheCountersAndRecordsNoHistogram) {
  moirai::RuntimeOptions o = two_shards();
  o.metrics = false;
  o.stall_budget = std::chrono::nanoseconds(0);  // and no stall check: the loop reads no clock at all
  Runtime rt(o);
  rt.run(workload);
  const RuntimeMetrics m = rt.metrics();
  for (const ShardMetrics& s : m.shards) {
    EXPECT_GT(s.counters.tasks_run, 0u);
    for (const LatencyHistogram& h : s.histograms)
      EXPECT_EQ(h.count(), 0u);
  }
}

TEST(Metrics, AreReadWhileTheShardsRun) {
  Runtime rt(two_shards());
  rt.start();
  std::atomic<bool> done{false};
  auto f = rt.submit(0, [&]() -> Task<void> {
    co_await workload();
    done.store(true);
  });
  std::uint64_t last = 0;
  int reads = 0;
  while (!done.load() || reads < 3) {
    const RuntimeMetrics m = rt.metrics();
    const std::uint64_t now = m.merged().histogram(ShardHistogram::task_run_time).count();
    EXPECT_GE(now, last);  // a shard's counts only grow
    last = now;
    ++reads;
    std::this_thread::sleep_for(std::chrono::microseconds(300));
  }
  f.get();
  rt.stop();
}

TEST(Metrics, FromAShardThroughRuntimeMetrics) {
  Runtime rt(two_shards());
  const std::size_t shards = rt.run([]() -> Task<std::size_t> {
    co_await moirai_test::yield_n(2);
    co_return moirai::runtime_metrics().shards.size();
  });
  EXPECT_EQ(shards, 2u);
  moirai_test::error_message([] { moirai::runtime_metrics(); }, moirai::Errc::invalid_argument);
}

TEST(Metrics, PrometheusTextParsesBackWithEveryCounterAndHistogram) {
  Runtime rt(two_shards());
  rt.run(workload);
  const RuntimeMetrics m = rt.metrics();
  const moirai_test::PromExposition e = moirai_test::parse_prometheus(moirai::to_prometheus(m));
  EXPECT_EQ(e.types.at("moirai_task_resumptions_total"), "counter");
  EXPECT_EQ(e.types.at("moirai_stalls_total"), "counter");
  EXPECT_EQ(e.types.at("moirai_deadline_misses_total"), "counter");
  EXPECT_EQ(e.types.at("moirai_io_completions_total"), "counter");
  EXPECT_EQ(e.types.at("moirai_messages_in_total"), "counter");
  for (const char* h : {"scheduling_delay", "task_run_time", "timer_lateness"})
    EXPECT_EQ(e.types.at(std::string("moirai_") + h + "_seconds"), "histogram") << h;
  for (unsigned i = 0; i < 2; ++i) {
    const std::map<std::string, std::string> l{{"shard", std::to_string(i)},
                                               {"cpu", std::to_string(rt.cpus()[i])}};
    EXPECT_EQ(e.value("moirai_task_resumptions_total", l),
              static_cast<double>(m.shards[i].counters.tasks_run));
    EXPECT_EQ(e.value("moirai_task_run_time_seconds_count", l),
              static_cast<double>(m.shards[i].histogram(ShardHistogram::task_run_time).count()));
    // The sum is in seconds.
    const LatencyHistogram& rtime = m.shards[i].histogram(ShardHistogram::task_run_time);
    EXPECT_NEAR(e.value("moirai_task_run_time_seconds_sum", l),
                rtime.mean() * static_cast<double>(rtime.count()) / 1e9, 1e-6);
    // Every bucket below the longest resumption leaves that one out; the 3 ms task makes shard 0's longest
    // lie above the smallest bounds, whatever the machine's speed.
    int below_max = 0;
    for (const moirai_test::PromSample* b : e.series("moirai_task_run_time_seconds_bucket")) {
      if (b->labels.at("shard") != l.at("shard") || b->labels.at("le") == "+Inf") continue;
      if (std::stod(b->labels.at("le")) * 1e9 >= static_cast<double>(rtime.max())) continue;
      EXPECT_LT(b->value, static_cast<double>(rtime.count())) << "le=" << b->labels.at("le");
      ++below_max;
    }
    if (i == 0) {
      EXPECT_GT(below_max, 0);
    }
  }
}

TEST(Metrics, JsonParsesBackWithPercentiles) {
  Runtime rt(two_shards());
  rt.run(workload);
  const RuntimeMetrics m = rt.metrics();
  using moirai::cli::json::parse_json;
  const auto j = parse_json(moirai::to_json(m));
  const auto& shards = j.object().at("shards").array();
  ASSERT_EQ(shards.size(), 2u);
  const auto& s0 = shards[0].object();
  EXPECT_EQ(s0.at("shard").number(), 0);
  EXPECT_EQ(s0.at("counters").object().at("task_resumptions").number(),
            static_cast<double>(m.shards[0].counters.tasks_run));
  const auto& run_time = s0.at("histograms").object().at("task_run_time").object();
  const LatencyHistogram& h = m.shards[0].histogram(ShardHistogram::task_run_time);
  EXPECT_EQ(run_time.at("count").number(), static_cast<double>(h.count()));
  EXPECT_EQ(run_time.at("p99").number(), static_cast<double>(h.percentile(99)));
  EXPECT_EQ(run_time.at("max").number(), static_cast<double>(h.max()));
  const auto& all = j.object().at("all").object();
  EXPECT_EQ(all.count("shard"), 0u);
  EXPECT_EQ(all.at("counters").object().at("task_resumptions").number(),
            static_cast<double>(m.merged().counters.tasks_run));
}

}  // namespace
