// Shared-memory IPC between processes on one host: a bidirectional channel made of two single-writer rings in
// one file under /dev/shm, mapped by both processes. Market data moves between co-located processes this way.
//
// A message is one fixed-size slot (header + payload) written in place and published by a per-slot sequence
// number, so in steady state a message costs the transfer of its slot's cache lines and nothing else: no
// syscall, no lock, no allocation. A 48-byte message fits one 64-byte line with its 16-byte header; 64 bytes
// take two.
//
// Receiving: `co_await ch.recv()` resumes on the shard that receives. While a receiver waits, the channel is
// a Poller of its shard (see core/shard.hpp): a spinning shard finds the message in its next lap without a
// syscall. A shard about to sleep raises the ring's "sleeping" word, looks again, and arms a wait through its
// io_uring: a futex wait (IORING_OP_FUTEX_WAIT, Linux 6.7+) where the kernel has it, else a poll on a FIFO
// of its own next to the region (/dev/shm/NAME.wakeSIDE). The writer wakes it (futex_wake, or one byte into
// the FIFO, as the word says) only when it sees that word raised, so a spinning reader costs the writer no
// syscall. Where neither can be had (the FIFO refused), a sleeping reader wakes every kIpcFallbackRecheck
// to look (latency up to that, and that many wake-ups while idle). A writer can fail to reach a FIFO that the
// reader made (refused by permissions, removed by hand): it says so once on stderr, and a reader sleeping on
// its FIFO also looks every kIpcFifoSafetyRecheck, so such a message waits that long at most, never forever.
//
// A crashed peer: each side records its pid in the file; the receiving shard watches the peer with a pidfd
// polled through its ring (readable when the process exits). Messages the peer published before it died are
// still delivered; after them recv throws TransportError(closed) naming the pid, and so does send. A peer
// that closes cleanly sets its closed flag with the same effect. The surviving shard goes on.
//
// One writer per ring: each process sends from one shard at a time (the ring's producer indices live in this
// object, not in shared memory); each process receives on one shard.
#pragma once

#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "moirai/core/clock.hpp"
#include "moirai/core/detail/shard_core.hpp"
#include "moirai/core/detail/timer_queue.hpp"
#include "moirai/core/task.hpp"
#include "moirai/transport/endpoint.hpp"
#include "moirai/transport/error.hpp"
#include "moirai/transport/receiver.hpp"

namespace moirai::transport {

// The layout version in every region's header; a peer built with another one is refused at open().
inline constexpr std::uint32_t kIpcVersion = 1;
// How often a sleeping reader looks at its ring where the kernel cannot wait on a futex through io_uring.
inline constexpr Duration kIpcFallbackRecheck = std::chrono::microseconds(100);
// How often a reader sleeping on its FIFO looks anyway, in case a writer could not reach the FIFO.
inline constexpr Duration kIpcFifoSafetyRecheck = std::chrono::milliseconds(10);

enum class IpcWake : std::uint8_t {
  automatic,  // a futex wait through the ring where the kernel has it, else the FIFO, else the recheck
  futex,      // the futex wait; where the kernel refuses it, as automatic
  fifo,       // a poll on the reader's FIFO through the ring; where the FIFO cannot be made, the recheck
  recheck,    // no wake-up: the sleeping reader looks every kIpcFallbackRecheck
};
const char* to_string(IpcWake w) noexcept;

struct IpcOptions {
  // Bytes per slot, header included: a multiple of 64 (a cache line), 64 to 65536. The payload limit is
  // slot_size - 16.
  std::uint32_t slot_size = 128;
  // Slots per ring (one ring each way), rounded up to a power of two, at least 2.
  std::uint32_t capacity = 1024;
  // The sender id stamped on messages sent without one.
  EndpointId sender{};
  // Messages of other senders that recv_from may set aside while it looks for one sender's; fixed at
  // creation (no allocation later). A full stash makes recv_from throw instead of growing.
  std::uint32_t stash_capacity = 64;
  // create(): a region of the same name left by a process that is gone is replaced; one whose creator still
  // lives is refused.
  bool replace_stale = true;
  // How a sleeping reader is woken (see the top of this file). automatic is the best this kernel has; the
  // others force one (tests, or to compare).
  IpcWake wake = IpcWake::automatic;
  // How long a receive that finds no message watches the ring before it suspends, while nothing else on its
  // shard is ready to run (a task, a message from another shard, a completion, a due timer, io or messages
  // not yet handed over): then a message costs its cache-line transfer and no trip through the shard loop.
  // 0, the default, suspends at once. A few microseconds to tens of them suit a shard that serves this
  // channel first; the spin counts as the task's own run time (stall reports, round-robin slices). It spins
  // in user space, in the receive; the kernel's busy polling is IdleStrategy::busy_poll, another thing.
  Duration spin_before_wait = Duration::zero();
};

// A received message: who sent it and its bytes. The bytes stay valid until the next recv or recv_from on
// the same channel (they are read in place from the shared ring, or from the stash).
struct IpcMessage {
  EndpointId sender;
  std::span<const std::byte> payload;
};

class IpcChannel {
  struct Impl;

