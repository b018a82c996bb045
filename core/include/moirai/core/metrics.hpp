// What each shard measures about itself while it runs, and how it is read: counters (ShardStats) and latency
// histograms recorded by the shard alone, without locks or allocation, and read from any thread, merged on
// read.
//
// Histograms per shard (RuntimeOptions::metrics, off by default, since on it costs a cycle-counter read that
// timestamps each task as it becomes ready):
//   - scheduling delay: from a task becoming ready (spawned, woken by a completion, a message or a timer) to
//     its resumption; how long the run queue and the loop kept it waiting;
//   - task run time: the length of each resumption, from resume to the next suspension;
//   - timer lateness: from a timer's deadline to the loop firing it.
//
// Runtime::metrics() and Shard::metrics_into() take a snapshot; to_prometheus() and to_json() format one.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "moirai/core/histogram.hpp"

namespace moirai {

// The LatencyHistogram layout with one writer and any number of readers: the writer's counts are relaxed
// atomic loads and stores (no read-modify-write, so no lock prefix), a reader copies them into a
// LatencyHistogram. A reader racing the writer sees each count either before or after a record; the
// snapshot's total is the sum of the counts it read, so it is always self-consistent.
class SharedHistogram {
 public:
  SharedHistogram() noexcept = default;
  SharedHistogram(const SharedHistogram&) = delete;
  SharedHistogram& operator=(const SharedHistogram&) = delete;

  // On the writer's thread only.
  void record(std::uint64_t v) noexcept {
    bump(counts_[LatencyHistogram::bucket_index(v)]);
    sum_.store(sum_.load(std::memory_order_relaxed) + v, std::memory_order_relaxed);
    if (v > max_.load(std::memory_order_relaxed)) max_.store(v, std::memory_order_relaxed);
    if (v < min_.load(std::memory_order_relaxed)) min_.store(v, std::memory_order_relaxed);
  }

  // From any thread. O(LatencyHistogram::kBucketCount).
  void snapshot_into(LatencyHistogram& out) const noexcept;

 private:
  static void bump(std::atomic<std::uint64_t>& c) noexcept {
    c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }

  std::array<std::atomic<std::uint64_t>, LatencyHistogram::kBucketCount> counts_{};
  std::atomic<std::uint64_t> sum_{0};
  std::atomic<std::uint64_t> min_{~std::uint64_t{0}};
  std::atomic<std::uint64_t> max_{0};
};

// Per-shard counters. Written by the shard only (relaxed load+store, no read-modify-write), read by anyone.
struct ShardStats {
  std::uint64_t tasks_spawned = 0;
  std::uint64_t tasks_run = 0;  // resumptions
  std::uint64_t tasks_completed = 0;
  std::uint64_t tasks_failed = 0;
  std::uint64_t tasks_cancelled = 0;
  std::uint64_t messages_in = 0;
  std::uint64_t messages_out = 0;
  std::uint64_t completions = 0;  // CQEs reaped
  std::uint64_t timers_fired = 0;
  std::uint64_t wakeups_sent = 0;     // peers this shard had to wake
  std::uint64_t sleeps = 0;           // times this shard slept in the ring
  std::uint64_t busy_polls = 0;       // times this shard waited in the ring busy-polling (never sleeping)
  std::uint64_t inline_io = 0;        // operations a non-blocking syscall finished instead of the ring
  std::uint64_t idle_poll_hits = 0;   // idle spinning laps in which an idle poller found work (PollWhen)
  std::uint64_t stalls = 0;           // tasks that overran the stall budget
  std::uint64_t deadline_misses = 0;  // real-time jobs that ended past their deadline
  std::uint64_t wcet_overruns = 0;    // real-time jobs that ran longer than their WCET

  ShardStats& operator+=(const ShardStats& o) noexcept;
};

// The histograms a shard records, in nanoseconds.
enum class ShardHistogram : std::uint8_t { scheduling_delay, task_run_time, timer_lateness, kCount };
inline constexpr std::size_t kShardHistogramCount = static_cast<std::size_t>(ShardHistogram::kCount);
// "scheduling_delay", "task_run_time", "timer_lateness": the metric's name in both formats.
const char* to_string(ShardHistogram h) noexcept;

// A snapshot of one shard (or, merged, of all: shard = kAllShards, cpu = -1). About 120 KB: taken off the
// hot path, by whoever reads.
struct ShardMetrics {
  static constexpr unsigned kAllShards = ~0u;
  unsigned shard = 0;
  int cpu = -1;
  ShardStats counters;
  std::array<LatencyHistogram, kShardHistogramCount> histograms{};

  const LatencyHistogram& histogram(ShardHistogram h) const noexcept {
    return histograms[static_cast<std::size_t>(h)];
  }
  void merge(const ShardMetrics& o) noexcept;
};

struct RuntimeMetrics {
  std::vector<ShardMetrics> shards;
  ShardMetrics merged() const;  // counters summed, histograms merged
};

// From a task on a shard: the metrics of that shard's runtime (Runtime::metrics() from outside). Throws
// Error(invalid_argument) off a shard.
RuntimeMetrics runtime_metrics();

// The Prometheus text exposition format (version 0.0.4): every counter as `moirai_<name>_total{shard="N",
// cpu="C"}`, every histogram as `moirai_<name>_seconds` with cumulative `le` buckets from 100 ns to 10 s in
// 1-2.5-5 steps, `_sum` and `_count`, one series per shard. A bucket holds the recordings whose histogram
// bucket lies wholly at or below its bound (within the histogram's 0.8% resolution).
std::string to_prometheus(const RuntimeMetrics& m);
// {"shards": [{"shard", "cpu", "counters": {name: value...}, "histograms": {name: {"count", "mean", "min",
// "p50", "p90", "p99", "p999", "p9999", "max"}}}], "all": {...the same, merged, without shard and cpu}},
// nanoseconds, one line.
std::string to_json(const RuntimeMetrics& m);

}  // namespace moirai
