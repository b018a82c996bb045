#include "moirai/transport/send_buffers.hpp"

#include <liburing.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <string>

#include "moirai/io/ring.hpp"
#include "moirai/transport/datagram_socket.hpp"
#include "moirai/transport/stream_socket.hpp"
#include "socket_error.hpp"

#ifndef IORING_SEND_ZC_REPORT_USAGE
#define IORING_SEND_ZC_REPORT_USAGE (1U << 3)  // Linux 6.2: say in each notification whether it copied
#endif
#ifndef IORING_NOTIF_USAGE_ZC_COPIED
#define IORING_NOTIF_USAGE_ZC_COPIED (1U << 31)  // Linux 6.2's flag on a notification whose bytes were copied
#endif

namespace moirai::transport {
namespace detail {

using moirai::detail::arm_cancel;
using moirai::detail::CancelHook;
using moirai::detail::disarm_cancel;
using moirai::detail::TaskControl;
using moirai::detail::throw_if_cancelled;
using moirai::detail::WaitList;

struct SlotSend;

// One buffer and the completion its sends report to. A zero-copy send makes two CQEs with the same
// user_data: its result (IORING_CQE_F_MORE when a notification follows) and, later, the notification
// (IORING_CQE_F_NOTIF), so the completion lives here, with the buffer, not in the sender's frame.
struct SendSlot : io::Completion {
  SendPoolState* pool = nullptr;
  std::byte* data = nullptr;
  unsigned index = 0;
  bool held = false;               // a SendBuffer owns it
  unsigned results = 0;            // sends whose result CQE has not come
  unsigned notices = 0;            // notifications still to come
  SlotSend* sender = nullptr;      // the send waiting for its result
  SendSlot* drain_next = nullptr;  // SendBufferPool::drained(): the next buffer it holds
};

struct SendPoolState {
  Shard* shard = nullptr;
  std::byte* base = nullptr;
  std::size_t map_bytes = 0;
  std::size_t buffer_size = 0;
  unsigned count = 0;
  bool registered = false;
  bool zero_copy = false;
  bool report_usage = true;  // ask for IORING_SEND_ZC_REPORT_USAGE until a kernel refuses it (before 6.2)
  bool orphaned = false;     // the pool was destroyed; this goes when its last buffer comes back
  std::unique_ptr<SendSlot[]> slots;
  std::unique_ptr<unsigned[]> free_list;
  unsigned free_count = 0;
  WaitList waiters;
  SendBufferStats stats;

  void give_back(SendSlot* s) noexcept;
  void settle(SendSlot* s) noexcept {
    if (!s->held && s->results == 0 && s->notices == 0) give_back(s);
  }
  bool idle() const noexcept { return free_count == count; }
  ~SendPoolState() {
    if (registered) io_uring_unregister_buffers(shard->ring().native());
    if (base != nullptr) ::munmap(base, map_bytes);
  }
};

void SendPoolState::give_back(SendSlot* s) noexcept {
  if (!waiters.empty()) {
    // Straight to the longest waiter: a buffer that came back is never taken by a later try_acquire first.
    auto* w = static_cast<SlotWaiter*>(waiters.front());
    s->held = true;
    w->got = s;
    waiters.wake_front();
    return;
  }
  free_list[free_count++] = s->index;
  if (orphaned && idle()) delete this;
}

// One send request from a slot's buffer; resumed by the slot's completion with the result.
struct SlotSend : CancelHook {
  SendSlot* slot;
  int fd;
  std::size_t offset;
  std::size_t len;
  bool zero_copy;
  Shard* shard = nullptr;
  TaskControl* task = nullptr;
  std::coroutine_handle<> h{};
  int res = 0;

  SlotSend(SendSlot* s, int socket, std::size_t at, std::size_t n, bool zc) noexcept
      : slot(s), fd(socket), offset(at), len(n), zero_copy(zc) {}

  bool await_ready() {
    shard = &this_shard();
    task = shard->current_task();
    throw_if_cancelled(task);
    return false;
  }
  bool await_suspend(std::coroutine_handle<> handle) noexcept {
    io_uring_sqe* sqe = shard->ring().get_sqe();
    if (sqe == nullptr) {
      res = -EBUSY;
      return false;
    }
    SendPoolState& p = *slot->pool;
    const int flags = MSG_NOSIGNAL | MSG_WAITALL;  // WAITALL: the kernel itself retries a short stream send
    std::byte* from = slot->data + offset;
    if (!zero_copy) {
      io_uring_prep_send(sqe, fd, from, len, flags);
      ++p.stats.plain_sends;
    } else if (p.registered) {
      io_uring_prep_send_zc_fixed(sqe, fd, from, len, flags, p.report_usage ? IORING_SEND_ZC_REPORT_USAGE : 0,
                                  slot->index);
      ++p.stats.zero_copy_sends;
    } else {
      io_uring_prep_send_zc(sqe, fd, from, len, flags, p.report_usage ? IORING_SEND_ZC_REPORT_USAGE : 0);
      ++p.stats.zero_copy_sends;
    }
    io::Ring::set_completion(sqe, slot);
    slot->on_complete = &complete;
    ++slot->results;
    slot->sender = this;
    h = handle;
    fn = [](CancelHook* hook) noexcept {
      auto* self = static_cast<SlotSend*>(hook);
      self->shard->ring().cancel(self->slot);  // the send's own CQE (-ECANCELED) resumes the task
    };
    arm_cancel(task, this);
    return true;
  }
  int await_resume() {
    disarm_cancel(task, this);
    throw_if_cancelled(task);
    return res;
  }

