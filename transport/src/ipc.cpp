#include "moirai/transport/ipc.hpp"

#include <fcntl.h>
#include <linux/futex.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstring>
#include <memory>
#include <new>
#include <utility>

#include "moirai/core/cpu_relax.hpp"
#include "moirai/core/error.hpp"
#include "moirai/io/ring.hpp"

namespace moirai::transport {
namespace {

constexpr std::size_t kLine = 64;
constexpr std::uint64_t kMagic = 0x4350494941524f4dull;  // "MORAIIPC" in little-endian bytes
constexpr std::uint32_t kSlotHeaderBytes = 16;
constexpr std::size_t kSlotsOffset = 4096;  // slots start on their own page, after the control lines
constexpr std::uint32_t kMaxCapacity = 1u << 24;
constexpr std::uint32_t kNoStash = ~0u;
// The values of a ring's sleeping word: how its reader waits, so the writer knows how to wake it.
constexpr std::uint32_t kAwake = 0;
constexpr std::uint32_t kSleepsOnFutex = 1;
constexpr std::uint32_t kSleepsOnFifo = 2;
// Without a pidfd (or poll through the ring), the peer's pid is checked this often instead.
constexpr std::int64_t kLivenessRecheckNs = 1'000'000;
constexpr std::int64_t kFifoSafetyRecheckNs =
    std::chrono::duration_cast<std::chrono::nanoseconds>(kIpcFifoSafetyRecheck).count();

// The first line of the region. Written once by the creator before `magic`, except the pids (set by each
// side as it arrives) and the closed flags (set by each side as it leaves). Read-mostly: a writer loads
// `closed` on every send and it stays in its cache.
struct RegionHeader {
  std::atomic<std::uint64_t>
      magic;  // stored last at creation (release): an opener that sees it sees the rest
  std::uint32_t version;
  std::uint32_t slot_size;
  std::uint32_t capacity;
  std::uint32_t reserved;
  std::uint64_t region_bytes;
  std::atomic<std::int32_t> pid[2];      // [0] the creator, [1] the opener (0 until it opens)
  std::atomic<std::uint32_t> closed[2];  // side s closed cleanly
};
static_assert(sizeof(RegionHeader) <= kLine);

// The control of one ring, each word on its own line: the reader's sleeping word (kAwake, or how it waits;
// written by the reader only when it goes to sleep or wakes, read by the writer after each send; the futex
// word too) and the reader's released position
// (written by the reader after each message, read by the writer only when the ring looks full).
struct alignas(kLine) RingControl {
  std::atomic<std::uint32_t> reader_sleeping;
  alignas(kLine) std::atomic<std::uint64_t> head;
};
static_assert(sizeof(RingControl) == 2 * kLine);

// Before every payload. `seq` is the slot's position + 1 (mod 2^32), stored last by the writer (release):
// the reader learns that a slot is ready from the slot itself, so a message moves its own lines and no
// shared index. A stale slot holds position + 1 - capacity, never equal, since capacity < 2^32.
struct SlotHeader {
  std::atomic<std::uint32_t> seq;
  std::uint32_t length;
  std::uint64_t sender;
};
static_assert(sizeof(SlotHeader) == kSlotHeaderBytes);
static_assert(std::atomic<std::uint32_t>::is_always_lock_free &&
                  std::atomic<std::uint64_t>::is_always_lock_free &&
                  std::atomic<std::int32_t>::is_always_lock_free,
              "atomics shared between processes must be lock-free (address-free)");

constexpr std::size_t kRingControlOffset = kLine;
static_assert(kRingControlOffset + 2 * sizeof(RingControl) <= kSlotsOffset);

bool process_alive(int pid) noexcept {
  return pid > 0 && (::kill(pid, 0) == 0 || errno == EPERM);
}

// "/" + name, for shm_open (built by append: GCC 12 warns falsely on operator+ of a literal and a string).
std::string shm_path(std::string_view name) {
  std::string path;
  path.reserve(name.size() + 1);
  path.push_back('/');
  path.append(name);
  return path;
}

// The FIFO that wakes the reader of side `reader_side` where there is no futex wait through the ring.
std::string wake_fifo_path(std::string_view name, int reader_side) {
  std::string path = "/dev/shm/";
  path.append(name).append(".wake").append(std::to_string(reader_side));
  return path;
}

// Our end of the peer's FIFO, opened at the first wake-up that needs it and kept.
struct PeerFifo {
  int fd = -1;
  bool reported = false;  // a failure to reach it was logged
};

// Wakes the reader of `ctl` if it sleeps: futex_wake, or a byte into its FIFO. Whoever takes the word from
// sleeping to kAwake makes the one wake-up. A FIFO that cannot be opened or written (a full one already holds
// a wake-up) is logged once; the reader then finds the message at its safety recheck.
void wake_reader(RingControl& ctl, std::string_view name, int reader_side, PeerFifo& fifo) noexcept {
  // relaxed: the word is only a "please wake me" flag; the fences around it order the message itself.
  const std::uint32_t was = ctl.reader_sleeping.exchange(kAwake, std::memory_order_relaxed);
  if (was == kSleepsOnFutex) {
    ::syscall(SYS_futex, &ctl.reader_sleeping, FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0);
    return;
  }
  if (was != kSleepsOnFifo) return;
  int err = ENOMEM;
  try {
    if (fifo.fd < 0)
      // Read and write, so the FIFO always has a reader: a byte into one whose reader died (its process
      // killed while asleep) stays there, where write-only it would raise SIGPIPE and kill this process.
      fifo.fd = ::open(wake_fifo_path(name, reader_side).c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
    const char one = 1;
    if (fifo.fd >= 0 && (::write(fifo.fd, &one, 1) == 1 || errno == EAGAIN)) return;
    err = errno;
  } catch (...) {  // no memory for the path
  }
  if (std::exchange(fifo.reported, true)) return;
  std::fprintf(
      stderr,
      "moirai: IpcChannel '%.*s': cannot wake its sleeping reader through /dev/shm/%.*s.wake%d (%s); "
      "it finds each message at its next look, within %lld ms. Let both processes open that FIFO "
      "(same user, or its mode), and do not remove it while the channel is open\n",
      static_cast<int>(name.size()), name.data(), static_cast<int>(name.size()), name.data(), reader_side,
      std::strerror(err),
      static_cast<long long>(
          std::chrono::duration_cast<std::chrono::milliseconds>(kIpcFifoSafetyRecheck).count()));
}

std::string where(std::string_view name) {
  return "IpcChannel '" + std::string(name) + "' (/dev/shm/" + std::string(name) + ")";
}

void check_name(std::string_view name) {
  bool ok = !name.empty() && name.size() <= 200 && name != "." && name != "..";
  for (char c : name) {
    const bool allowed = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                         c == '-' || c == '_' || c == '.';
    ok = ok && allowed;
  }
  if (!ok) {
    throw TransportError(TransportErrc::invalid_argument,
                         "IpcChannel: the name '" + std::string(name) +
                             "' is not usable under /dev/shm; use 1 to 200 letters, digits, '-', '_' or '.'");
  }
}

[[noreturn]] void throw_errno(int err, TransportErrc code, std::string_view name, const std::string& what,
                              const std::string& fix) {
  throw TransportError(code, where(name) + ": " + what + " failed: " + std::strerror(err) + "; " + fix);
}

std::string fix_for(int err) {
  switch (err) {
    case EACCES:
    case EPERM:
      return "run both processes as the same user, or remove the file left by another user";
    case ENOSPC:
    case ENOMEM:
      return "/dev/shm is full or too small: free space there, or use a smaller slot_size or capacity";
    case EMFILE:
    case ENFILE:
      return "raise the file-descriptor limit (ulimit -n)";
    case ENOENT:
      return "mount a tmpfs on /dev/shm (mount -t tmpfs tmpfs /dev/shm)";
    default:
      return "check that /dev/shm is a writable tmpfs";
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------------
// The state of one end. Made at create/open (the only allocations), then touched by the bound shard only,
// except peer_dead_, which a send from any thread reads.

struct IpcChannel::Impl final : Poller {
  using Outcome = RecvAwaiter::Outcome;

  struct StashEntry {
    EndpointId sender;
    std::uint32_t length = 0;
  };
  struct OpCompletion : io::Completion {
    Impl* impl = nullptr;
  };

  std::string name;
  bool creator = false;
  int side = 0;  // 0: creator; writes ring `side`, reads ring 1 - side
  void* base = nullptr;
  std::size_t bytes = 0;
  RegionHeader* hdr = nullptr;
  RingControl* out_ctl = nullptr;
  RingControl* in_ctl = nullptr;
  std::byte* out_slots = nullptr;
  std::byte* in_slots = nullptr;
  std::uint32_t slot_size = 0;
  std::uint32_t mask = 0;
  std::uint32_t max_payload = 0;
  EndpointId sender;
  IpcWake wake_asked = IpcWake::automatic;
  std::int64_t busy_poll_ns = 0;  // IpcOptions::busy_poll

  // Producer side (one writer): the next position to write and the last released head seen.
  std::uint64_t tail = 0;
  std::uint64_t head_cache = 0;
  // Consumer side: the next position to read, and whether the message at it is still lent to the caller.
  std::uint64_t head = 0;
  bool holding_ring = false;

  // Messages of other senders set aside by recv_from: fixed arrays, FIFO order kept in `stash_order`.
  std::uint32_t stash_capacity = 0;
  std::unique_ptr<std::byte[]> stash_bytes;
  std::unique_ptr<StashEntry[]> stash;
  std::unique_ptr<std::uint32_t[]> stash_order;
  std::unique_ptr<std::uint32_t[]> stash_free;
  std::uint32_t stash_count = 0;
  std::uint32_t stash_free_count = 0;
  std::uint32_t held_stash = kNoStash;

  // The shard that receives, and what is armed in its ring.
  Shard* shard = nullptr;
  RecvAwaiter* waiter = nullptr;
  bool futex_supported = false;
  bool futex_armed = false;
  OpCompletion futex_done;
  // The FIFO wake (no futex wait through the ring): our read end, polled through the ring while we sleep,
  // and the peer's write end, opened at the first wake-up it needs.
  int wake_fifo = -1;
  bool fifo_tried = false;
  bool fifo_armed = false;
  OpCompletion fifo_done;
  PeerFifo peer_fifo;
  std::uint64_t wakeups = 0;  // IpcChannel::wakeups()
  int peer = 0;               // the peer's pid, once known
  int pidfd = -1;
  bool watching = false;  // a poll on the pidfd is armed
  bool liveness_by_kill = false;
  std::int64_t next_liveness_check = 0;
  OpCompletion peer_exit;
  std::atomic<bool> peer_dead{false};  // relaxed: a flag; the dead peer's stores were visible before its exit
  bool self_closed = false;
  bool orphaned = false;  // closed while a request was armed: freed by its last CQE

  ~Impl() override = default;

  SlotHeader* slot(std::byte* slots, std::uint64_t pos) const noexcept {
    return std::launder(reinterpret_cast<SlotHeader*>(slots + (pos & mask) * slot_size));
  }
  std::byte* payload_of(SlotHeader* s) const noexcept {
    return reinterpret_cast<std::byte*>(s) + kSlotHeaderBytes;
  }

  bool in_readable() const noexcept {
    // acquire: pairs with the writer's release of seq, so what take() then reads is what the writer wrote.
    return slot(in_slots, head)->seq.load(std::memory_order_acquire) == static_cast<std::uint32_t>(head + 1);
  }
  bool peer_gone() const noexcept {
    // acquire on `closed`: every message the peer published before closing is visible after this load.
    return peer_dead.load(std::memory_order_relaxed) ||
           hdr->closed[1 - side].load(std::memory_order_acquire) != 0;
  }
  bool peer_arrived() const noexcept {
    return peer == 0 && hdr->pid[1 - side].load(std::memory_order_acquire) != 0;
  }

  void init_stash(std::uint32_t n) {
    stash_capacity = n;
    stash_bytes = std::make_unique<std::byte[]>(static_cast<std::size_t>(n) * max_payload + 1);
    stash = std::make_unique<StashEntry[]>(n + 1);
    stash_order = std::make_unique<std::uint32_t[]>(n + 1);
    stash_free = std::make_unique<std::uint32_t[]>(n + 1);
    for (std::uint32_t i = 0; i < n; ++i)
      stash_free[i] = n - 1 - i;
    stash_free_count = n;
  }

  void map_layout() noexcept {
    auto* b = static_cast<std::byte*>(base);
    hdr = std::launder(reinterpret_cast<RegionHeader*>(b));
    auto* rings = std::launder(reinterpret_cast<RingControl*>(b + kRingControlOffset));
    out_ctl = &rings[side];
    in_ctl = &rings[1 - side];
    const std::size_t ring_bytes = static_cast<std::size_t>(mask + 1) * slot_size;
    out_slots = b + kSlotsOffset + static_cast<std::size_t>(side) * ring_bytes;
    in_slots = b + kSlotsOffset + static_cast<std::size_t>(1 - side) * ring_bytes;
    max_payload = slot_size - kSlotHeaderBytes;
    head = in_ctl->head.load(std::memory_order_acquire);
    head_cache = out_ctl->head.load(std::memory_order_acquire);
    tail = head_cache;  // a fresh writer: nothing of ours is in flight
  }

  // ---- sending ----

  std::string closed_text() const {
    if (self_closed) return where(name) + ": this end is closed";
    if (peer_dead.load(std::memory_order_relaxed))
      return where(name) + ": the peer process (pid " + std::to_string(peer) +
             ") died; every message it had published was delivered first";
    return where(name) + ": the peer (pid " + std::to_string(hdr->pid[1 - side].load()) +
           ") closed the channel";
  }

  bool try_send(std::span<const std::byte> payload, EndpointId from) {
    if (payload.size() > max_payload) [[unlikely]] {
      throw TransportError(TransportErrc::message_too_large,
                           where(name) + ": a message of " + std::to_string(payload.size()) +
                               " bytes is over the slot payload of " + std::to_string(max_payload) +
                               " bytes; nothing was written. Create the channel with a larger "
                               "IpcOptions::slot_size (payload + 16, rounded up to 64)");
    }
    if (self_closed || peer_gone()) [[unlikely]] {
      throw TransportError(TransportErrc::closed, closed_text());
    }
    if (shard == nullptr) [[unlikely]] {
      if (Shard* s = this_shard_or_null()) bind(*s);
    }
    if (tail - head_cache > mask) {
      // acquire: the reader's reads of these slots happened-before we overwrite them (its release of head).
      head_cache = out_ctl->head.load(std::memory_order_acquire);
      if (tail - head_cache > mask) return false;
    }
    SlotHeader* s = slot(out_slots, tail);
    if (!payload.empty()) std::memcpy(payload_of(s), payload.data(), payload.size());
    s->length = static_cast<std::uint32_t>(payload.size());
    s->sender = from.packed();
    // release: the payload, length and sender are visible to the reader's acquire of seq.
    s->seq.store(static_cast<std::uint32_t>(tail + 1), std::memory_order_release);
    ++tail;
    // Dekker with the reader's prepare_sleep: we store seq, fence, load its sleeping word; it stores the
    // word, fences, loads seq. With both fences seq_cst one of us sees the other's store, so a sleeping
    // reader is never left with an unseen message, and a spinning one costs us this fence and no syscall.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (out_ctl->reader_sleeping.load(std::memory_order_relaxed) != kAwake) [[unlikely]]
      wake_reader(*out_ctl, name, 1 - side, peer_fifo);
    return true;
  }

  // ---- receiving ----

  void bind(Shard& s) {
    if (shard == &s) return;
    if (shard != nullptr) {
      throw Error(Errc::invalid_argument, where(name) + ": used on shard " + std::to_string(s.id()) +
                                              ", but it belongs to shard " + std::to_string(shard->id()) +
                                              " (the first that used it); send and receive on that shard");
    }
    shard = &s;
    futex_supported = (wake_asked == IpcWake::automatic || wake_asked == IpcWake::futex) &&
                      io::Ring::supports(io::Op::futex_wait);
    watch_peer();
  }

  // Arms the watch of the peer process: a poll on its pidfd through the ring (readable when it exits), or,
  // without one, a check of its pid every kLivenessRecheckNs.
  void watch_peer() noexcept {
    if (shard == nullptr || watching || liveness_by_kill || peer_dead.load(std::memory_order_relaxed)) return;
    if (peer == 0) {
      peer = hdr->pid[1 - side].load(std::memory_order_acquire);
      if (peer == 0) return;  // not opened yet: looked at again each lap and before each sleep
    }
    if (pidfd < 0) {
      pidfd = static_cast<int>(::syscall(SYS_pidfd_open, peer, 0));
      if (pidfd < 0) {
        if (errno == ESRCH) {
          peer_dead.store(true, std::memory_order_relaxed);
        } else {
          liveness_by_kill = true;
        }
        return;
      }
    }
    if (!io::Ring::supports(io::Op::poll_add)) {
      liveness_by_kill = true;
      return;
    }
    io_uring_sqe* sqe = shard->ring().get_sqe();
    if (sqe == nullptr) return;  // the SQ is jammed: tried again next lap
    io_uring_prep_poll_add(sqe, pidfd, POLLIN);
    peer_exit.impl = this;
    peer_exit.on_complete = [](io::Completion* c, int res, std::uint32_t) noexcept {
      Impl* self = static_cast<OpCompletion*>(c)->impl;
      self->watching = false;
      if (res > 0 && (res & POLLIN) != 0) self->peer_dead.store(true, std::memory_order_relaxed);
      if (self->orphaned) {
        self->free_if_idle();
      } else if (res < 0 && res != -ECANCELED) {
        self->liveness_by_kill = true;  // the poll was refused: check the pid instead
      }
    };
    io::Ring::set_completion(sqe, &peer_exit);
    watching = true;
  }

  void check_liveness() noexcept {
    const std::int64_t now = monotonic_ns();
    if (now < next_liveness_check) return;
    next_liveness_check = now + kLivenessRecheckNs;
    if (!process_alive(peer)) peer_dead.store(true, std::memory_order_relaxed);
  }

  void release_ring_slot() noexcept {
    ++head;
    // release: our reads of the slot finish before the writer, after its acquire of head, overwrites it.
    in_ctl->head.store(head, std::memory_order_release);
  }

  // Gives back what the previous receive lent out: its ring slot or its stash entry.
  void release_held() noexcept {
    if (holding_ring) {
      holding_ring = false;
      release_ring_slot();
    }
    if (held_stash != kNoStash) {
      stash_free[stash_free_count++] = held_stash;
      held_stash = kNoStash;
    }
  }

  // The oldest message (from `from`, if given) into `out`: from the stash first (everything there is older
  // than the ring), then the ring, setting other senders' messages aside on the way.
  Outcome take(const std::optional<EndpointId>& from, IpcMessage& out) noexcept {
    for (std::uint32_t i = 0; i < stash_count; ++i) {
      const std::uint32_t idx = stash_order[i];
      if (from && !(stash[idx].sender == *from)) continue;
      for (std::uint32_t k = i; k + 1 < stash_count; ++k)
        stash_order[k] = stash_order[k + 1];
      --stash_count;
      held_stash = idx;
      out.sender = stash[idx].sender;
      out.payload = {stash_bytes.get() + static_cast<std::size_t>(idx) * max_payload, stash[idx].length};
      return Outcome::message;
    }
    for (bool last_look = false;; last_look = true) {
      while (in_readable()) {
        SlotHeader* s = slot(in_slots, head);
        const EndpointId who = EndpointId::unpack(s->sender);
        const std::uint32_t len = s->length;
        if (len > max_payload) [[unlikely]]
          return Outcome::malformed;
        if (!from || who == *from) {
          holding_ring = true;
          out.sender = who;
          out.payload = {payload_of(s), len};
          return Outcome::message;
        }
        if (stash_free_count == 0) return Outcome::stash_full;
        const std::uint32_t idx = stash_free[--stash_free_count];
        if (len != 0)
          std::memcpy(stash_bytes.get() + static_cast<std::size_t>(idx) * max_payload, payload_of(s), len);
        stash[idx] = {who, len};
        stash_order[stash_count++] = idx;
        release_ring_slot();
      }
      if (self_closed) return Outcome::closed;
      if (last_look || !peer_gone()) return Outcome::none;
      // The peer is gone: what it published before is visible now (see peer_gone); look once more.
    }
  }

  Outcome take_for_waiter(RecvAwaiter& w) noexcept {
    const Outcome o = take(w.from_, w.message_);
    if (o == Outcome::none && peer_gone()) return Outcome::closed;
    return o;
  }

  bool poll() noexcept override {
    RecvAwaiter* w = waiter;
    if (w == nullptr) {
      shard->remove_poller(this);
      return false;
    }
    if (peer == 0 || (!watching && !liveness_by_kill)) watch_peer();
    if (liveness_by_kill) check_liveness();
    const Outcome o = take_for_waiter(*w);
    if (o == Outcome::none) return false;
    w->finish(o);
    return true;
  }

  bool prepare_sleep(long long& timeout_ns) noexcept override {
    auto cap = [&timeout_ns](long long limit) {
      timeout_ns = timeout_ns < 0 ? limit : std::min(timeout_ns, limit);
    };
    const long long recheck =
        std::chrono::duration_cast<std::chrono::nanoseconds>(kIpcFallbackRecheck).count();
    if (!futex_supported && !fifo_tried && wake_asked != IpcWake::recheck) open_wake_fifo();
    const std::uint32_t word = futex_supported ? kSleepsOnFutex : wake_fifo >= 0 ? kSleepsOnFifo : kAwake;
    if (word == kAwake) {
      cap(recheck);
    } else {
      // relaxed store + seq_cst fence: the Dekker half that pairs with try_send's fence (see there).
      in_ctl->reader_sleeping.store(word, std::memory_order_relaxed);
      std::atomic_thread_fence(std::memory_order_seq_cst);
    }
    if (in_readable() || peer_gone() || peer_arrived()) {
      end_sleep();
      return true;
    }
    if (word == kSleepsOnFutex) {
      if (!futex_armed) arm_futex_wait();
      if (!futex_armed) cap(recheck);
    } else if (word == kSleepsOnFifo) {
      if (!fifo_armed) arm_fifo_poll();
      cap(fifo_armed ? kFifoSafetyRecheckNs : recheck);
    }
    if (liveness_by_kill) cap(kLivenessRecheckNs);
    return false;
  }

  void end_sleep() noexcept override {
    // relaxed: only spares the writer a needless wake-up; the next sleep raises the word again first. Stored
    // only when raised, so a reader that never sleeps never writes the line the writer reads.
    if (in_ctl->reader_sleeping.load(std::memory_order_relaxed) != kAwake)
      in_ctl->reader_sleeping.store(kAwake, std::memory_order_relaxed);
  }

  // The FIFO of our incoming ring, made (or, left by an earlier process of ours, reused) at the first sleep.
  // Opened for reading and writing, so it never reports the end of a writer; a path that is not a FIFO, or
  // one we may not make, leaves the bounded recheck.
  void open_wake_fifo() noexcept {
    fifo_tried = true;
    try {
      const std::string path = wake_fifo_path(name, side);
      if (::mkfifo(path.c_str(), 0600) != 0 && errno != EEXIST) return;
      const int fd = ::open(path.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
      if (fd < 0) return;
      struct stat st {};
      if (::fstat(fd, &st) != 0 || !S_ISFIFO(st.st_mode)) {
        ::close(fd);
        return;
      }
      wake_fifo = fd;
    } catch (...) {  // no memory for the path: the recheck
    }
  }

  // A poll for "the FIFO is readable" through the ring: the CQE comes with the writer's byte. The bytes are
  // drained then, so the next poll waits for the next wake-up. Stays armed across sleeps until it completes.
  void arm_fifo_poll() noexcept {
    io_uring_sqe* sqe = shard->ring().get_sqe();
    if (sqe == nullptr) return;
    io_uring_prep_poll_add(sqe, wake_fifo, POLLIN);
    fifo_done.impl = this;
    fifo_done.on_complete = [](io::Completion* c, int, std::uint32_t) noexcept {
      Impl* self = static_cast<OpCompletion*>(c)->impl;
      self->fifo_armed = false;
      if (self->orphaned) {
        self->free_if_idle();
        return;
      }
      char drain[64];
      ssize_t n = 0;
      bool woken = false;
      while ((n = ::read(self->wake_fifo, drain, sizeof drain)) > 0) {
        woken = true;
        if (n < static_cast<ssize_t>(sizeof drain)) break;
      }
      if (woken) ++self->wakeups;
    };
    io::Ring::set_completion(sqe, &fifo_done);
    fifo_armed = true;
  }

  // A FUTEX_WAIT for "reader_sleeping == 1" through the ring: the CQE comes when the writer's futex_wake
  // does, or at once (-EAGAIN) if the writer already took the word back to 0. It stays armed across sleeps
  // until it completes.
  void arm_futex_wait() noexcept {
    io_uring_sqe* sqe = shard->ring().get_sqe();
    if (sqe == nullptr) return;
    // Shared: the writer that wakes it is another process.
    io::prep_futex_wait(sqe, in_ctl->reader_sleeping, kSleepsOnFutex, io::FutexScope::shared);
    futex_done.impl = this;
    futex_done.on_complete = [](io::Completion* c, int res, std::uint32_t) noexcept {
      Impl* self = static_cast<OpCompletion*>(c)->impl;
      self->futex_armed = false;
      if (self->orphaned) {
        self->free_if_idle();
        return;
      }
      if (res == 0) ++self->wakeups;  // the writer's futex_wake (-EAGAIN: it came before the wait)
      // Refused (a kernel without the flags, or a seccomp filter): the FIFO or the recheck from now on.
      if (res == -EINVAL || res == -EOPNOTSUPP || res == -ENOSYS) self->futex_supported = false;
    };
    io::Ring::set_completion(sqe, &futex_done);
    futex_armed = true;
  }

  // ---- closing ----

  void close() noexcept {
    if (self_closed) return;
    self_closed = true;
    if (waiter != nullptr && shard != nullptr) waiter->finish(Outcome::closed);
    if (hdr != nullptr) {
      // release: every message we published is visible to a peer that sees the flag (acquire).
      hdr->closed[side].store(1, std::memory_order_release);
      std::atomic_thread_fence(std::memory_order_seq_cst);  // Dekker, as in try_send: the peer may sleep
      if (out_ctl->reader_sleeping.load(std::memory_order_relaxed) != kAwake)
        wake_reader(*out_ctl, name, 1 - side, peer_fifo);
    }
    // Requests armed in the ring reference this object: cancel them and wait (bounded, at close, never on a
    // message path) for their CQEs. Off the shard, the runtime has ended and its ring with them.
    if (shard != nullptr && this_shard_or_null() == shard) {
      io::Ring& ring = shard->ring();
      if (futex_armed) ring.cancel(&futex_done);
      if (watching) ring.cancel(&peer_exit);
      if (fifo_armed) ring.cancel(&fifo_done);
      for (int i = 0; i < 1000 && (futex_armed || watching || fifo_armed); ++i)
        ring.wait(1'000'000);
    } else {
      futex_armed = watching = fifo_armed = false;
    }
    if (pidfd >= 0) ::close(std::exchange(pidfd, -1));
    if (peer_fifo.fd >= 0) ::close(std::exchange(peer_fifo.fd, -1));
    if (wake_fifo >= 0) {
      ::close(std::exchange(wake_fifo, -1));
      try {
        ::unlink(wake_fifo_path(name, side).c_str());
      } catch (...) {  // no memory for the path: the FIFO stays, and is reused by the next of this name
      }
    }
    if (base != nullptr) ::munmap(std::exchange(base, nullptr), bytes);
    hdr = nullptr;
    if (creator) ::shm_unlink(shm_path(name).c_str());
  }

  void free_if_idle() noexcept {
    if (!futex_armed && !watching && !fifo_armed) delete this;
  }

  static void destroy(Impl* impl) noexcept {
    if (impl == nullptr) return;
    impl->close();
    if (impl->futex_armed || impl->watching || impl->fifo_armed) {
      impl->orphaned = true;
      return;
    }
    delete impl;
  }
};

// ---------------------------------------------------------------------------------------------------------------
// Set-up.

IpcChannel IpcChannel::create(std::string_view name, const IpcOptions& options) {
  check_name(name);
  if (options.slot_size < 64 || options.slot_size > 65536 || options.slot_size % kLine != 0) {
    throw TransportError(
        TransportErrc::invalid_argument,
        where(name) + ": slot_size " + std::to_string(options.slot_size) +
            " is not a multiple of 64 between 64 and 65536; pick one (128 carries 112 bytes)");
  }
  if (options.capacity < 2 || options.capacity > kMaxCapacity) {
    throw TransportError(
        TransportErrc::invalid_argument,
        where(name) + ": capacity " + std::to_string(options.capacity) + " is outside 2 to 16777216 slots");
  }
  // capacity is 2 to kMaxCapacity (checked above), itself a power of two: the result cannot overflow.
  const std::uint32_t cap = std::bit_ceil(options.capacity);
  const std::size_t bytes = kSlotsOffset + 2 * static_cast<std::size_t>(cap) * options.slot_size;
  const std::string path = shm_path(name);

  int fd = ::shm_open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0 && errno == EEXIST && options.replace_stale) {
    // A region of this name exists: replace it only if its creator is gone.
    int creator_pid = 0;
    const int old = ::shm_open(path.c_str(), O_RDONLY | O_CLOEXEC, 0);
    if (old >= 0) {
      struct stat st {};
      if (::fstat(old, &st) == 0 && static_cast<std::size_t>(st.st_size) >= sizeof(RegionHeader)) {
        void* m = ::mmap(nullptr, sizeof(RegionHeader), PROT_READ, MAP_SHARED, old, 0);
        if (m != MAP_FAILED) {
          creator_pid = std::launder(static_cast<RegionHeader*>(m))->pid[0].load();
          ::munmap(m, sizeof(RegionHeader));
        }
      }
      ::close(old);
    }
    if (process_alive(creator_pid) && creator_pid != ::getpid()) {
      throw TransportError(TransportErrc::not_supported,
                           where(name) + " already exists and its creator (pid " +
                               std::to_string(creator_pid) + ") is alive; pick another name");
    }
    ::shm_unlink(path.c_str());
    fd = ::shm_open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  }
  if (fd < 0) {
    const int err = errno;
    if (err == EEXIST) {
      throw TransportError(TransportErrc::not_supported,
                           where(name) + " already exists; pick another name, or remove the file");
    }
    throw_errno(err, TransportErrc::not_supported, name, "shm_open", fix_for(err));
  }
  if (::ftruncate(fd, static_cast<off_t>(bytes)) != 0) {
    const int err = errno;
    ::close(fd);
    ::shm_unlink(path.c_str());
    throw_errno(err, TransportErrc::not_supported, name,
                "sizing the region to " + std::to_string(bytes) + " bytes", fix_for(err));
  }
  // MAP_POPULATE: every page is faulted in now, so no message ever takes a page fault.
  void* base = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
  const int map_err = errno;
  ::close(fd);
  if (base == MAP_FAILED) {
    ::shm_unlink(path.c_str());
    throw_errno(map_err, TransportErrc::not_supported, name, "mmap", fix_for(map_err));
  }
  // The file is zero-filled: every slot's seq is 0 (empty), both heads 0, nobody sleeps.
  auto* hdr = ::new (base) RegionHeader{};
  auto* rings = static_cast<std::byte*>(base) + kRingControlOffset;
  ::new (rings) RingControl{};
  ::new (rings + sizeof(RingControl)) RingControl{};
  hdr->version = kIpcVersion;
  hdr->slot_size = options.slot_size;
  hdr->capacity = cap;
  hdr->region_bytes = bytes;
  hdr->pid[0].store(::getpid(), std::memory_order_relaxed);
  hdr->magic.store(kMagic, std::memory_order_release);

  auto impl = std::make_unique<Impl>();
  impl->name = std::string(name);
  impl->creator = true;
  impl->side = 0;
  impl->base = base;
  impl->bytes = bytes;
  impl->slot_size = options.slot_size;
  impl->mask = cap - 1;
  impl->sender = options.sender;
  impl->wake_asked = options.wake;
  impl->busy_poll_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(options.busy_poll).count();
  impl->map_layout();
  impl->init_stash(options.stash_capacity);
  return IpcChannel(impl.release());
}

IpcChannel IpcChannel::open(std::string_view name, EndpointId sender, const IpcOptions& options) {
  check_name(name);
  const std::string path = shm_path(name);
  const int fd = ::shm_open(path.c_str(), O_RDWR | O_CLOEXEC, 0);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT) {
      throw TransportError(TransportErrc::connection_refused,
                           where(name) +
                               " does not exist: create it first with IpcChannel::create in the "
                               "other process, with the same name");
    }
    throw_errno(err, TransportErrc::not_supported, name, "shm_open", fix_for(err));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || static_cast<std::size_t>(st.st_size) < kSlotsOffset) {
    ::close(fd);
    throw TransportError(TransportErrc::malformed,
                         where(name) + " is too small (" + std::to_string(st.st_size) +
                             " bytes) to be a Moirai IPC region: another program uses the name, or its "
                             "creator has not finished; pick another name or remove the file");
  }
  const auto bytes = static_cast<std::size_t>(st.st_size);
  void* base = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
  const int map_err = errno;
  ::close(fd);
  if (base == MAP_FAILED) throw_errno(map_err, TransportErrc::not_supported, name, "mmap", fix_for(map_err));
  auto fail = [&](TransportErrc code, const std::string& text) {
    ::munmap(base, bytes);
    throw TransportError(code, where(name) + text);
  };
  auto* hdr = std::launder(static_cast<RegionHeader*>(base));
  // acquire: pairs with create()'s release of the magic; the header fields read below are complete.
  if (hdr->magic.load(std::memory_order_acquire) != kMagic) {
    fail(TransportErrc::malformed,
         " is not a Moirai IPC region (bad magic): another program uses the name, or its creator has not "
         "finished; pick another name or remove the file");
  }
  if (hdr->version != kIpcVersion) {
    fail(TransportErrc::malformed, " has layout version " + std::to_string(hdr->version) +
                                       "; this build speaks version " + std::to_string(kIpcVersion) +
                                       ": build both processes from the same Moirai");
  }
  const std::uint32_t ss = hdr->slot_size;
  const std::uint32_t cap = hdr->capacity;
  const bool sizes_ok = ss >= 64 && ss <= 65536 && ss % kLine == 0 && cap >= 2 && cap <= kMaxCapacity &&
                        (cap & (cap - 1)) == 0 && hdr->region_bytes == bytes &&
                        kSlotsOffset + 2 * static_cast<std::size_t>(cap) * ss == bytes;
  if (!sizes_ok) {
    fail(TransportErrc::malformed, ": its sizes do not add up (slot_size " + std::to_string(ss) +
                                       ", capacity " + std::to_string(cap) + ", " + std::to_string(bytes) +
                                       " bytes): the file was truncated or written by something else; remove "
                                       "it and create the channel again");
  }
  const int creator_pid = hdr->pid[0].load(std::memory_order_relaxed);
  if (!process_alive(creator_pid) || hdr->closed[0].load(std::memory_order_acquire) != 0) {
    fail(TransportErrc::closed, ": its creator (pid " + std::to_string(creator_pid) +
                                    ") is gone or closed it; create the channel again");
  }
  int expected = 0;
  // acq_rel: claiming the opener's side is the one read-modify-write both openers race on.
  if (!hdr->pid[1].compare_exchange_strong(expected, ::getpid(), std::memory_order_acq_rel)) {
    fail(TransportErrc::not_supported, " is already open in process " + std::to_string(expected) +
                                           "; a channel joins two processes: create one channel per pair");
  }
  auto* rings =
      std::launder(reinterpret_cast<RingControl*>(static_cast<std::byte*>(base) + kRingControlOffset));
  auto impl = std::make_unique<Impl>();
  impl->name = std::string(name);
  impl->side = 1;
  impl->base = base;
  impl->bytes = bytes;
  impl->slot_size = ss;
  impl->mask = cap - 1;
  impl->sender = sender;
  impl->wake_asked = options.wake;
  impl->busy_poll_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(options.busy_poll).count();
  impl->peer = creator_pid;
  impl->map_layout();
  impl->init_stash(options.stash_capacity);
  // The creator may sleep in a receive, waiting for a peer to watch: wake it (Dekker, as in try_send),
  // through the FIFO end this channel keeps for its sends.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (rings[1].reader_sleeping.load(std::memory_order_relaxed) != kAwake)
    wake_reader(rings[1], name, 0, impl->peer_fifo);
  return IpcChannel(impl.release());
}

IpcChannel::IpcChannel(IpcChannel&& o) noexcept : impl_(std::exchange(o.impl_, nullptr)) {}
IpcChannel& IpcChannel::operator=(IpcChannel&& o) noexcept {
  if (this != &o) {
    Impl::destroy(std::exchange(impl_, nullptr));
    impl_ = std::exchange(o.impl_, nullptr);
  }
  return *this;
}
IpcChannel::~IpcChannel() {
  Impl::destroy(impl_);
}

void IpcChannel::close() noexcept {
  if (impl_ != nullptr) impl_->close();
}

std::size_t IpcChannel::max_payload() const noexcept {
  return impl_->max_payload;
}
int IpcChannel::peer_pid() const noexcept {
  if (impl_->peer != 0 || impl_->hdr == nullptr) return impl_->peer;
  return impl_->hdr->pid[1 - impl_->side].load(std::memory_order_acquire);
}
const char* to_string(IpcWake w) noexcept {
  switch (w) {
    case IpcWake::automatic:
      return "automatic";
    case IpcWake::futex:
      return "futex";
    case IpcWake::fifo:
      return "fifo";
    case IpcWake::recheck:
      return "recheck";
  }
  return "?";
}

std::uint64_t IpcChannel::wakeups() const noexcept {
  return impl_->wakeups;
}

IpcWake IpcChannel::wake() const noexcept {
  if (impl_->futex_supported) return IpcWake::futex;
  if (impl_->wake_fifo >= 0) return IpcWake::fifo;
  return impl_->fifo_tried || impl_->wake_asked == IpcWake::recheck ? IpcWake::recheck : IpcWake::automatic;
}

const std::string& IpcChannel::name() const noexcept {
  return impl_->name;
}

// ---------------------------------------------------------------------------------------------------------------
// Sending.

bool IpcChannel::try_send(std::span<const std::byte> payload) {
  return impl_->try_send(payload, impl_->sender);
}
bool IpcChannel::try_send(std::span<const std::byte> payload, EndpointId sender) {
  return impl_->try_send(payload, sender);
}

IpcChannel::SendAwaiter IpcChannel::send(std::span<const std::byte> payload, Duration timeout) {
  return SendAwaiter(impl_, payload, impl_->sender, timeout);
}
IpcChannel::SendAwaiter IpcChannel::send(std::span<const std::byte> payload, EndpointId sender,
                                         Duration timeout) {
  return SendAwaiter(impl_, payload, sender, timeout);
}

IpcChannel::SendAwaiter::SendAwaiter(Impl* impl, std::span<const std::byte> payload, EndpointId sender,
                                     Duration timeout) noexcept
    : impl_(impl),
      payload_(payload),
      sender_(sender),
      deadline_(timeout == Duration::max() ? INT64_MAX : deadline_after(timeout)) {}

bool IpcChannel::SendAwaiter::await_ready() {
  shard_ = &this_shard();
  task_ = shard_->current_task();
  detail::throw_if_cancelled(task_);
  sent_ = impl_->try_send(payload_, sender_);
  if (!sent_ && deadline_ != INT64_MAX && monotonic_ns() >= deadline_) timed_out_ = true;
  return sent_ || timed_out_;
}

// A full ring: the reader is behind. Look again from the shard's timers, at once for the first 64 laps (a
// reader on another CPU frees slots within microseconds), then every 20 us.
void IpcChannel::SendAwaiter::arm_retry() noexcept {
  const std::int64_t now = monotonic_ns();
  timer_.owner = this;
  timer_.fire = &SendAwaiter::retry;
  timer_.deadline = now + (retries_++ < 64 ? 1 : 20'000);
  if (deadline_ != INT64_MAX) timer_.deadline = std::min(timer_.deadline, std::max(deadline_, now + 1));
  shard_->timers().arm(&timer_);
}

void IpcChannel::SendAwaiter::retry(detail::TimerEntry* e) noexcept {
  SendAwaiter* a = detail::OwnedTimer<SendAwaiter>::of(e);
  try {
    a->sent_ = a->impl_->try_send(a->payload_, a->sender_);
  } catch (...) {
    a->error_ = std::current_exception();  // closed meanwhile: rethrown in await_resume
  }
  if (!a->sent_ && !a->error_) {
    if (a->deadline_ == INT64_MAX || monotonic_ns() < a->deadline_) {
      a->arm_retry();
      return;
    }
    a->timed_out_ = true;
  }
  detail::disarm_cancel(a->task_, a);
  a->shard_->schedule(a->h_, a->task_);
}

void IpcChannel::SendAwaiter::await_suspend(std::coroutine_handle<> h) noexcept {
  h_ = h;
  arm_retry();
  fn = [](detail::CancelHook* hook) noexcept {
    auto* a = static_cast<SendAwaiter*>(hook);
    a->shard_->timers().cancel(&a->timer_);
    a->shard_->schedule(a->h_, a->task_);
  };
  detail::arm_cancel(task_, this);
}

void IpcChannel::SendAwaiter::await_resume() {
  detail::disarm_cancel(task_, this);
  if (error_) std::rethrow_exception(error_);
  if (sent_) return;
  detail::throw_if_cancelled(task_);
  throw TransportError(TransportErrc::timeout,
                       where(impl_->name) + ": the ring stayed full for the whole send timeout");
}

// ---------------------------------------------------------------------------------------------------------------
// Receiving.

IpcChannel::RecvAwaiter IpcChannel::recv(Duration timeout) {
  return RecvAwaiter(impl_, std::nullopt, timeout);
}
IpcChannel::RecvAwaiter IpcChannel::recv_from(EndpointId sender, Duration timeout) {
  return RecvAwaiter(impl_, sender, timeout);
}

IpcChannel::RecvAwaiter::RecvAwaiter(Impl* impl, std::optional<EndpointId> from, Duration timeout) noexcept
    : impl_(impl), from_(from), deadline_(timeout == Duration::max() ? INT64_MAX : deadline_after(timeout)) {}

bool IpcChannel::RecvAwaiter::await_ready() {
  shard_ = &this_shard();
  task_ = shard_->current_task();
  detail::throw_if_cancelled(task_);
  if (impl_->self_closed) {
    outcome_ = Outcome::closed;
    return true;
  }
  impl_->bind(*shard_);
  if (impl_->waiter != nullptr) {
    outcome_ = Outcome::busy;
    return true;
  }
  impl_->release_held();
  outcome_ = impl_->take_for_waiter(*this);
  if (outcome_ != Outcome::none) return true;
  if (impl_->busy_poll_ns > 0 && spin_for_message()) return true;
  if (deadline_ != INT64_MAX && deadline_ <= monotonic_ns()) {
    outcome_ = Outcome::timeout;
    return true;
  }
  return false;
}

// IpcOptions::busy_poll: watch the ring's next slot from here, without suspending, while nothing else on the
// shard wants to run. A message that lands meanwhile costs its cache-line transfer and no lap of the shard
// loop, no suspension and no resumption. The clock and the shard are looked at every 64 turns (a clock read
// costs more than a look at the slot), so the spin ends within about 64 turns of its budget, the receive's
// deadline, or anything else becoming ready.
bool IpcChannel::RecvAwaiter::spin_for_message() noexcept {
  // The budget starts at the first look at the clock, 64 turns in: a message that comes sooner (the common
  // case in a ping-pong) then costs no clock read at all.
  std::int64_t until = 0;
  for (unsigned turn = 1;; ++turn) {
    if (impl_->in_readable()) {
      outcome_ = impl_->take_for_waiter(*this);
      if (outcome_ != Outcome::none) return true;
    }
    if (turn % 64 == 0) {
      const std::int64_t now = monotonic_ns();
      if (until == 0) until = std::min(now + impl_->busy_poll_ns, deadline_);
      if (now >= until || shard_->others_waiting(now)) return false;
      if (impl_->peer_gone()) return false;  // the slow path says closed, after the last message
    }
    cpu_relax();
  }
}

void IpcChannel::RecvAwaiter::await_suspend(std::coroutine_handle<> h) noexcept {
  h_ = h;
  impl_->waiter = this;
  shard_->add_poller(impl_);
  if (deadline_ != INT64_MAX) {
    timer_.owner = this;
    timer_.deadline = deadline_;
    timer_.fire = [](detail::TimerEntry* e) noexcept {
      detail::OwnedTimer<RecvAwaiter>::of(e)->finish(Outcome::timeout);
    };
    shard_->timers().arm(&timer_);
  }
  fn = [](detail::CancelHook* hook) noexcept { static_cast<RecvAwaiter*>(hook)->finish(Outcome::none); };
  detail::arm_cancel(task_, this);
}

void IpcChannel::RecvAwaiter::finish(Outcome o) noexcept {
  outcome_ = o;
  impl_->waiter = nullptr;
  shard_->remove_poller(impl_);
  if (timer_.armed()) shard_->timers().cancel(&timer_);
  detail::disarm_cancel(task_, this);
  shard_->schedule(h_, task_);
}

IpcMessage IpcChannel::RecvAwaiter::await_resume() {
  detail::disarm_cancel(task_, this);
  detail::throw_if_cancelled(task_);
  switch (outcome_) {
    case Outcome::message:
      return message_;
    case Outcome::closed:
      throw TransportError(TransportErrc::closed, impl_->closed_text());
    case Outcome::stash_full:
      throw TransportError(TransportErrc::message_too_large,
                           where(impl_->name) + ": recv_from found the stash full (" +
                               std::to_string(impl_->stash_capacity) +
                               " messages of other senders set aside); the next one stays in the ring. "
                               "Receive those with recv(), or raise IpcOptions::stash_capacity");
    case Outcome::malformed:
      throw TransportError(TransportErrc::malformed,
                           where(impl_->name) +
                               ": the peer wrote a slot with a length over the slot payload; "
                               "the region is corrupt, close the channel");
    case Outcome::timeout:
      throw TransportError(TransportErrc::timeout, where(impl_->name) + ": no message within the timeout");
    case Outcome::busy:
      throw TransportError(TransportErrc::not_supported,
                           where(impl_->name) +
                               ": another receive already waits on this channel; receive "
                               "from one task at a time");
    case Outcome::none:
      break;
  }
  throw TransportError(TransportErrc::closed, where(impl_->name) + ": the receive ended without a message");
}

}  // namespace moirai::transport
