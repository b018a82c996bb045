// The shard object: its construction (the cross-core rings and the histograms, mapped on its node) and
// what it reports about itself. The rest of the shard is split by concern into the other shard_*.cpp files.
#include "moirai/core/detail/shard_core.hpp"

#include <unistd.h>

#include <new>

#include "moirai/numa/topology.hpp"
#include "runtime_state.hpp"

namespace moirai {

const char* to_string(TaskStatus s) noexcept {
  switch (s) {
    case TaskStatus::queued:
      return "queued";
    case TaskStatus::running:
      return "running";
    case TaskStatus::completed:
      return "completed";
    case TaskStatus::cancelled:
      return "cancelled";
    case TaskStatus::failed:
      return "failed";
  }
  return "?";
}

Shard& this_shard() {
  if (detail::t_shard == nullptr) [[unlikely]] {
    throw Error(Errc::not_on_shard,
                "this call must be made on a shard thread (inside a task of Runtime::run() or started by "
                "Runtime::start()); from any other thread use Runtime::submit()");
  }
  return *detail::t_shard;
}

const ShardMemory& Shard::memory() const noexcept {
  return detail::core(*this).memory_;
}

numa::NodePool* Shard::io_buffers() noexcept {
  auto& pool = detail::core(*this).io_buffers_;
  return pool ? &*pool : nullptr;
}

const rt::ApplyResult& Shard::thread_policy() const noexcept {
  return detail::core(*this).thread_policy_;
}

bool Shard::kernel_busy_poll() const noexcept {
  return detail::core(*this).kernel_busy_poll_;
}

ShardStats Shard::stats() const noexcept {
  const detail::ShardCore& c = detail::core(*this);
  auto r = [](const std::atomic<std::uint64_t>& n) { return n.load(std::memory_order_relaxed); };
  ShardStats s;
  s.tasks_spawned = r(c.stats_.tasks_spawned);
  s.tasks_run = r(c.stats_.tasks_run);
  s.tasks_completed = r(c.stats_.tasks_completed);
  s.tasks_failed = r(c.stats_.tasks_failed);
  s.tasks_cancelled = r(c.stats_.tasks_cancelled);
  s.messages_in = r(c.stats_.messages_in);
  s.messages_out = r(c.stats_.messages_out);
  s.completions = r(c.stats_.completions);
  s.timers_fired = r(c.stats_.timers_fired);
  s.wakeups_sent = r(c.stats_.wakeups_sent);
  s.sleeps = r(c.stats_.sleeps);
  s.busy_polls = r(c.stats_.busy_polls);
  s.inline_io = r(c.stats_.inline_io);
  s.idle_poll_hits = r(c.stats_.idle_poll_hits);
  s.stalls = r(c.stats_.stalls);
  s.deadline_misses = r(c.stats_.deadline_misses);
  s.wcet_overruns = r(c.stats_.wcet_overruns);
  return s;
}

void Shard::metrics_into(ShardMetrics& out) const noexcept {
  const detail::ShardCore& c = detail::core(*this);
  out.shard = id_;
  out.cpu = cpu_;
  out.counters = stats();
  for (std::size_t i = 0; i < kShardHistogramCount; ++i) {
    if (c.histograms_ != nullptr) {
      c.histograms_[i].snapshot_into(out.histograms[i]);
    } else {
      out.histograms[i].reset();
    }
  }
}

}  // namespace moirai

namespace moirai::detail {

namespace {

int node_of(int cpu) {
  const int node = numa::Topology::system().node_of_cpu(cpu);
  return node >= 0 ? node : 0;
}

}  // namespace

ShardCore::ShardCore(RuntimeState& rt, unsigned id, int cpu)
    : Shard(id, cpu, node_of(cpu), static_cast<unsigned>(rt.cpus.size())), rt_(rt) {
  memory_options_.huge_pages = rt.options.huge_pages ? numa::HugePages::prefer : numa::HugePages::off;
  memory_options_.lock = rt.options.lock_memory;
  memory_options_.prefault = true;
  inline_io_per_resume_ = rt.options.inline_io_per_resumption;
  idle_polls_per_lap_ = rt.options.idle_polls_per_lap;
  memory_.cpu = cpu;
  memory_.node = node_;
  // Message slots are small: huge pages would waste most of a 2 MiB page per ring.
  numa::AllocationOptions slot_options = memory_options_;
  slot_options.huge_pages = numa::HugePages::off;
  std::string lock_refused;
  const std::size_t n = shard_count_;
  incoming_.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    incoming_.push_back(std::make_unique<SpscRing>(rt.options.queue_capacity, [&](std::size_t bytes) {
      return map_shard_memory(node_, bytes, slot_options, lock_refused);
    }));
    memory_.message_bytes += incoming_.back()->memory().size();
  }
  if (rt.options.metrics) {
    constexpr std::size_t bytes = sizeof(SharedHistogram) * kShardHistogramCount;
    numa::AllocationOptions histogram_options = memory_options_;
    histogram_options.huge_pages = numa::HugePages::off;
    histogram_memory_ = map_shard_memory(node_, bytes, histogram_options, lock_refused);
    histograms_ = new (histogram_memory_.data()) SharedHistogram[kShardHistogramCount];
    ns_per_tick_q32_ = static_cast<std::uint64_t>(1000.0 / ticks_per_us() * 4294967296.0);
  }
  if (!lock_refused.empty()) {
    memory_options_.lock = false;
    memory_.warning = "memory not locked: " + lock_refused;
  }
  outgoing_.assign(n, nullptr);
  pending_.assign(n, {});
  dirty_.reserve(n);
  is_dirty_.assign(n, 0);
}

ShardCore::~ShardCore() {
  if (eventfd_ >= 0) close(eventfd_);
}

}  // namespace moirai::detail
