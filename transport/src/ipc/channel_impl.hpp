// The state of one end of an IpcChannel (internal), shared by the files of transport/src/ipc/:
//
//   region.cpp      the region's layout, and making and mapping it (create_region, open_region)
//   channel.cpp     IpcChannel::create and open, binding to a shard, closing, the accessors
//   send.cpp        the producer: try_send and the send awaiter
//   receive.cpp     the consumer: take, the channel as its shard's Poller, the receive awaiter
//   wake.cpp        the wake paths: the writer's wake-up, the reader's futex wait or FIFO poll
//   peer_watch.cpp  the watch of the peer process (a pidfd poll, or its pid checked)
//
// Made at create/open (the only allocations), then touched by the bound shard only, except peer.dead, which a
// send from any thread reads. Its parts are members, not pointers: the hot paths reach every field at a fixed
// offset from the one Impl.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "moirai/core/shard.hpp"
#include "moirai/io/ring.hpp"
#include "moirai/transport/detail/recv_stash.hpp"
#include "moirai/transport/ipc.hpp"
#include "region.hpp"

namespace moirai::transport::ipc {

// Without a pidfd (or poll through the ring), the peer's pid is checked this often instead.
inline constexpr std::int64_t kLivenessRecheckNs = 1'000'000;
inline constexpr std::int64_t kFifoSafetyRecheckNs =
    std::chrono::duration_cast<std::chrono::nanoseconds>(kIpcFifoSafetyRecheck).count();

// Our end of the peer's FIFO, opened at the first wake-up that needs it and kept.
struct PeerFifo {
  int fd = -1;
  bool reported = false;  // a failure to reach it was logged
};

// The FIFO that wakes the reader of side `reader_side` where there is no futex wait through the ring.
std::string wake_fifo_path(std::string_view name, int reader_side);
// Wakes the reader of `ctl` if it sleeps: futex_wake, or a byte into its FIFO (wake.cpp).
void wake_reader(RingControl& ctl, std::string_view name, int reader_side, PeerFifo& fifo) noexcept;

// The ring this end writes: one writer, this object. The next position to write and the last released head
// seen (the reader's, read again only when the ring looks full).
struct OutRing {
  RingControl* ctl = nullptr;
  std::byte* slots = nullptr;
  std::uint64_t tail = 0;
  std::uint64_t head_cache = 0;
};

// The ring this end reads: the next position to read, and whether the message at it is still lent out.
struct InRing {
  RingControl* ctl = nullptr;
  std::byte* slots = nullptr;
  std::uint64_t head = 0;
  bool holding = false;
};

}  // namespace moirai::transport::ipc

namespace moirai::transport {

struct IpcChannel::Impl final : Poller {
  using Outcome = RecvAwaiter::Outcome;

  struct OpCompletion : io::Completion {
    Impl* impl = nullptr;
  };

  // How this end's shard sleeps in a receive and is woken (wake.cpp): a futex wait through the ring, else a
  // poll on our FIFO through it, else the bounded recheck.
  struct Wake {
    IpcWake asked = IpcWake::automatic;
    bool futex_supported = false;
    bool futex_armed = false;
    OpCompletion futex_done;
    int fifo = -1;  // our FIFO's read end, polled through the ring while we sleep
    bool fifo_tried = false;
    bool fifo_armed = false;
    OpCompletion fifo_done;
    ipc::PeerFifo peer_fifo;    // the peer's FIFO, which our sends wake it through
    std::uint64_t wakeups = 0;  // IpcChannel::wakeups()
  };

  // The watch of the peer process (peer_watch.cpp).
  struct PeerWatch {
    int pid = 0;  // once known
    int pidfd = -1;
    bool watching = false;  // a poll on the pidfd is armed
    bool by_kill = false;   // no pidfd poll: the pid is checked every kLivenessRecheckNs
    std::int64_t next_check = 0;
    OpCompletion exit;
    std::atomic<bool> dead{false};  // relaxed: a flag; the dead peer's stores were visible before its exit
  };

  Impl(std::string_view channel_name, const ipc::Mapping& m, int end_side, EndpointId sender_id,
       const IpcOptions& options);
  ~Impl() override = default;

  // ---- the parts ----
  ipc::Region region;
  int side = 0;  // 0: creator; writes ring `side`, reads ring 1 - side
  ipc::OutRing out;
  ipc::InRing in;
  EndpointId sender;
  std::int64_t spin_ns = 0;  // IpcOptions::spin_before_wait
  Shard* shard = nullptr;    // the shard that receives
  RecvAwaiter* waiter = nullptr;
  bool self_closed = false;
  bool orphaned = false;  // closed while a request was armed: freed by its last CQE
  bool creator = false;
  detail::RecvStash stash{0};  // the messages of other senders that recv_from sets aside
  Wake wake;
  PeerWatch peer;
  std::string name;

  // ---- looks at the shared region, for every part ----
  bool in_readable() const noexcept {
    // acquire: pairs with the writer's release of seq, so what take() then reads is what the writer wrote.
    return region.slot(in.slots, in.head)->seq.load(std::memory_order_acquire) ==
           static_cast<std::uint32_t>(in.head + 1);
  }
  bool peer_gone() const noexcept {
    // acquire on `closed`: every message the peer published before closing is visible after this load.
    return peer.dead.load(std::memory_order_relaxed) ||
           region.hdr->closed[1 - side].load(std::memory_order_acquire) != 0;
  }
  bool peer_arrived() const noexcept {
    return peer.pid == 0 && region.hdr->pid[1 - side].load(std::memory_order_acquire) != 0;
  }
  // Wakes the peer's reader if it sleeps, after a store it must see (Dekker: see try_send).
  void wake_peer_if_asleep() noexcept {
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (out.ctl->reader_sleeping.load(std::memory_order_relaxed) != ipc::kAwake) [[unlikely]]
      ipc::wake_reader(*out.ctl, name, 1 - side, wake.peer_fifo);
  }

  // ---- channel.cpp ----
  void bind(Shard& s) {
    if (shard != &s) bind_first(s);
  }
  void bind_first(Shard& s);
  std::string closed_text() const;
  void close() noexcept;
  void cancel_armed() noexcept;
  void free_if_idle() noexcept;
  static void destroy(Impl* impl) noexcept;

  // ---- send.cpp ----
  bool try_send(std::span<const std::byte> payload, EndpointId from);

  // ---- receive.cpp ----
  void release_ring_slot() noexcept {
    ++in.head;
    // release: our reads of the slot finish before the writer, after its acquire of head, overwrites it.
    in.ctl->head.store(in.head, std::memory_order_release);
  }
  // Gives back what the previous receive lent out: its ring slot or its stash entry.
  void release_held() noexcept {
    if (in.holding) {
      in.holding = false;
      release_ring_slot();
    }
    stash.release_taken();
  }
  // Inline, defined in receive.cpp and called there only.
  Outcome take(const std::optional<EndpointId>& from, IpcMessage& out_msg) noexcept;
  Outcome take_for_waiter(RecvAwaiter& w) noexcept;
  bool poll() noexcept override;

  // ---- wake.cpp ----
  bool prepare_sleep(long long& timeout_ns) noexcept override;
  void end_sleep() noexcept override;
  void open_wake_fifo() noexcept;
  void arm_fifo_poll() noexcept;
  void arm_futex_wait() noexcept;
  void close_wake_fifos() noexcept;

  // ---- peer_watch.cpp ----
  void watch_peer() noexcept;
  void check_liveness() noexcept;
};

}  // namespace moirai::transport