  static void complete(io::Completion* c, int res, std::uint32_t flags) noexcept {
    auto* s = static_cast<SendSlot*>(c);
    if ((flags & IORING_CQE_F_NOTIF) != 0) {
      if ((static_cast<std::uint32_t>(res) & IORING_NOTIF_USAGE_ZC_COPIED) != 0)
        ++s->pool->stats.copied_sends;
      --s->notices;
    } else {
      --s->results;
      if ((flags & IORING_CQE_F_MORE) != 0) ++s->notices;
      if (SlotSend* w = std::exchange(s->sender, nullptr)) {
        w->res = res;
        disarm_cancel(w->task, w);
        w->shard->schedule(w->h, w->task);
      }
    }
    s->pool->settle(s);
  }
};

}  // namespace detail

// ---- SendBuffer ----

SendBuffer& SendBuffer::operator=(SendBuffer&& o) noexcept {
  if (this != &o) {
    release();
    slot_ = std::exchange(o.slot_, nullptr);
  }
  return *this;
}

std::span<std::byte> SendBuffer::bytes() const noexcept {
  if (slot_ == nullptr) return {};
  return {slot_->data, slot_->pool->buffer_size};
}

void SendBuffer::release() noexcept {
  detail::SendSlot* s = std::exchange(slot_, nullptr);
  if (s == nullptr) return;
  s->held = false;
  s->pool->settle(s);
}

// ---- SendBufferPool ----

SendBufferPool::SendBufferPool(const SendBufferOptions& options) {
  if (options.count == 0 || options.count > 1024)
    throw TransportError(TransportErrc::invalid_argument, "SendBufferPool: count " +
                                                              std::to_string(options.count) +
                                                              " is out of range; give 1 to 1024 buffers");
  const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  if (options.buffer_size == 0 || options.buffer_size > (1u << 30))
    throw TransportError(TransportErrc::invalid_argument,
                         "SendBufferPool: buffer_size " + std::to_string(options.buffer_size) +
                             " is out of range; give 1 byte to 1 GiB (rounded up to the page "
                             "size)");
  auto state = std::make_unique<detail::SendPoolState>();
  state->shard = &this_shard();
  state->buffer_size = (options.buffer_size + page - 1) / page * page;
  state->count = options.count;
  state->map_bytes = state->buffer_size * options.count;
  // Touched here, on the shard's own (pinned) thread: the pages come from its NUMA node.
  void* m = ::mmap(nullptr, state->map_bytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (m == MAP_FAILED)
    throw detail::error_for(errno, "SendBufferPool: mapping " + std::to_string(state->map_bytes) + " bytes");
  state->base = static_cast<std::byte*>(m);
  state->slots = std::make_unique<detail::SendSlot[]>(options.count);
  state->free_list = std::make_unique<unsigned[]>(options.count);
  auto iov = std::make_unique<iovec[]>(options.count);
  for (unsigned i = 0; i < options.count; ++i) {
    detail::SendSlot& s = state->slots[i];
    s.pool = state.get();
    s.index = i;
    s.data = state->base + std::size_t{i} * state->buffer_size;
    iov[i] = iovec{s.data, state->buffer_size};
    state->free_list[i] = options.count - 1 - i;  // buffer 0 first
  }
  state->free_count = options.count;
  state->zero_copy = options.zero_copy && io::Ring::supports(io::Op::send_zc);
  // One buffer table per ring: EBUSY when another pool holds it. Unregistered buffers still send.
  if (state->zero_copy)
    state->registered =
        io_uring_register_buffers(state->shard->ring().native(), iov.get(), options.count) == 0;
  state_ = state.release();
}

SendBufferPool::~SendBufferPool() {
  if (state_ == nullptr) return;
  if (state_->idle()) {
    delete state_;
  } else {
    state_->orphaned = true;  // the last buffer to come back frees it
  }
}

std::optional<SendBuffer> SendBufferPool::try_acquire() noexcept {
  if (state_->free_count == 0) return std::nullopt;
  detail::SendSlot* s = &state_->slots[state_->free_list[--state_->free_count]];
  s->held = true;
  return SendBuffer(s);
}

bool SendBufferPool::AcquireAwaiter::await_ready() {
  moirai::detail::throw_if_cancelled(this_shard().current_task());
  if (state_->free_count == 0) return false;
  waiter_.got = &state_->slots[state_->free_list[--state_->free_count]];
  waiter_.got->held = true;
  return true;
}

void SendBufferPool::AcquireAwaiter::await_suspend(std::coroutine_handle<> h) noexcept {
  state_->waiters.park(&waiter_, h);
}

SendBuffer SendBufferPool::AcquireAwaiter::await_resume() {
  SendBuffer b(std::exchange(waiter_.got, nullptr));
  moirai::detail::throw_if_cancelled(
      this_shard().current_task());  // a buffer handed over meanwhile goes back here
  return b;
}

bool SendBufferPool::registered() const noexcept {
  return state_->registered;
}
bool SendBufferPool::zero_copy() const noexcept {
  return state_->zero_copy;
}
std::size_t SendBufferPool::buffer_size() const noexcept {
  return state_->buffer_size;
}
unsigned SendBufferPool::count() const noexcept {
  return state_->count;
}
unsigned SendBufferPool::available() const noexcept {
  return state_->free_count;
}
const SendBufferStats& SendBufferPool::stats() const noexcept {
  return state_->stats;
}

Task<void> SendBufferPool::drained() {
  // Each buffer is taken in turn and kept, linked through its slot (nothing allocated): once the last is
  // taken, none is held elsewhere or in flight. They all go back at the end, or when the wait is cancelled.
  detail::SendSlot* taken = nullptr;
  auto give_all_back = [&taken]() noexcept {
    while (taken != nullptr) {
      SendBuffer(std::exchange(taken, taken->drain_next)).release();
    }
  };
  unsigned n = 0;
  try {
    while (n < state_->count) {
      SendBuffer b = co_await acquire();
      detail::SendSlot* s = std::exchange(b.slot_, nullptr);
      s->drain_next = taken;
      taken = s;
      ++n;
    }
  } catch (...) {
    give_all_back();
    throw;
  }
  give_all_back();
}

// ---- sending ----

namespace detail {

SendSlot* SendAccess::slot_for(const SendBuffer& buffer, std::size_t bytes, const char* who) {
  if (buffer.slot_ == nullptr)
    throw TransportError(
        TransportErrc::invalid_argument,
        std::string(who) + ": the send buffer is empty (moved from?); take one from a SendBufferPool");
  if (bytes > buffer.slot_->pool->buffer_size)
    throw TransportError(TransportErrc::invalid_argument,
                         std::string(who) + ": " + std::to_string(bytes) + " bytes from a buffer of " +
                             std::to_string(buffer.slot_->pool->buffer_size) +
                             "; send at most the buffer's size");
  return buffer.slot_;
}

// Bytes [at, at + len) of the slot's buffer in one send: zero-copy unless the pool or `refused` says not, and
// again without what the kernel refused (zero copy on this socket, or usage reports). The kernel's result.
Task<int> send_slice(SendSlot* slot, int fd, std::size_t at, std::size_t len, bool& refused) {
  for (;;) {
    const bool zc = slot->pool->zero_copy && !refused;
    SlotSend op(slot, fd, at, len, zc);
    const int res = co_await op;
    if (res == -EOPNOTSUPP && zc) {  // a socket without zero copy (AF_UNIX): plain sends from now on
      refused = true;
      continue;
    }
    if (res == -EINVAL && zc && slot->pool->report_usage) {  // a kernel before 6.2: no usage reports
      slot->pool->report_usage = false;
      continue;
    }
    co_return res;
  }
}

}  // namespace detail

Task<void> StreamSocket::send(SendBuffer buffer, std::size_t bytes) {
  detail::SendSlot* slot = detail::SendAccess::slot_for(buffer, bytes, "StreamSocket::send");
  const Semaphore::Units turn = co_await send_turn_.hold();
  std::size_t sent = 0;
  while (sent < bytes) {
    const int res = co_await detail::send_slice(slot, fd_, sent, bytes - sent, zero_copy_refused_);
    if (res < 0) throw detail::error_for(-res, "send");
    if (res == 0) throw TransportError(TransportErrc::closed, "send: the socket took no bytes");
    sent += static_cast<std::size_t>(res);
  }
}

Task<std::size_t> DatagramSocket::send(SendBuffer buffer, std::size_t bytes) {
  detail::SendSlot* slot = detail::SendAccess::slot_for(buffer, bytes, "DatagramSocket::send");
  bool refused = false;
  const int res = co_await detail::send_slice(slot, fd_, 0, bytes, refused);
  if (res < 0) detail::fail(-res, "send", nullptr);
  co_return static_cast<std::size_t>(res);
}

}  // namespace moirai::transport
