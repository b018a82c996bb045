// The ring itself: set-up with the best mode the kernel accepts, the opcode probe, submission, and reaping
// each completion to whoever waits for it. Why a set-up failed is in setup_diagnosis.cpp, NAPI busy poll in
// busy_poll.cpp.
#include "moirai/io/ring.hpp"

#include <algorithm>
#include <atomic>
#include <bitset>
#include <cerrno>
#include <cstdint>
#include <string>

namespace moirai::io {
namespace {

unsigned setup_flags(SetupMode mode) {
  switch (mode) {
    case SetupMode::kDeferTaskrun:
      return IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_TASKRUN_FLAG |
             IORING_SETUP_SUBMIT_ALL;
    case SetupMode::kCoopTaskrun:
      return IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG | IORING_SETUP_SUBMIT_ALL;
    case SetupMode::kPlain:
      return 0;
  }
  return 0;
}

// The best mode this kernel accepted so far. Later rings start there instead of paying for the refusals again
// ("probed once"); a ring that asks for a lower mode still gets it.
std::atomic<int> g_best_accepted{static_cast<int>(SetupMode::kDeferTaskrun)};

struct Probe {
  std::bitset<256> ops;
  bool valid = false;
};

const Probe& probe() {
  static Probe p = [] {
    Probe result;
    io_uring_probe* raw = io_uring_get_probe();
    if (raw != nullptr) {
      for (int op = 0; op < 256; ++op) {
        if (io_uring_opcode_supported(raw, op)) result.ops.set(static_cast<std::size_t>(op));
      }
      result.valid = true;
      io_uring_free_probe(raw);
    }
    return result;
  }();
  return p;
}

}  // namespace

const char* to_string(SetupMode mode) noexcept {
  switch (mode) {
    case SetupMode::kDeferTaskrun:
      return "single-issuer+defer-taskrun";
    case SetupMode::kCoopTaskrun:
      return "coop-taskrun";
    case SetupMode::kPlain:
      return "plain";
  }
  return "?";
}

Ring::Ring(const RingOptions& options) {
  const unsigned entries = options.sq_entries == 0 ? 256 : options.sq_entries;
  if (entries > 32768) {
    throw RingError(EINVAL, "io_uring ring set-up: sq_entries " + std::to_string(entries) +
                                " is more than the kernel allows (32768); use fewer entries");
  }
  const unsigned cq = options.cq_entries == 0 ? entries * 4 : options.cq_entries;
  if (cq < entries) {
    throw RingError(EINVAL, "io_uring ring set-up: cq_entries (" + std::to_string(cq) +
                                ") must be at least sq_entries (" + std::to_string(entries) + ")");
  }
  int first = std::max(static_cast<int>(options.best_mode), g_best_accepted.load(std::memory_order_relaxed));
  int rc = -EINVAL;
  for (int m = first; m <= static_cast<int>(SetupMode::kPlain); ++m) {
    io_uring_params params{};
    params.flags = setup_flags(static_cast<SetupMode>(m)) | IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP;
    params.cq_entries = cq;
    rc = io_uring_queue_init_params(entries, &ring_, &params);
    if (rc == 0) {
      mode_ = static_cast<SetupMode>(m);
      // Remember it only if we were free to ask for the best: a ring forced low says nothing of the kernel.
      if (options.best_mode == SetupMode::kDeferTaskrun) {
        int expected = static_cast<int>(SetupMode::kDeferTaskrun);
        g_best_accepted.compare_exchange_strong(expected, m, std::memory_order_relaxed);
      }
      break;
    }
    if (rc != -EINVAL) break;  // only "flags not understood" is worth a lesser mode; anything else is final
  }
  if (rc != 0) throw RingError(-rc, describe_setup_error(-rc, HostFacts::current()));
  if (options.register_ring_fd && io_uring_register_ring_fd(&ring_) == 1) ring_fd_registered_ = true;
  alive_ = std::make_shared<bool>(true);
  probe();  // now, not at the first MSG_RING: the probe allocates, and the hot path must not
}

Ring::~Ring() {
  *alive_ = false;
  io_uring_queue_exit(&ring_);
}

io_uring_sqe* Ring::get_sqe_slow() noexcept {
  // SQ full: push what is queued to the kernel. With SUBMIT_ALL the kernel takes every SQE it can.
  if (io_uring_submit(&ring_) < 0) return nullptr;
  return io_uring_get_sqe(&ring_);
}

int Ring::submit() noexcept {
  return io_uring_submit(&ring_);
}

unsigned Ring::dispatch() noexcept {
  unsigned n = 0;
  io_uring_cqe* cqe = nullptr;
  // Each CQE is consumed before its waiter runs, so a waiter may submit, poll or cancel re-entrantly without
  // seeing the same CQE twice.
  while (io_uring_peek_cqe(&ring_, &cqe) == 0 && cqe != nullptr) {
    const std::uint64_t data = cqe->user_data;
    const int res = cqe->res;
    const std::uint32_t flags = cqe->flags;
    io_uring_cqe_seen(&ring_, cqe);
    if (data == 0 || data == LIBURING_UDATA_TIMEOUT) continue;  // nobody waits (cancel acks and the like)
    ++n;
    auto* c = reinterpret_cast<Completion*>(data);
    c->on_complete(c, res, flags);
  }
  return n;
}

unsigned Ring::poll() noexcept {
  if (has_unsubmitted() || needs_enter()) {
    io_uring_submit_and_get_events(&ring_);
  }
  return dispatch();
}

unsigned Ring::wait(long long timeout_ns) noexcept {
  io_uring_cqe* cqe = nullptr;
  if (io_uring_cq_ready(&ring_) == 0) {
    if (timeout_ns < 0) {
      io_uring_submit_and_wait(&ring_, 1);
    } else {
      __kernel_timespec ts{};
      ts.tv_sec = timeout_ns / 1'000'000'000;
      ts.tv_nsec = timeout_ns % 1'000'000'000;
      io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
    }
  } else if (has_unsubmitted()) {
    io_uring_submit(&ring_);
  }
  return dispatch();
}

void Ring::cancel(Completion* c) noexcept {
  io_uring_sqe* sqe = get_sqe();
  if (sqe == nullptr) return;
  io_uring_prep_cancel64(sqe, reinterpret_cast<std::uint64_t>(c), 0);
  // The cancel request's own CQE says only whether it found the target; the target's CQE is what matters.
  io_uring_sqe_set_data64(sqe, 0);
}

bool Ring::prep_msg_ring(int target_ring_fd, Completion* target) noexcept {
  if (!supports(Op::msg_ring)) return false;
  io_uring_sqe* sqe = get_sqe();
  if (sqe == nullptr) return false;
  io_uring_prep_msg_ring(sqe, target_ring_fd, 0, reinterpret_cast<std::uint64_t>(target), 0);
  // Success posts no CQE here (SKIP_SUCCESS); a failure does, and must not pass unseen: the wake-up it
  // carried is lost, so the owner is told (take_msg_ring_failure) and falls back to another way.
  msg_ring_failed_.ring = this;
  msg_ring_failed_.on_complete = [](Completion* c, int, std::uint32_t) noexcept {
    static_cast<MsgRingFailure*>(c)->ring->msg_ring_failures_++;
  };
  set_completion(sqe, &msg_ring_failed_);
  sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
  return true;
}

int Ring::claim_buffer_group(int wanted) noexcept {
  if (wanted >= 0) {
    if (wanted >= static_cast<int>(buffer_groups_.size()) ||
        buffer_groups_.test(static_cast<std::size_t>(wanted)))
      return -1;
    buffer_groups_.set(static_cast<std::size_t>(wanted));
    return wanted;
  }
  for (std::size_t g = 0; g < buffer_groups_.size(); ++g) {
    if (!buffer_groups_.test(g)) {
      buffer_groups_.set(g);
      return static_cast<int>(g);
    }
  }
  return -1;
}

bool Ring::probe_available() noexcept {
  return probe().valid;
}

bool Ring::supports(int opcode) noexcept {
  const Probe& p = probe();
  return p.valid && opcode >= 0 && opcode < 256 && p.ops.test(static_cast<std::size_t>(opcode));
}

}  // namespace moirai::io