 public:
  // Creates the region /dev/shm/<name> (name: letters, digits, '-', '_', '.', at most 200 characters) with
  // both rings, to be opened by one other process. Throws TransportError naming the cause and the fix: the
  // name is in use by a live process, /dev/shm is missing or full, or (invalid_argument) the name or the
  // options are invalid.
  static IpcChannel create(std::string_view name, const IpcOptions& options = {});
  // Opens the region another process created, as its one peer. The ring sizes come from the region;
  // `options` gives the sender id and the stash size. Throws TransportError: connection_refused when nobody
  // created it (yet), malformed when the header is not a Moirai IPC region or has another version or sizes
  // that do not add up, closed when its creator is gone, not_supported when another process has it open.
  static IpcChannel open(std::string_view name, EndpointId sender, const IpcOptions& options = {});

  IpcChannel(IpcChannel&&) noexcept;
  IpcChannel& operator=(IpcChannel&&) noexcept;
  // Closes (see close()).
  ~IpcChannel();

  // The most payload bytes one message may carry.
  std::size_t max_payload() const noexcept;
  // The peer process, once known (0 until the peer opened the region).
  int peer_pid() const noexcept;
  const std::string& name() const noexcept;
  // How this end's receiving shard is woken when it sleeps: futex, fifo or recheck (what the kernel and the
  // options gave). futex is known once the channel is first used on a shard; fifo and recheck only after
  // its first sleep in a receive; automatic until then.
  IpcWake wake() const noexcept;
  // Times the peer woke this end's sleeping shard through the futex or the FIFO (not counted: wake-ups
  // that found the reader awake, and the recheck's).
  std::uint64_t wakeups() const noexcept;

  // Writes one message into the outgoing ring. Returns false, writing nothing, when the ring is full.
  // Throws TransportError(message_too_large) for a payload over max_payload() (nothing written) and
  // TransportError(closed) once the peer closed or died. No syscall unless the reader sleeps.
  bool try_send(std::span<const std::byte> payload);
  bool try_send(std::span<const std::byte> payload, EndpointId sender);
  // The same, waiting on the calling shard while the ring is full (looking again at each lap for a while,
  // then every 20 us: the reader does not wake writers). Throws TransportError(timeout) when there is still
  // no room after `timeout`. An awaiter, not a coroutine: a send that finds room completes without suspending
  // and without a frame. `payload` must stay valid until the co_await returns.
  class SendAwaiter;
  SendAwaiter send(std::span<const std::byte> payload, Duration timeout = Duration::max());
  SendAwaiter send(std::span<const std::byte> payload, EndpointId sender, Duration timeout = Duration::max());

  class RecvAwaiter;
  // The oldest message, on the calling shard (every receive of one channel on the same shard, one at a
  // time). Throws TransportError(timeout) when none comes within `timeout`, TransportError(closed) once the
  // peer closed or died and every message it sent has been received; TaskCancelled when the task is
  // cancelled.
  RecvAwaiter recv(Duration timeout = Duration::max());
  // The oldest message from `sender`. Messages of other senders met on the way are set aside, in order, in
  // the stash, where later receives find them first. Throws TransportError(message_too_large) when the stash
  // is full (the message that would not fit stays in the ring: receive the others with recv() first).
  RecvAwaiter recv_from(EndpointId sender, Duration timeout = Duration::max());

  // Tells the peer that nothing more will come (its receives end with closed after the last message) and
  // releases the region; the creator removes the name. Call it on the shard that received (it cancels the
  // requests armed in that shard's ring), or after the runtime ended.
  void close() noexcept;

 private:
  explicit IpcChannel(Impl* impl) noexcept : impl_(impl) {}
  Impl* impl_ = nullptr;
};

class [[nodiscard]] IpcChannel::SendAwaiter : moirai::detail::CancelHook {
 public:
  SendAwaiter(Impl* impl, std::span<const std::byte> payload, EndpointId sender, Duration timeout) noexcept;
  bool await_ready();
  void await_suspend(std::coroutine_handle<> h) noexcept;
  void await_resume();

 private:
  static void retry(moirai::detail::TimerEntry* e) noexcept;
  void arm_retry() noexcept;

  Impl* impl_;
  std::span<const std::byte> payload_;
  EndpointId sender_;
  std::int64_t deadline_;
  unsigned retries_ = 0;
  bool sent_ = false;
  bool timed_out_ = false;
  std::exception_ptr error_;
  Shard* shard_ = nullptr;
  moirai::detail::TaskControl* task_ = nullptr;
  std::coroutine_handle<> h_{};
  moirai::detail::OwnedTimer<SendAwaiter> timer_{};
};

class [[nodiscard]] IpcChannel::RecvAwaiter : moirai::detail::CancelHook {
 public:
  RecvAwaiter(Impl* impl, std::optional<EndpointId> from, Duration timeout) noexcept;
  bool await_ready();
  void await_suspend(std::coroutine_handle<> h) noexcept;
  IpcMessage await_resume();

 private:
  friend struct IpcChannel::Impl;
  enum class Outcome : std::uint8_t { none, message, closed, stash_full, malformed, timeout, busy };
  void finish(Outcome o) noexcept;   // on the shard: stop waiting and resume the task with `o`
  bool spin_for_message() noexcept;  // IpcOptions::spin_before_wait; true with outcome_ set

  Impl* impl_;
  std::optional<EndpointId> from_;
  std::int64_t deadline_;
  Outcome outcome_ = Outcome::none;
  IpcMessage message_{};
  Shard* shard_ = nullptr;
  moirai::detail::TaskControl* task_ = nullptr;
  std::coroutine_handle<> h_{};
  moirai::detail::OwnedTimer<RecvAwaiter> timer_{};
};

// recv(timeout) and recv_from(sender, timeout) as every receiver offers them (receiver.hpp).
static_assert(SelectiveReceiver<IpcChannel>);

}  // namespace moirai::transport
