#include "moirai/core/metrics.hpp"

#include <cinttypes>
#include <cstdio>

#include "moirai/core/error.hpp"
#include "moirai/core/runtime.hpp"
#include "runtime_state.hpp"

namespace moirai {

void SharedHistogram::snapshot_into(LatencyHistogram& out) const noexcept {
  std::uint64_t total = 0;
  for (std::size_t i = 0; i < LatencyHistogram::kBucketCount; ++i) {
    const std::uint64_t c = counts_[i].load(std::memory_order_relaxed);
    out.counts_[i] = c;
    total += c;
  }
  out.total_ = total;
  out.sum_ = sum_.load(std::memory_order_relaxed);
  out.min_ = min_.load(std::memory_order_relaxed);
  out.max_ = max_.load(std::memory_order_relaxed);
  if (total == 0) {  // a racing first record may have set min or max before its count
    out.min_ = ~std::uint64_t{0};
    out.max_ = 0;
  }
}

namespace {

struct Counter {
  const char* name;  // Prometheus: moirai_<name>_total
  std::uint64_t ShardStats::*field;
  const char* help;
};

constexpr Counter kCounters[] = {
    {"tasks_spawned", &ShardStats::tasks_spawned, "Tasks spawned on the shard."},
    {"task_resumptions", &ShardStats::tasks_run, "Task resumptions by the shard's loop."},
    {"tasks_completed", &ShardStats::tasks_completed, "Tasks that returned."},
    {"tasks_failed", &ShardStats::tasks_failed, "Tasks that ended with an exception."},
    {"tasks_cancelled", &ShardStats::tasks_cancelled, "Tasks that ended cancelled."},
    {"messages_in", &ShardStats::messages_in, "Cross-core messages received."},
    {"messages_out", &ShardStats::messages_out, "Cross-core messages sent."},
    {"io_completions", &ShardStats::completions, "io_uring completions reaped."},
    {"timers_fired", &ShardStats::timers_fired, "Timers fired."},
    {"wakeups_sent", &ShardStats::wakeups_sent, "Sleeping peers this shard had to wake."},
    {"sleeps", &ShardStats::sleeps, "Times the shard slept in its ring."},
    {"busy_polls", &ShardStats::busy_polls,
     "Times the shard waited in its ring while the kernel busy-polled."},
    {"inline_io", &ShardStats::inline_io,
     "Operations a non-blocking syscall finished in place of a ring request (sends with room)."},
    {"idle_poll_hits", &ShardStats::idle_poll_hits,
     "Idle spinning laps in which a socket polled by the shard itself had data "
     "(RecvOptions::poll_when_idle)."},
    {"stalls", &ShardStats::stalls, "Tasks that ran past the stall budget without suspending."},
    {"deadline_misses", &ShardStats::deadline_misses, "Real-time jobs that ended past their deadline."},
    {"wcet_overruns", &ShardStats::wcet_overruns, "Real-time jobs that ran longer than their WCET."},
};

constexpr const char* kHistogramHelp[kShardHistogramCount] = {
    "From a task becoming ready to its resumption.",
    "Length of one task resumption, from resume to the next suspension.",
    "From a timer's deadline to the loop firing it.",
};

// Prometheus bucket bounds in ns: 100 ns to 10 s in 1-2.5-5 steps.
std::vector<std::uint64_t> bucket_bounds() {
  std::vector<std::uint64_t> b;
  for (std::uint64_t decade = 100; decade <= 1'000'000'000; decade *= 10) {
    b.push_back(decade);
    b.push_back(decade * 5 / 2);
    b.push_back(decade * 5);
  }
  b.push_back(10'000'000'000);
  return b;
}

void append(std::string& out, const char* fmt, auto... args) {
  char buf[256];
  const int n = std::snprintf(buf, sizeof(buf), fmt, args...);
  if (n > 0) out.append(buf, static_cast<std::size_t>(std::min<int>(n, sizeof(buf) - 1)));
}

// `shard="N",cpu="C"`, or `shard="all"` for the merged snapshot.
std::string labels(const ShardMetrics& m) {
  if (m.shard == ShardMetrics::kAllShards) return "shard=\"all\"";
  return "shard=\"" + std::to_string(m.shard) + "\",cpu=\"" + std::to_string(m.cpu) + "\"";
}

void histogram_json(std::string& out, const LatencyHistogram& h) {
  append(out,
         "{\"count\":%" PRIu64 ",\"mean\":%.1f,\"min\":%" PRIu64 ",\"p50\":%" PRIu64 ",\"p90\":%" PRIu64
         ",\"p99\":%" PRIu64 ",\"p999\":%" PRIu64 ",\"p9999\":%" PRIu64 ",\"max\":%" PRIu64 "}",
         h.count(), h.mean(), h.min(), h.percentile(50), h.percentile(90), h.percentile(99),
         h.percentile(99.9), h.percentile(99.99), h.max());
}

void shard_json(std::string& out, const ShardMetrics& m) {
  out += '{';
  if (m.shard != ShardMetrics::kAllShards) append(out, "\"shard\":%u,\"cpu\":%d,", m.shard, m.cpu);
  out += "\"counters\":{";
  bool first = true;
  for (const Counter& c : kCounters) {
    append(out, "%s\"%s\":%" PRIu64, first ? "" : ",", c.name, m.counters.*c.field);
    first = false;
  }
  out += "},\"histograms\":{";
  for (std::size_t i = 0; i < kShardHistogramCount; ++i) {
    append(out, "%s\"%s\":", i == 0 ? "" : ",", to_string(static_cast<ShardHistogram>(i)));
    histogram_json(out, m.histograms[i]);
  }
  out += "}}";
}

}  // namespace

ShardStats& ShardStats::operator+=(const ShardStats& o) noexcept {
  for (const Counter& c : kCounters)
    this->*c.field += o.*c.field;
  return *this;
}

const char* to_string(ShardHistogram h) noexcept {
  switch (h) {
    case ShardHistogram::scheduling_delay:
      return "scheduling_delay";
    case ShardHistogram::task_run_time:
      return "task_run_time";
    case ShardHistogram::timer_lateness:
      return "timer_lateness";
    case ShardHistogram::kCount:
      break;
  }
  return "unknown";
}

void ShardMetrics::merge(const ShardMetrics& o) noexcept {
  counters += o.counters;
  for (std::size_t i = 0; i < kShardHistogramCount; ++i)
    histograms[i].merge(o.histograms[i]);
}

ShardMetrics RuntimeMetrics::merged() const {
  ShardMetrics all;
  all.shard = ShardMetrics::kAllShards;
  for (const ShardMetrics& s : shards)
    all.merge(s);
  return all;
}

std::string to_prometheus(const RuntimeMetrics& m) {
  std::string out;
  out.reserve(4096 + m.shards.size() * 8192);
  for (const Counter& c : kCounters) {
    append(out, "# HELP moirai_%s_total %s\n# TYPE moirai_%s_total counter\n", c.name, c.help, c.name);
    for (const ShardMetrics& s : m.shards)
      append(out, "moirai_%s_total{%s} %" PRIu64 "\n", c.name, labels(s).c_str(), s.counters.*c.field);
  }
  const std::vector<std::uint64_t> bounds = bucket_bounds();
  for (std::size_t i = 0; i < kShardHistogramCount; ++i) {
    const char* name = to_string(static_cast<ShardHistogram>(i));
    append(out, "# HELP moirai_%s_seconds %s\n# TYPE moirai_%s_seconds histogram\n", name, kHistogramHelp[i],
           name);
    for (const ShardMetrics& s : m.shards) {
      const LatencyHistogram& h = s.histograms[i];
      const std::string l = labels(s);
      // Cumulative counts: one pass over the non-empty buckets, advancing through the bounds.
      std::vector<std::uint64_t> cumulative(bounds.size(), 0);
      h.for_each_bucket([&](std::uint64_t, std::uint64_t high, std::uint64_t count) {
        for (std::size_t b = 0; b < bounds.size(); ++b) {
          if (high <= bounds[b]) {
            cumulative[b] += count;
            break;
          }
        }
      });
      std::uint64_t running = 0;
      for (std::size_t b = 0; b < bounds.size(); ++b) {
        running += cumulative[b];
        append(out, "moirai_%s_seconds_bucket{%s,le=\"%g\"} %" PRIu64 "\n", name, l.c_str(),
               static_cast<double>(bounds[b]) / 1e9, running);
      }
      append(out, "moirai_%s_seconds_bucket{%s,le=\"+Inf\"} %" PRIu64 "\n", name, l.c_str(), h.count());
      append(out, "moirai_%s_seconds_sum{%s} %.9f\n", name, l.c_str(),
             h.mean() * static_cast<double>(h.count()) / 1e9);
      append(out, "moirai_%s_seconds_count{%s} %" PRIu64 "\n", name, l.c_str(), h.count());
    }
  }
  return out;
}

std::string to_json(const RuntimeMetrics& m) {
  std::string out = "{\"shards\":[";
  for (std::size_t i = 0; i < m.shards.size(); ++i) {
    if (i != 0) out += ',';
    shard_json(out, m.shards[i]);
  }
  out += "],\"all\":";
  shard_json(out, m.merged());
  out += '}';
  return out;
}

namespace detail {

RuntimeMetrics collect_metrics(const RuntimeState& state) {
  RuntimeMetrics m;
  m.shards.resize(state.shards.size());
  for (std::size_t i = 0; i < state.shards.size(); ++i)
    state.shards[i]->metrics_into(m.shards[i]);
  return m;
}

}  // namespace detail

RuntimeMetrics Runtime::metrics() const {
  return detail::collect_metrics(*state_);
}

RuntimeMetrics runtime_metrics() {
  const detail::RuntimeState* state = detail::t_runtime_state;
  if (state == nullptr)
    throw Error(Errc::invalid_argument,
                "runtime_metrics() called off a shard; call Runtime::metrics() on the runtime instead");
  return detail::collect_metrics(*state);
}

}  // namespace moirai
