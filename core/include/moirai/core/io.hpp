// Io on the shard's ring as awaitables: co_await suspends the task, the SQE goes out with the shard's next
// batched submit, and the CQE resumes the task on the same shard with the kernel's result (a count, or
// -errno: on the hot path errors are values). Cancelling the task cancels the request in the kernel.
#pragma once

#include <liburing.h>

#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <utility>

#include "moirai/core/shard.hpp"
#include "moirai/io/ring.hpp"

namespace moirai {

// Any single-CQE operation: `prep(sqe)` fills the SQE (io_uring_prep_*); co_await yields the CQE's res.
template <class Prep>
class [[nodiscard]] IoAwaiter : io::Completion, detail::CancelHook {
 public:
  explicit IoAwaiter(Prep prep) noexcept(std::is_nothrow_move_constructible_v<Prep>)
      : prep_(std::move(prep)) {}

  bool await_ready() {
    shard_ = &this_shard();
    task_ = shard_->current_task();
    detail::throw_if_cancelled(task_);
    return false;
  }
  bool await_suspend(std::coroutine_handle<> h) noexcept {
    io_uring_sqe* sqe = shard_->ring().get_sqe();
    if (sqe == nullptr) {  // the SQ is full and the kernel would not take more: report it as a value
      res_ = -EBUSY;
      return false;
    }
    prep_(sqe);
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

 private:
  Prep prep_;
  Shard* shard_ = nullptr;
  detail::TaskControl* task_ = nullptr;
  std::coroutine_handle<> h_{};
  int res_ = 0;
  std::uint32_t flags_ = 0;
};

template <class Prep>
IoAwaiter<Prep> io_op(Prep prep) {
  return IoAwaiter<Prep>(std::move(prep));
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
