// Cross-core messages: claiming and committing slots in the rings to peers, the queue of messages waiting
// for room, publishing them, draining the incoming rings, and work handed in from threads that are not
// shards.
#include "moirai/core/detail/shard_core.hpp"

#include "runtime_state.hpp"

namespace moirai::detail {

Message* ShardCore::try_claim(unsigned dest) noexcept {
  if (pending_[dest].head != nullptr) return nullptr;  // keep order behind what already waits
  return outgoing_[dest]->try_claim();
}

void ShardCore::commit(unsigned dest) noexcept {
  outgoing_[dest]->commit();
  bump(stats_.messages_out);
  if (!is_dirty_[dest]) {
    is_dirty_[dest] = 1;
    dirty_.push_back(dest);
  }
}

void ShardCore::send(unsigned dest, Outbound* msg) noexcept {
  if (Message* slot = try_claim(dest)) {
    msg->fill(msg, *slot);
    commit(dest);
    return;
  }
  msg->next = nullptr;
  PendingList& pl = pending_[dest];
  if (pl.tail != nullptr) {
    pl.tail->next = msg;
  } else {
    pl.head = msg;
  }
  pl.tail = msg;
  if (!is_dirty_[dest]) {
    is_dirty_[dest] = 1;
    dirty_.push_back(dest);
  }
}

bool ShardCore::flush_outgoing() noexcept {
  if (dirty_.empty()) return false;
  bool moved = false;
  for (std::size_t k = 0; k < dirty_.size();) {
    const unsigned d = dirty_[k];
    SpscRing& ring = *outgoing_[d];
    PendingList& pl = pending_[d];
    while (pl.head != nullptr) {
      Message* slot = ring.try_claim();
      if (slot == nullptr) break;
      Outbound* o = pl.head;
      pl.head = o->next;
      if (pl.head == nullptr) pl.tail = nullptr;
      o->fill(o, *slot);
      ring.commit();
      bump(stats_.messages_out);
      moved = true;
    }
    if (ring.take_new_since_notify() && d != id_) wake_peer(*rt_.shards[d]);
    if (pl.head == nullptr) {
      is_dirty_[d] = 0;
      dirty_[k] = dirty_.back();
      dirty_.pop_back();
    } else {
      ++k;
    }
  }
  return moved;
}

bool ShardCore::drain_incoming() noexcept {
  std::size_t total = 0;
  for (auto& ring : incoming_)
    total += ring->consume(*this, 256);
  if (total == 0) return false;
  bump(stats_.messages_in, total);
  return true;
}

void ShardCore::push_external(ExternalWork* w) noexcept {
  ExternalWork* head = external_.load(std::memory_order_relaxed);
  do {
    w->next = head;
    // release: the work's contents are visible to the shard's acquire exchange in drain_external.
  } while (!external_.compare_exchange_weak(head, w, std::memory_order_release, std::memory_order_relaxed));
  wake_from_outside();
}

bool ShardCore::drain_external(bool refuse) noexcept {
  if (external_.load(std::memory_order_relaxed) == nullptr) return false;
  ExternalWork* w = external_.exchange(nullptr, std::memory_order_acquire);
  // The stack is newest-first; reverse it so external work runs in the order it was handed in.
  ExternalWork* fifo = nullptr;
  while (w != nullptr) {
    ExternalWork* next = w->next;
    w->next = fifo;
    fifo = w;
    w = next;
  }
  while (fifo != nullptr) {
    ExternalWork* next = fifo->next;
    fifo->run(*this, refuse);  // deletes itself when done
    fifo = next;
  }
  return true;
}

}  // namespace moirai::detail
