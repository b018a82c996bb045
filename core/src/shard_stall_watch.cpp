// The stall watch: a task that runs past the stall budget without suspending is reported by its own shard
// when it suspends, and by an idle peer while it still runs.
#include "moirai/core/detail/shard_core.hpp"

#include <cstdio>

#include "runtime_state.hpp"

namespace moirai::detail {

void ShardCore::report_stall(TaskControl* t, std::uint64_t ran_ticks) {
  t->stall_reported = true;
  bump(stats_.stalls);
  StallReport report;
  report.shard = id_;
  report.task_id = t->id;
  report.task_name = t->name;
  report.ran_for = std::chrono::nanoseconds(ticks_to_ns(ran_ticks));
  report.budget = rt_.options.stall_budget;
  report.seen_by = id_;
  if (rt_.options.on_stall) {
    rt_.options.on_stall(report);
  } else {
    std::fprintf(
        stderr,
        "moirai: shard %u (cpu %d): task '%s' (id %llu) ran %lld us without suspending (stall budget %lld "
        "us); other tasks on this shard waited\n",
        id_, cpu_, t->name, static_cast<unsigned long long>(t->id),
        static_cast<long long>(report.ran_for.count() / 1000),
        static_cast<long long>(report.budget.count() / 1000));
  }
}

// An idle shard looks at its peers once per stall budget: a peer whose current resumption began longer ago
// than the budget is stuck in a task that does not suspend, and cannot say so itself until it ends.
void ShardCore::watch_peers() noexcept {
  const std::uint64_t now = ticks();
  if (now - last_watch_ < stall_ticks_) return;
  last_watch_ = now;
  for (const auto& p : rt_.shards) {
    ShardCore& peer = *p;
    if (&peer == this) continue;
    const std::uint64_t since = peer.running_since_.load(std::memory_order_acquire);
    // `since` after `now`: another CPU's counter a little ahead, or a run that began after our read.
    if (since == 0 || since > now || now - since <= stall_ticks_) continue;
    const std::uint64_t id = peer.running_task_id_.load(std::memory_order_relaxed);
    // The id is that run's only if no other run began in between (an acquire-release pair per store; a run
    // that began since is not late yet, so it is skipped and looked at next time).
    std::atomic_thread_fence(std::memory_order_acquire);
    if (peer.running_since_.load(std::memory_order_relaxed) != since) continue;
    std::uint64_t reported = peer.ongoing_reported_.load(std::memory_order_relaxed);
    if (reported == since) continue;
    if (!peer.ongoing_reported_.compare_exchange_strong(reported, since, std::memory_order_relaxed)) continue;
    report_ongoing_stall(peer, id, now - since);
  }
}

// Whether a peer is inside a run of tasks that no watch has reported: a sleeping shard then wakes within a
// stall budget to look again, so an idle runtime's watch needs no thread of its own.
bool ShardCore::peer_in_unreported_run() const noexcept {
  for (const auto& p : rt_.shards) {
    if (p.get() == this) continue;
    const std::uint64_t since = p->running_since_.load(std::memory_order_relaxed);
    if (since != 0 && since != p->ongoing_reported_.load(std::memory_order_relaxed)) return true;
  }
  return false;
}

void ShardCore::report_ongoing_stall(const ShardCore& peer, std::uint64_t task_id,
                                     std::uint64_t ran_ticks) noexcept {
  try {
    StallReport report;
    report.shard = peer.id_;
    report.task_id = task_id;
    report.ran_for = std::chrono::nanoseconds(ticks_to_ns(ran_ticks));
    report.budget = rt_.options.stall_budget;
    report.ongoing = true;
    report.seen_by = id_;
    if (rt_.options.on_stall) {
      rt_.options.on_stall(report);
      return;
    }
    std::fprintf(stderr,
                 "moirai: shard %u (cpu %d): task id %llu has been running %lld us without suspending (stall "
                 "budget %lld us), seen from shard %u; nothing else runs on shard %u until it suspends\n",
                 peer.id_, peer.cpu_, static_cast<unsigned long long>(task_id),
                 static_cast<long long>(report.ran_for.count() / 1000),
                 static_cast<long long>(report.budget.count() / 1000), id_, peer.id_);
  } catch (...) {
    // A handler that throws cannot be allowed to take the watching shard down; the stall is reported again
    // by its own shard when the task suspends.
  }
}

}  // namespace moirai::detail
