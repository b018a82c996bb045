// Io on the shard's ring as awaitables: co_await suspends the task, the SQE goes out with the shard's next
// batched submit, and the CQE resumes the task on the same shard with the kernel's result (a count, or
// -errno: on the hot path errors are values). Cancelling the task cancels the request in the kernel.
//
// An operation may carry a timeout: a linked IORING_OP_LINK_TIMEOUT goes with it in the same submission, so
// the kernel itself either completes the request or cancels it (-ECANCELED) when the time is up. Unlike a
// timer racing the request from user space, a request that completed is never reported as timed out, so no
// bytes a recv took off a socket are lost to a timeout.
#pragma once

#include <liburing.h>

#include <cerrno>
#include <concepts>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <utility>

#include "moirai/core/clock.hpp"
#include "moirai/core/detail/shard_core.hpp"
#include "moirai/io/ring.hpp"

namespace moirai {

// A Prep that can also do its operation as a non-blocking syscall: try_inline() gives the result as the CQE
// would (a count, or -errno), or -EAGAIN when the syscall could not finish it now (or was not tried), and the
// request then goes through the ring as usual. Only for operations where a syscall that finds no room is
// cheap and harmless to repeat (sends): the ring's request tries again, and waits for room.
template <class Prep>
concept InlineIo = requires(Prep& p) {
  { p.try_inline() }
  noexcept->std::same_as<int>;
};

// Any single-CQE operation: `prep(sqe)` fills the SQE (io_uring_prep_*); co_await yields the CQE's res. A
// Prep that is InlineIo is first tried as a syscall (Shard::take_inline_io).
template <class Prep>
class [[nodiscard]] IoAwaiter : io::Completion, detail::CancelHook {
 public:
  explicit IoAwaiter(Prep prep) noexcept(std::is_nothrow_move_constructible_v<Prep>)
      : prep_(std::move(prep)) {}
  // With a timeout (Duration::max(): none): the result is -ECANCELED if the kernel cancelled the request
  // because the timeout passed (see timed_out()).
  IoAwaiter(Prep prep, Duration timeout) noexcept(std::is_nothrow_move_constructible_v<Prep>)
      : prep_(std::move(prep)) {
    if (timeout != Duration::max()) {
      const long long ns = timeout.count() < 0 ? 0 : timeout.count();
      timeout_.tv_sec = ns / 1'000'000'000;
      timeout_.tv_nsec = ns % 1'000'000'000;
      has_timeout_ = true;
    }
  }

  bool await_ready() {
    shard_ = &this_shard();
    task_ = shard_->current_task();
    detail::throw_if_cancelled(task_);
    if constexpr (InlineIo<Prep>) {
      // Shard::take_inline_io: the syscall in place of the request, when it can finish now.
      if (shard_->take_inline_io()) {
        const int res = prep_.try_inline();
        if (res != -EAGAIN) {
          shard_->count_inline_io();
          res_ = res;
          return true;
        }
      }
    }
    return false;
  }
  bool await_suspend(std::coroutine_handle<> h) noexcept {
    io::Ring& ring = shard_->ring();
    // The request and its linked timeout must go to the kernel in one submission: make room for both first.
    if (has_timeout_ && io_uring_sq_space_left(ring.native()) < 2) ring.submit();
    io_uring_sqe* sqe = ring.get_sqe();
    if (sqe == nullptr) {  // the SQ is full and the kernel would not take more: report it as a value
      res_ = -EBUSY;
      return false;
    }
    prep_(sqe);
    if (has_timeout_) {
      io_uring_sqe* link = io_uring_get_sqe(ring.native());
      if (link == nullptr) [[unlikely]] {  // cannot happen after the room check; fail safe rather than block
        io_uring_prep_nop(sqe);
        io::Ring::set_completion(sqe, nullptr);
        res_ = -EBUSY;
        return false;
      }
      sqe->flags |= IOSQE_IO_LINK;
      io_uring_prep_link_timeout(link, &timeout_, 0);
      io::Ring::set_completion(link, nullptr);  // its own CQE (-ETIME or -ECANCELED) concerns nobody
    }
    h_ = h;
    on_complete = [](io::Completion* c, int res, std::uint32_t flags) noexcept {
      auto* a = static_cast<IoAwaiter*>(c);
      a->res_ = res;
      a->flags_ = flags;
      detail::disarm_cancel(a->task_, a);
      a->shard_->schedule(a->h_, a->task_);
    };
    io::Ring::set_completion(sqe, this);
    fn = [](detail::CancelHook* hook) noexcept {
      auto* a = static_cast<IoAwaiter*>(hook);
      a->shard_->ring().cancel(a);  // the request's own CQE (-ECANCELED) resumes the task
    };
    detail::arm_cancel(task_, this);
    return true;
  }
  int await_resume() {
    detail::disarm_cancel(task_, this);
    detail::throw_if_cancelled(task_);
    return res_;
  }
  std::uint32_t cqe_flags() const noexcept { return flags_; }
  // True when the request was cancelled by its timeout (only meaningful after co_await returned).
  bool timed_out() const noexcept { return has_timeout_ && res_ == -ECANCELED; }

 private:
  Prep prep_;
  Shard* shard_ = nullptr;
  detail::TaskControl* task_ = nullptr;
  std::coroutine_handle<> h_{};
  int res_ = 0;
  std::uint32_t flags_ = 0;
  bool has_timeout_ = false;
  __kernel_timespec timeout_{};  // read by the kernel when the link is submitted; lives in the awaiter
};

template <class Prep>
IoAwaiter<Prep> io_op(Prep prep) {
  return IoAwaiter<Prep>(std::move(prep));
}
// The same with a timeout: co_await yields -ECANCELED when the kernel cancelled the request at the timeout.
template <class Prep>
IoAwaiter<Prep> io_op(Prep prep, Duration timeout) {
  return IoAwaiter<Prep>(std::move(prep), timeout);
}

inline auto async_nop() {
  return io_op([](io_uring_sqe* sqe) noexcept { io_uring_prep_nop(sqe); });
}
inline auto async_read(int fd, void* buf, std::size_t n, std::uint64_t offset = ~0ull) {
  return io_op([=](io_uring_sqe* sqe) noexcept {
    io_uring_prep_read(sqe, fd, buf, static_cast<unsigned>(n), offset);
  });
}
inline auto async_write(int fd, const void* buf, std::size_t n, std::uint64_t offset = ~0ull) {
  return io_op([=](io_uring_sqe* sqe) noexcept {
    io_uring_prep_write(sqe, fd, buf, static_cast<unsigned>(n), offset);
  });
}

}  // namespace moirai
