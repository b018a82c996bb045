// What an idle shard does: spin, poll, or sleep in its ring, and how peers wake it.
#include "moirai/core/detail/shard_core.hpp"

#include <unistd.h>

#include <algorithm>

#include "moirai/core/cpu_relax.hpp"
#include "runtime_state.hpp"

namespace moirai::detail {

namespace {

// A full peer ring does not wake us; look again this soon.
constexpr long long kBackpressureRecheckNs = 50'000;
// While stopping, look at the shutdown timeout this often.
constexpr long long kStoppingRecheckNs = 1'000'000;
// Spin strategy: idle laps between two reads of the clock for the watch.
constexpr unsigned kWatchLaps = 1024;
// busy_poll: a shard leaves the kernel's spin this long before its next timer is due and spins the rest in
// user space, since a wait that runs to its timeout ends with a short sleep in the kernel that would make the
// timer that late.
constexpr long long kBusyPollTimerMarginNs = 50'000;

}  // namespace

// Sleeping and waking.
//
// The protocol is Dekker's: the sleeper stores `sleeping_ = true`, fences, then looks at its queues; a sender
// publishes its message, fences, then looks at `sleeping_`. With both fences seq_cst, at least one of them
// sees the other's write, so a message is never left unseen by a sleeping shard, and a busy shard costs its
// senders one load and no syscall.

void ShardCore::wake_peer(ShardCore& peer) noexcept {
  // Kept even under the spin strategy, where nobody sleeps: the fence also drains the store buffer that holds
  // the new message, and the cross-core round trip is faster with it than without (docs/performance.md).
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (!peer.sleeping_.load(std::memory_order_relaxed)) return;
  if (!peer.sleeping_.exchange(false, std::memory_order_relaxed)) return;  // another sender already woke it
  bump(stats_.wakeups_sent);
  if (ring_ && peer.ring_ && ring_->prep_msg_ring(peer.ring_->fd(), &peer.msg_ring_wake_)) {
    ring_->submit();
    return;
  }
  const std::uint64_t one = 1;
  [[maybe_unused]] ssize_t rc = ::write(peer.eventfd_, &one, sizeof(one));
}

void ShardCore::wake_all_peers_by_eventfd() noexcept {
  for (auto& peer : rt_.shards) {
    if (peer.get() == this) continue;
    const std::uint64_t one = 1;
    [[maybe_unused]] ssize_t rc = ::write(peer->eventfd_, &one, sizeof(one));
  }
}

void ShardCore::wake_from_outside() noexcept {
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (!sleeping_.load(std::memory_order_relaxed)) return;
  if (!sleeping_.exchange(false, std::memory_order_relaxed)) return;
  if (eventfd_ < 0) return;
  const std::uint64_t one = 1;
  [[maybe_unused]] ssize_t rc = ::write(eventfd_, &one, sizeof(one));
}

// Pollers. The list is walked with the next pointer saved first, since a poller may remove itself when it
// resumes its waiter.

}  // namespace moirai::detail

namespace moirai {

void Shard::add_poller(Poller* p, PollWhen when) noexcept {
  detail::core(*this).add_poller(p, when);
}

void Shard::remove_poller(Poller* p) noexcept {
  detail::core(*this).remove_poller(p);
}

}  // namespace moirai

