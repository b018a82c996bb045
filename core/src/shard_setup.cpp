// Set-up and tear-down, on the shard's own thread (the ring is single-issuer; memory is first touched here so
// that it lands on this CPU's node).
#include "moirai/core/detail/shard_core.hpp"

#include <sys/eventfd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "runtime_state.hpp"

namespace moirai::detail {

void ShardCore::init_on_thread() {
  t_shard = this;
  apply_thread_policy();
  admitted_.reserve(64);
  admitted_tasks_.reserve(64);
  map_frame_memory();
  map_io_buffers();
  settle_memory_report();
  open_ring();
  spin_ticks_ = ns_to_ticks((rt_.options.idle == IdleStrategy::busy_poll ? rt_.options.busy_poll_after
                                                                         : rt_.options.spin_before_sleep)
                                .count());
  stall_ticks_ = ns_to_ticks(rt_.options.stall_budget.count());
}

void ShardCore::map_frame_memory() {
  FrameMemoryOptions fo;
  fo.node = node_;
  fo.initial_bytes = rt_.options.memory_per_shard;
  fo.chunk_bytes = rt_.options.frame_chunk_bytes;
  fo.memory = memory_options_;
  allocator_ = std::make_unique<FrameAllocator>(fo);
  t_frame_allocator = allocator_.get();
  if (!allocator_->lock_refused().empty()) {
    memory_options_.lock = false;
    if (memory_.warning.empty()) memory_.warning = "memory not locked: " + allocator_->lock_refused();
  }
}

void ShardCore::map_io_buffers() {
  if (rt_.options.io_buffer_count == 0) return;
  numa::AllocationOptions bo = memory_options_;
  bo.huge_pages = numa::HugePages::off;
  constexpr std::size_t kAlign = numa::NodePool::kAlignment;
  const std::size_t block = (rt_.options.io_buffer_size + kAlign - 1) / kAlign * kAlign;
  std::string refused;
  numa::NodeMemory m = map_shard_memory(node_, block * rt_.options.io_buffer_count, bo, refused);
  io_buffers_.emplace(std::move(m), rt_.options.io_buffer_size, rt_.options.io_buffer_count, false);
  memory_.io_buffer_bytes = io_buffers_->memory().size();
  if (!refused.empty()) {
    memory_options_.lock = false;
    if (memory_.warning.empty()) memory_.warning = "memory not locked: " + refused;
  }
}

// What the shard's memory obtained, and the warnings for what it did not.
void ShardCore::settle_memory_report() {
  memory_.frame_bytes = allocator_->bytes_mapped();
  memory_.pages = allocator_->pages();
  memory_.bound = allocator_->bound();
  memory_.locked = allocator_->locked() && memory_options_.lock;
  // Running unlocked is allowed, silently it is not: one line per runtime, the reason and the fix with it.
  if (rt_.options.lock_memory && !memory_.locked && !rt_.memory_lock_warned.exchange(true)) {
    std::fprintf(stderr, "moirai: shard %u (cpu %d): %s\n", id_, cpu_, memory_.warning.c_str());
  }
  memory_.prefaulted = true;
  if (rt_.options.huge_pages && memory_.pages == numa::PageKind::normal) {
    if (!memory_.warning.empty()) memory_.warning += "; ";
    memory_.warning +=
        "huge pages not obtained (no hugetlb pages reserved and transparent huge pages off): reserve some "
        "with `sysctl vm.nr_hugepages=N` or enable THP (madvise)";
  }
}

// The ring, the eventfd that wakes the shard from threads without a ring, and kernel busy polling.
void ShardCore::open_ring() {
  io::RingOptions ro;
  ro.sq_entries = rt_.options.ring_entries;
  ro.best_mode = rt_.options.ring_mode;
  ring_.emplace(ro);

  // A blocking eventfd on purpose: io_uring returns -EAGAIN for a read on a non-blocking fd instead of arming
  // a poll. Writes never block (the counter would have to reach 2^64-1).
  eventfd_ = eventfd(0, EFD_CLOEXEC);
  if (eventfd_ < 0) {
    throw Error(Errc::setup_failed, std::string("eventfd failed: ") + std::strerror(errno) +
                                        "; raise the file-descriptor limit (ulimit -n)");
  }
  msg_ring_wake_.shard = this;
  msg_ring_wake_.on_complete = [](io::Completion*, int, std::uint32_t) noexcept {};  // waking was the point
  eventfd_wake_.shard = this;
  eventfd_wake_.on_complete = [](io::Completion* c, int, std::uint32_t) noexcept {
    auto* self = static_cast<WakeCompletion*>(c)->shard;
    self->eventfd_armed_ = false;
    self->arm_eventfd_read();
  };
  arm_eventfd_read();
  ring_->submit();
  if (rt_.options.idle == IdleStrategy::busy_poll) {
    const std::error_code refused = ring_->enable_busy_poll(
        std::chrono::duration_cast<std::chrono::microseconds>(rt_.options.busy_poll_window));
    kernel_busy_poll_ = !refused;
    if (!kernel_busy_poll_ && !rt_.busy_poll_warned.exchange(true)) {
      std::fprintf(stderr, "moirai: idle strategy busy-poll: %s; shards spin in user space instead\n",
                   io::describe_busy_poll_error(refused).c_str());
    }
  }
}

void ShardCore::arm_eventfd_read() noexcept {
  if (eventfd_armed_ || !ring_) return;
  io_uring_sqe* sqe = ring_->get_sqe();
  if (sqe == nullptr) return;  // retried at the next completion; external wakers also trip the sleeping check
  io_uring_prep_read(sqe, eventfd_, &eventfd_value_, sizeof(eventfd_value_), 0);
  io::Ring::set_completion(sqe, &eventfd_wake_);
  eventfd_armed_ = true;
}

void ShardCore::fini_on_thread() noexcept {
  // Tasks still live here overran the shutdown timeout (or set-up failed half-way). Close the ring first: the
  // kernel cancels their io before their frames, which io buffers may live in, are freed.
  ring_.reset();
  while (live_head_ != nullptr) {
    TaskControl* t = live_head_;
    live_head_ = t->next;
    t->frame.destroy();
    t->~TaskControl();
    FrameAllocator::deallocate(t);
  }
  live_count_ = 0;
  io_buffers_.reset();
  if (allocator_) allocator_->drain_remote();
  allocator_.reset();
  t_frame_allocator = nullptr;
  t_shard = nullptr;
}

void ShardCore::apply_thread_policy() {
  const rt::ThreadPolicy& want = rt_.options.thread_policy;
  if (want == rt::ThreadPolicy{}) {
    thread_policy_.ok = true;
    thread_policy_.requested = thread_policy_.applied = want;
    return;
  }
  thread_policy_ = rt::apply_thread_policy(want, 0, rt_.options.thread_policy_options);
  if (!thread_policy_.ok && !rt_.thread_policy_warned.exchange(true)) {
    std::fprintf(stderr, "moirai: shard %u (cpu %d) runs %s instead of %s: %s\n", id_, cpu_,
                 thread_policy_.applied.to_string().c_str(), want.to_string().c_str(),
                 thread_policy_.warning.c_str());
  }
}

}  // namespace moirai::detail
