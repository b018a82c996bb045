// The shard's loop, and its shutdown.
#include "moirai/core/detail/shard_core.hpp"

#include <cstdio>

#include "runtime_state.hpp"

namespace moirai::detail {

// Each completion reaped resumes (schedules) what waited for it.
bool ShardCore::reap_completions() noexcept {
  const unsigned c = ring_->poll();
  if (c == 0) return false;
  bump(stats_.completions, c);
  // A MSG_RING wake-up was lost (the kernel refused it): wake every peer the slow, sure way.
  if (ring_->take_msg_ring_failures() != 0) [[unlikely]]
    wake_all_peers_by_eventfd();
  return true;
}

bool ShardCore::fire_timers() noexcept {
  if (timers_.empty()) return false;
  SharedHistogram* lateness = histograms_ != nullptr
                                  ? &histograms_[static_cast<std::size_t>(ShardHistogram::timer_lateness)]
                                  : nullptr;
  const unsigned n = timers_.fire_expired(monotonic_ns(), lateness);
  if (n == 0) return false;
  bump(stats_.timers_fired, n);
  return true;
}

// Shutdown: on seeing `stopping`, cancel every live task (each observes it at its next suspension point),
// keep looping (answering requests from peers with `stopped`) until none is left, then wait for every shard
// to reach the same point, so no shard leaves while a peer may still answer one of its requests.

bool ShardCore::stop_step() {
  if (!stop_seen_) {
    stop_seen_ = true;
    stop_started_ = ticks();
    cancel_all_live();
  }
  if (!quiesced_) {
    if (live_count_ == 0 && dirty_.empty()) {
      quiesce();
    } else if (ticks_to_ns(ticks() - stop_started_) > rt_.options.shutdown_timeout.count()) {
      for (TaskControl* t = live_head_; t != nullptr; t = t->next) {
        std::fprintf(
            stderr,
            "moirai: shard %u: task '%s' (id %llu) did not finish within the shutdown timeout (%lld ms) "
            "after cancellation; its frame is destroyed\n",
            id_, t->name, static_cast<unsigned long long>(t->id),
            static_cast<long long>(rt_.options.shutdown_timeout.count() / 1'000'000));
      }
      quiesce();  // fini_on_thread destroys what is left, after the ring is closed
    }
  }
  return quiesced_ && rt_.quiesced.load(std::memory_order_acquire) == shard_count_;
}

// This shard has nothing left to run; the last shard to get here wakes the others so they see it too.
void ShardCore::quiesce() noexcept {
  quiesced_ = true;
  if (rt_.quiesced.fetch_add(1, std::memory_order_acq_rel) + 1 != shard_count_) return;
  for (auto& s : rt_.shards) {
    if (s.get() != this) s->wake_from_outside();
  }
}

void ShardCore::run_loop() {
  for (;;) {
    // Messages first, then the tasks they woke, in the same lap: a reply resumes its awaiter without waiting
    // for an io poll and a timer check in between. Replies made while draining go out before the tasks run.
    bool busy = drain_incoming();
    busy |= drain_external();
    // Before the tasks, so that a waiter a poller resumes runs in this lap. One branch when none is there.
    if (pollers_ != nullptr) busy |= run_pollers(pollers_);
    flush_outgoing();
    busy |= run_tasks();
    busy |= flush_outgoing();
    busy |= reap_completions();
    busy |= fire_timers();
    allocator_->drain_remote();
    if (rt_.stopping.load(std::memory_order_relaxed)) [[unlikely]] {
      if (stop_step()) break;
    }
    if (busy) {
      idle_since_ = 0;
      continue;
    }
    idle();
  }
  // Every shard is quiet. Deliver what is still in flight (one-way messages) before leaving.
  drain_incoming();
  drain_external();
  run_tasks();
}

}  // namespace moirai::detail