namespace moirai::detail {

void ShardCore::add_poller(Poller* p, PollWhen when) noexcept {
  if (p->list_ != nullptr) return;
  Poller*& head = when == PollWhen::every_lap ? pollers_ : idle_pollers_;
  if (&head == &idle_pollers_) ++idle_poller_count_;
  p->list_ = &head;
  p->prev_ = nullptr;
  p->next_ = head;
  if (head != nullptr) head->prev_ = p;
  head = p;
}

void ShardCore::remove_poller(Poller* p) noexcept {
  if (p->list_ == nullptr) return;
  if (p->list_ == &idle_pollers_) --idle_poller_count_;
  if (idle_cursor_ == p) idle_cursor_ = p->next_;
  if (p->prev_ != nullptr) p->prev_->next_ = p->next_;
  if (p->next_ != nullptr) p->next_->prev_ = p->prev_;
  if (*p->list_ == p) *p->list_ = p->next_;
  p->prev_ = p->next_ = nullptr;
  p->list_ = nullptr;
}

bool ShardCore::run_pollers(Poller* head) noexcept {
  bool busy = false;
  for (Poller* p = head; p != nullptr;) {
    Poller* next = p->next_;
    busy |= p->poll();
    p = next;
  }
  return busy;
}

// Up to idle_polls_per_lap_ idle pollers, from the one whose turn it is, wrapping round the list; the next
// lap goes on from where this one stopped.
bool ShardCore::run_idle_pollers() noexcept {
  bool busy = false;
  const unsigned n = std::min(idle_polls_per_lap_, idle_poller_count_);
  Poller* p = idle_cursor_ != nullptr ? idle_cursor_ : idle_pollers_;
  for (unsigned i = 0; i < n && p != nullptr; ++i) {
    Poller* next = p->next_;  // saved first: the poller may remove itself
    busy |= p->poll();
    p = next != nullptr ? next : idle_pollers_;
  }
  idle_cursor_ = p;
  return busy;
}

// One idle lap spent spinning in user space: idle pollers in place of the pause (their syscalls pace the lap
// well enough), or the pause.
void ShardCore::spin_lap() noexcept {
  if (idle_pollers_ == nullptr) {
    cpu_relax();
    return;
  }
  if (run_idle_pollers()) {
    bump(stats_.idle_poll_hits);
    idle_since_ = 0;
  }
}

// Each poller publishes its own "sleeping" word and looks again after the shard's own `sleeping_` fence, the
// same Dekker protocol: its producer publishes, fences, then reads that word.
bool ShardCore::prepare_pollers_for_sleep(long long& timeout_ns) noexcept {
  for (Poller* p = pollers_; p != nullptr; p = p->next_) {
    if (p->prepare_sleep(timeout_ns)) return true;
  }
  return false;
}

void ShardCore::end_pollers_sleep() noexcept {
  for (Poller* p = pollers_; p != nullptr;) {
    Poller* next = p->next_;
    p->end_sleep();
    p = next;
  }
}

bool ShardCore::has_work_for_sleep_check() const noexcept {
  if (!runq_.empty()) return true;
  for (const auto& ring : incoming_) {
    if (ring->readable()) return true;
  }
  if (external_.load(std::memory_order_relaxed) != nullptr) return true;
  if (rt_.stopping.load(std::memory_order_relaxed) && !stop_seen_) return true;
  // The last shard to quiesce wakes the others after its count; a shard going to sleep must look at the
  // count after raising `sleeping_`, or that wake-up can pass it by and it sleeps forever.
  if (quiesced_ && rt_.quiesced.load(std::memory_order_relaxed) == shard_count_) return true;
  io_uring* r = const_cast<io::Ring&>(*ring_).native();
  return io_uring_cq_ready(r) != 0 || ring_->needs_enter();
}

void ShardCore::sleep_in_ring(bool busy_poll) {
  sleeping_.store(true, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (has_work_for_sleep_check()) {
    sleeping_.store(false, std::memory_order_relaxed);
    return;
  }
  long long timeout = -1;
  auto cap = [&timeout](long long limit) { timeout = timeout < 0 ? limit : std::min(timeout, limit); };
  const long long early = busy_poll ? kBusyPollTimerMarginNs : 0;
  if (!timers_.empty()) cap(std::max<long long>(0, timers_.next_deadline() - monotonic_ns() - early));
  if (busy_poll) cap(rt_.options.busy_poll_window.count());
  if (!dirty_.empty()) cap(kBackpressureRecheckNs);
  if (stop_seen_ && !quiesced_) cap(kStoppingRecheckNs);
  // Watch a peer inside a run. Its line (which it writes at each resumption) is read only when the cap
  // would shorten the wait, so not by a busy-polling shard whose window is under the budget.
  const long long budget = rt_.options.stall_budget.count();
  if (stall_ticks_ != 0 && (timeout < 0 || timeout > budget) && peer_in_unreported_run()) cap(budget);
  if (pollers_ != nullptr && prepare_pollers_for_sleep(timeout)) {
    end_pollers_sleep();
    sleeping_.store(false, std::memory_order_relaxed);
    return;
  }
  bump(busy_poll ? stats_.busy_polls : stats_.sleeps);
  const unsigned n = ring_->wait(timeout);
  if (n != 0) bump(stats_.completions, n);
  sleeping_.store(false, std::memory_order_relaxed);
  if (pollers_ != nullptr) end_pollers_sleep();
}

// Whether the shard has been idle for spin_ticks_ (spin_before_sleep, or busy_poll_after), counting from its
// first idle lap since it last had work.
bool ShardCore::spun_long_enough() noexcept {
  const std::uint64_t now = ticks();
  if (idle_since_ == 0) idle_since_ = now;
  return now - idle_since_ >= spin_ticks_;
}

void ShardCore::idle() {
  if (stall_ticks_ != 0 && shard_count_ > 1) {
    if (rt_.options.idle != IdleStrategy::spin || ++idle_laps_ % kWatchLaps == 0) watch_peers();
  }
  switch (rt_.options.idle) {
    case IdleStrategy::spin:
      // The pause stays: back-to-back polls of the incoming slot would contend with the producer's write of
      // it, and slow the round trip down.
      spin_lap();
      return;
    case IdleStrategy::sleep:
      sleep_in_ring();
      return;
    case IdleStrategy::spin_then_sleep:
      if (spun_long_enough()) {
        sleep_in_ring();
        idle_since_ = 0;
        return;
      }
      spin_lap();
      return;
    case IdleStrategy::busy_poll:
      // Spin in user space first (busy_poll_after), for the last stretch before a timer, and where the kernel
      // cannot busy-poll. A wait that ends with nothing to do leaves `idle_since_` as it is, so the shard
      // goes straight back into the kernel; any work (run_loop) restarts the spin.
      if (kernel_busy_poll_ && spun_long_enough() &&
          (timers_.empty() || timers_.next_deadline() - monotonic_ns() > kBusyPollTimerMarginNs)) {
        sleep_in_ring(true);
      } else {
        spin_lap();
      }
      return;
  }
}

}  // namespace moirai::detail
