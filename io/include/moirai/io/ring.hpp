// One io_uring, owned by one thread: set-up with the best flags the kernel accepts, SQE preparation, batched
// submission, and completion reaping that hands each CQE to whoever waits for it.
//
// A Ring is single-issuer: it must be created, used and destroyed on one thread (the kernel enforces this
// under IORING_SETUP_SINGLE_ISSUER). Nothing here allocates after construction.
#pragma once

#include <liburing.h>

#include <atomic>
#include <bitset>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <system_error>
#include <utility>

#include "moirai/io/completion.hpp"
#include "moirai/io/error.hpp"
#include "moirai/io/op.hpp"
#include "moirai/io/setup_mode.hpp"

namespace moirai::io {

// Who may wake a futex wait: threads of this process only (FUTEX2_PRIVATE, the cheaper lookup), or any
// process that maps the word's memory.
enum class FutexScope : std::uint8_t { process_private, shared };

// Fills `sqe` as a futex wait (Op::futex_wait, Linux 6.7; see Ring::supports) on the 32-bit `word`: its CQE
// comes with 0 when a FUTEX_WAKE on the word wakes it, at once with -EAGAIN when the word no longer holds
// `expected`, and with -EINVAL or -EOPNOTSUPP where the kernel refuses the flags. The caller sets the
// completion (Ring::set_completion).
void prep_futex_wait(io_uring_sqe* sqe, const std::atomic<std::uint32_t>& word, std::uint32_t expected,
                     FutexScope scope) noexcept;

struct RingOptions {
  unsigned sq_entries = 256;
  unsigned cq_entries = 0;  // 0: four times sq_entries, so a burst of multishot completions does not overflow
  // The best mode to try; lower ones are tried when the kernel refuses it. Tests use this to force a
  // fallback.
  SetupMode best_mode = SetupMode::kDeferTaskrun;
  bool register_ring_fd = true;  // saves an fd lookup per io_uring_enter (Linux 5.18+)
};

// The facts a set-up error message is built from; read from the host by `current()`, injectable in tests.
struct HostFacts {
  int io_uring_disabled = 0;           // /proc/sys/kernel/io_uring_disabled, 0 if absent
  unsigned long long memlock_kib = 0;  // RLIMIT_MEMLOCK soft limit in KiB; ~0ull when unlimited
  bool in_container = false;           // a hint that seccomp may be the cause
  bool seccomp_filtered = false;       // /proc/self/status says a seccomp filter is installed
  static HostFacts current();
};

// Builds the message for a failed io_uring_setup: cause, and the remedy in words.
std::string describe_setup_error(int err, const HostFacts& facts);

// What a code from Ring::enable_busy_poll means, in words: the cause and what would let the kernel take it.
std::string describe_busy_poll_error(std::error_code refused);

class Ring {
 public:
  explicit Ring(const RingOptions& options = {});
  ~Ring();
  Ring(const Ring&) = delete;
  Ring& operator=(const Ring&) = delete;

  // A free SQE. When the SQ is full, what is queued is submitted first to make room; returns nullptr only if
  // that submission fails (the caller reports it as -EBUSY or -EAGAIN).
  io_uring_sqe* get_sqe() noexcept {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    if (sqe == nullptr) [[unlikely]] {
      return get_sqe_slow();
    }
    return sqe;
  }

  // Marks an SQE as completed into `c`. user_data 0 means "nobody waits" and its CQE is dropped.
  static void set_completion(io_uring_sqe* sqe, Completion* c) noexcept {
    io_uring_sqe_set_data64(sqe, reinterpret_cast<std::uint64_t>(c));
  }

  // Submits every queued SQE without waiting. Returns the number submitted or -errno.
  int submit() noexcept;

  // True when SQEs are queued but not yet submitted.
  bool has_unsubmitted() const noexcept { return io_uring_sq_ready(&ring_) != 0; }

  // True when the kernel holds completions that only an enter will deliver (deferred task work or CQ
  // overflow). Reading this costs one load of a shared word, no syscall.
  bool needs_enter() const noexcept {
    return (IO_URING_READ_ONCE(*ring_.sq.kflags) & (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW)) != 0;
  }

  // Submits what is queued and dispatches every available completion to its Completion. Enters the kernel
  // only when there is something to submit or the kernel flagged deferred work. Returns CQEs dispatched.
  unsigned poll() noexcept;

  // Submits, then sleeps in the kernel until at least one CQE arrives or `timeout_ns` (relative; negative
  // means forever) passes; then dispatches. Returns CQEs dispatched (0 on timeout or signal).
  unsigned wait(long long timeout_ns) noexcept;

  // Asks the kernel to cancel the request whose user_data is `c`. Its CQE arrives with -ECANCELED (or its
  // normal result, if it won the race); either way `c` is completed exactly once.
  void cancel(Completion* c) noexcept;

  // Queues a MSG_RING that posts a CQE with user_data `target` into another ring; no CQE comes back here on
  // success. Returns false when the kernel lacks MSG_RING (the caller falls back to an eventfd).
  bool prep_msg_ring(int target_ring_fd, Completion* target) noexcept;
  // How many MSG_RINGs failed since the last call (each lost the wake-up it carried).
  unsigned take_msg_ring_failures() noexcept { return std::exchange(msg_ring_failures_, 0u); }

  // Turns on io_uring's NAPI busy poll for this ring (IORING_REGISTER_NAPI, static tracking: Linux 6.13):
  // from then on a wait() spins inside the kernel for up to `window` (or its own timeout, if shorter) before
  // it sleeps, and a completion that becomes ready meanwhile (a socket's data, a MSG_RING) is run and
  // returned by that same entry. A thread spinning in user space must notice the TASKRUN flag and enter the
  // kernel again to get the same completion (see busy_poll.cpp). Returns an empty code when the kernel took
  // it (or had already), otherwise the errno it refused with, in io_category(): EINVAL from a kernel without
  // static tracking (before Linux 6.13), EOPNOTSUPP from one built without CONFIG_NET_RX_BUSY_POLL;
  // describe_busy_poll_error() says it in words. The ring works on either way (its waits then sleep at once).
  // A window outside 1 us to 1 s throws RingError(EINVAL).
  [[nodiscard]] std::error_code enable_busy_poll(std::chrono::microseconds window);
  bool busy_poll_enabled() const noexcept { return busy_poll_; }

  int fd() const noexcept { return ring_.ring_fd; }
  SetupMode mode() const noexcept { return mode_; }
  unsigned sq_entries() const noexcept { return ring_.sq.ring_entries; }
  unsigned cq_entries() const noexcept { return ring_.cq.ring_entries; }
  bool ring_fd_registered() const noexcept { return ring_fd_registered_; }
  // Whether the kernel supports an operation, from the probe made once per process (static: every ring of
  // the process has the same kernel).
  static bool supports(Op op) noexcept { return supports(static_cast<int>(op)); }
  // The same for an opcode Moirai does not name (IORING_OP_*), for an application's own requests.
  static bool supports(int opcode) noexcept;
  // Whether that probe succeeded. False when io_uring cannot be used here at all (no kernel support, disabled
  // by kernel.io_uring_disabled, refused by a seccomp filter): then supports() is false for every opcode.
  static bool probe_available() noexcept;

  io_uring* native() noexcept { return &ring_; }
  // True until the ring is destroyed, for what may outlive it by mistake (a receive buffer ring whose socket
  // is destroyed after its runtime ended): such an owner then leaves the ring alone.
  std::shared_ptr<const bool> alive() const noexcept { return alive_; }

  // Buffer-group ids (the namespace of provided-buffer rings, per ring): the lowest free id, or -1 when all
  // 65536 are taken; `release_buffer_group` frees one. Set-up calls, used by BufferRing.
  int claim_buffer_group(int wanted = -1) noexcept;
  void release_buffer_group(std::uint16_t group) noexcept { buffer_groups_.reset(group); }

 private:
  io_uring_sqe* get_sqe_slow() noexcept;
  unsigned dispatch() noexcept;

  struct MsgRingFailure : Completion {
    Ring* ring = nullptr;
  };
  io_uring ring_{};
  MsgRingFailure msg_ring_failed_{};
  unsigned msg_ring_failures_ = 0;
  SetupMode mode_ = SetupMode::kPlain;
  bool ring_fd_registered_ = false;
  bool busy_poll_ = false;
  std::shared_ptr<bool> alive_;
  std::bitset<65536> buffer_groups_;  // buffer-group ids in use
};

}  // namespace moirai::io
