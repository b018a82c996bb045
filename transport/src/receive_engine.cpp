#include "moirai/transport/detail/receive_engine.hpp"

#include <bit>
#include <cstring>
#include <exception>
#include <string>

#include "moirai/core/clock.hpp"
#include "moirai/transport/error.hpp"

namespace moirai::transport::detail {
namespace {

// Room for the sender's address in each datagram buffer: a sockaddr_in6 (28 bytes) rounded up to 8, so that
// the control message after it is aligned for its cmsghdr.
constexpr socklen_t kNameRoom = 32;
// Room for one control message: SO_RXQ_OVFL's drop counter (a uint32).
constexpr socklen_t kControlRoom = CMSG_SPACE(sizeof(std::uint32_t));

}  // namespace

ReceiveEngine* ReceiveEngine::create(int fd, ReceiveKind kind, const RecvOptions& options) {
  return new ReceiveEngine(fd, kind, options);
}

ReceiveEngine::ReceiveEngine(int fd, ReceiveKind kind, const RecvOptions& options)
    : fd_(fd), kind_(kind), shard_(&this_shard()), ring_(&shard_->ring()), options_(options) {
  on_complete = &ReceiveEngine::on_cqe;
  if (kind_ == ReceiveKind::datagram) {
    layout_.msg_namelen = kNameRoom;
    layout_.msg_controllen = kControlRoom;
  }
  const std::uint32_t overhead =
      kind_ == ReceiveKind::datagram ? sizeof(io_uring_recvmsg_out) + kNameRoom + kControlRoom : 0;
  if (options.shared != nullptr) {
    buffers_ = options.shared;
  } else {
    io::BufferRingOptions bo;
    bo.count = options.buffers;
    bo.buffer_size = options.buffer_size;
    bo.register_with_kernel = !options.force_fallback;
    try {
      owned_ = std::make_unique<io::BufferRing>(*ring_, bo);
    } catch (const io::RingError& e) {
      // A count or size io refuses is the caller's bad option; anything else, what this ring cannot do.
      const TransportErrc code = e.code() == std::errc::invalid_argument ? TransportErrc::invalid_argument
                                                                         : TransportErrc::not_supported;
      std::throw_with_nested(TransportError(code, std::string("receive buffers: ") + e.what()));
    }
    buffers_ = owned_.get();
  }
  if (buffers_->buffer_size() <= overhead) {
    std::string text = "receive buffers of ";
    text.append(std::to_string(buffers_->buffer_size()))
        .append(" bytes leave no room for a datagram after its ")
        .append(std::to_string(overhead))
        .append("-byte header; use buffers of at least 128 bytes");
    throw TransportError(TransportErrc::invalid_argument, text);
  }
  const io::Op op = kind_ == ReceiveKind::datagram ? io::Op::recvmsg : io::Op::recv;
  multishot_ = buffers_->supported() && !options.force_fallback && io::Ring::supports(op);
  if (!multishot_ && buffers_->supported()) fall_back();  // a registered ring without the opcode
  // One entry per buffer, plus room for the error or end that closes a run: the queue cannot overflow.
  // count is at most 32768 (io refuses more), so the power of two cannot overflow.
  const std::uint32_t capacity = std::bit_ceil(buffers_->count() + 2);
  queue_ = std::make_unique<Received[]>(capacity);
  mask_ = capacity - 1;
  // Only where the ring defers its task work to this thread's enters: otherwise the kernel may run the
  // ring's receive at any return to user space (an interrupt's, say) between the look at the CQ and the
  // engine's own recv, and post earlier bytes after them.
  if (options.poll_when_idle && ring_->mode() == io::SetupMode::kDeferTaskrun)
    direct_ = std::make_unique<std::byte[]>(buffers_->buffer_size());
  arm();
}

ReceiveEngine::~ReceiveEngine() = default;

void ReceiveEngine::destroy(ReceiveEngine* e) noexcept {
  if (e == nullptr) return;
  e->closing_ = true;
  if (e->waiter_ != nullptr) e->waiter_ = nullptr;  // a waiter's frame is going too
  if (!e->buffers_->ring_alive()) {
    // Destroyed after its shard's ring (a socket kept past its runtime): the ring's end cancelled the
    // request, and nothing here may touch the ring or the shard; the buffer memory stays mapped (see
    // BufferRing).
    delete e;
    return;
  }
  e->shard_->remove_poller(e);
  if (e->armed_) {
    e->ring_->cancel(e);
    // The cancel is usually done at submit and the last CQE follows at once; wait for it in the ring (a
    // bounded wait, at set-up cost, never on a receive path), so the engine can go now.
    for (int i = 0; i < 1000 && e->armed_; ++i)
      e->ring_->wait(1'000'000);
  }
  Received r;
  while (e->pop(r))
    e->release(r.bid);
  e->release(std::exchange(e->held_, -1));
  if (e->armed_) {
    e->orphaned_ = true;  // freed by its last CQE
    return;
  }
  delete e;
}

void ReceiveEngine::fall_back() noexcept {
  multishot_ = false;
  if (!buffers_->supported()) return;
  // One-shot receives take buffers from a free list, which a registered ring does not have: use a ring of
  // our own in fallback mode. Only ever before the first datagram, so no buffer of the old ring is out.
  io::BufferRingOptions bo;
  bo.count = buffers_->count();
  bo.buffer_size = buffers_->buffer_size();
  bo.register_with_kernel = false;
  try {
    auto fresh = std::make_unique<io::BufferRing>(*ring_, bo);
    owned_ = std::move(fresh);
    buffers_ = owned_.get();
  } catch (...) {
    ended_ = true;  // no memory for buffers: nothing can be received
    push({-ENOMEM, -1});
  }
}

void ReceiveEngine::arm() noexcept {
  if (armed_ || ended_ || closing_) return;
  int bid = -1;
  if (!multishot_) {
    bid = buffers_->acquire();
    if (bid < 0) {
      starved_ = true;  // every buffer is with the application; re-armed when one comes back
      return;
    }
  }
  io_uring_sqe* sqe = ring_->get_sqe();
  if (sqe == nullptr) {  // the ring refuses more: try again at the next receive or recycle
    if (bid >= 0) buffers_->recycle(static_cast<std::uint16_t>(bid));
    starved_ = true;
    return;
  }
  if (multishot_) {
    if (kind_ == ReceiveKind::datagram) {
      io_uring_prep_recvmsg_multishot(sqe, fd_, &layout_, 0);
    } else {
      io_uring_prep_recv_multishot(sqe, fd_, nullptr, 0, 0);
    }
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = buffers_->group();
  } else {
    std::byte* buf = buffers_->buffer(static_cast<std::uint16_t>(bid));
    if (kind_ == ReceiveKind::datagram) {
      prepare_datagram(buf, buffers_->buffer_size(), msg_, iov_);
      io_uring_prep_recvmsg(sqe, fd_, &msg_, 0);
    } else {
      io_uring_prep_recv(sqe, fd_, buf, buffers_->buffer_size(), 0);
    }
    inflight_bid_ = bid;
  }
  io::Ring::set_completion(sqe, this);
  armed_ = true;
  starved_ = false;
}

void ReceiveEngine::prepare_datagram(std::byte* buf, std::size_t size, msghdr& msg,
                                     iovec& iov) const noexcept {
  // The layout multishot recvmsg makes: header, name, control, payload.
  std::byte* name = buf + sizeof(io_uring_recvmsg_out);
  msg = msghdr{};
  msg.msg_name = name;
  msg.msg_namelen = layout_.msg_namelen;
  msg.msg_control = name + layout_.msg_namelen;
  msg.msg_controllen = layout_.msg_controllen;
  const std::size_t front = sizeof(io_uring_recvmsg_out) + layout_.msg_namelen + layout_.msg_controllen;
  iov.iov_base = buf + front;
  iov.iov_len = size - front;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
}

int ReceiveEngine::complete_datagram(std::byte* buf, const msghdr& msg, int res) const noexcept {
  io_uring_recvmsg_out out{};
  out.namelen = msg.msg_namelen;
  out.controllen = static_cast<std::uint32_t>(msg.msg_controllen);
  out.payloadlen = static_cast<std::uint32_t>(res);
  out.flags = static_cast<std::uint32_t>(msg.msg_flags);
  std::memcpy(buf, &out, sizeof out);
  return res + static_cast<int>(sizeof out + layout_.msg_namelen + layout_.msg_controllen);
}

void ReceiveEngine::on_cqe(io::Completion* c, int res, std::uint32_t flags) noexcept {
  auto* e = static_cast<ReceiveEngine*>(c);
  if (!e->multishot_ || (flags & IORING_CQE_F_MORE) == 0) e->armed_ = false;
  std::int32_t bid = -1;
  if (flags & IORING_CQE_F_BUFFER) {
    bid = static_cast<std::int32_t>(flags >> IORING_CQE_BUFFER_SHIFT);
    e->buffers_->note_taken();
  } else if (!e->multishot_ && e->inflight_bid_ >= 0) {
    bid = std::exchange(e->inflight_bid_, -1);
  }
  if (e->closing_) {
    e->release(bid);
    if (e->orphaned_ && !e->armed_) delete e;
    return;
  }
  if (res == -ENOBUFS) {
    // Every buffer is with the application: the backpressure. Re-armed when one comes back.
    e->release(bid);
    ++e->enobufs_;
    e->starved_ = true;
    if (e->buffers_->held() < e->buffers_->count()) e->arm();  // a shared ring: another socket recycled
    return;
  }
  if (res == -EINVAL && e->multishot_ && !e->got_data_) {
    // This kernel has buffer rings but not multishot receive (5.19): one-shot receives from now on.
    e->release(bid);
    e->fall_back();
    e->arm();
    e->wake();
    return;
  }
  if (res >= 0 && bid >= 0 && e->kind_ == ReceiveKind::datagram && !e->multishot_)
    res = e->complete_datagram(e->bytes(bid), e->msg_, res);
  e->deliver(res, bid);
}

void ReceiveEngine::deliver(int res, std::int32_t bid) noexcept {
  if (res < 0 || (res == 0 && kind_ == ReceiveKind::stream)) {
    release(bid);
    // A stream's end or error is final, and told once: idle polling may have seen it before the ring's
    // request did. A datagram socket's error (an ICMP port unreachable seen as ECONNREFUSED, say) goes to
    // the reader, and the request is re-armed at the next receive, not here, so a persistent error cannot
    // spin the shard.
    if (kind_ == ReceiveKind::stream) {
      if (ended_) return;
      ended_ = true;
    }
    push({res, -1});
    wake();
    return;
  }
  if (bid < 0) {  // data without a buffer cannot happen; treat as a malformed completion
    push({-EIO, -1});
    wake();
    return;
  }
  got_data_ = true;
  push({res, bid});
  if (!armed_) arm();  // one-shot: the next receive, into the next free buffer
  wake();
}

void ReceiveEngine::release(std::int32_t bid) noexcept {
  if (bid == kDirectBid) {
    direct_out_ = false;
  } else if (bid >= 0) {
    buffers_->recycle(static_cast<std::uint16_t>(bid));
  }
}

bool ReceiveEngine::poll() noexcept {
  if (waiter_ == nullptr || direct_out_) {
    shard_->remove_poller(this);  // added again at the next wait
    return false;
  }
  // A completion not yet reaped (or one the kernel holds back from a full CQ) may carry earlier bytes.
  io_uring* r = ring_->native();
  if (io_uring_cq_ready(r) != 0 || (IO_URING_READ_ONCE(*r->sq.kflags) & IORING_SQ_CQ_OVERFLOW) != 0)
    return false;
  std::byte* buf = direct_.get();
  const std::size_t size = buffers_->buffer_size();
  ssize_t n;
  msghdr msg;
  iovec iov;
  if (kind_ == ReceiveKind::datagram) {
    prepare_datagram(buf, size, msg, iov);
    n = ::recvmsg(fd_, &msg, MSG_DONTWAIT);
  } else {
    n = ::recv(fd_, buf, size, MSG_DONTWAIT);
  }
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return false;
  shard_->remove_poller(this);
  int res = n < 0 ? -errno : static_cast<int>(n);
  std::int32_t bid = -1;
  if (res > 0 || (res == 0 && kind_ == ReceiveKind::datagram)) {
    bid = kDirectBid;
    direct_out_ = true;
    if (kind_ == ReceiveKind::datagram) res = complete_datagram(buf, msg, res);
  }
  deliver(res, bid);
  return true;
}

void ReceiveEngine::push(Received r) noexcept {
  if (tail_ - head_ > mask_) {  // cannot happen (one entry per buffer); never lose a buffer if it does
    release(r.bid);
    return;
  }
  queue_[tail_++ & mask_] = r;
}

bool ReceiveEngine::pop(Received& r) noexcept {
  if (head_ == tail_) return false;
  r = queue_[head_++ & mask_];
  return true;
}

void ReceiveEngine::wake() noexcept {
  Awaiter* w = waiter_;
  if (w == nullptr || !pop(w->got_)) return;
  waiter_ = nullptr;
  if (w->timer_.armed()) w->shard_->timers().cancel(&w->timer_);
  moirai::detail::disarm_cancel(w->task_, w);
  w->shard_->schedule(w->h_, w->task_);
}

void ReceiveEngine::recycle(std::int32_t bid) noexcept {
  if (bid < 0) return;
  release(bid);
  if (starved_ && !armed_) arm();
}

bool ReceiveEngine::Awaiter::await_ready() {
  shard_ = &this_shard();
  task_ = shard_->current_task();
  moirai::detail::throw_if_cancelled(task_);
  ReceiveEngine* e = engine_;
  if (e->waiter_ != nullptr) {
    // The one waiting keeps its place: what arrives is its, and the bytes one receive returns stay valid
    // until the next, which another task's receive would end under it.
    throw TransportError(TransportErrc::not_supported,
                         "receive: another task already waits to receive on this socket; receive from one "
                         "task at a time (hand what arrives to other tasks through a channel)");
  }
  if (e->held_ >= 0) e->recycle(std::exchange(e->held_, -1));
  if (e->pop(got_)) return true;
  if (e->ended_) {
    got_ = {0, -1};  // a stream that ended stays ended
    return true;
  }
  if (!e->armed_) e->arm();
  return false;
}

void ReceiveEngine::Awaiter::await_suspend(std::coroutine_handle<> h) {
  h_ = h;
  engine_->waiter_ = this;
  if (engine_->direct_ != nullptr && !engine_->direct_out_) shard_->add_poller(engine_, PollWhen::idle_spin);
  if (deadline_ != 0) {
    timer_.owner = this;
    timer_.deadline = deadline_;
    timer_.fire = [](moirai::detail::TimerEntry* t) noexcept {
      Awaiter* a = moirai::detail::OwnedTimer<Awaiter>::of(t);
      a->engine_->waiter_ = nullptr;
      a->got_ = {kTimedOut, -1};
      moirai::detail::disarm_cancel(a->task_, a);
      a->shard_->schedule(a->h_, a->task_);
    };
    shard_->timers().arm(&timer_);
  }
  fn = [](moirai::detail::CancelHook* hook) noexcept {
    auto* a = static_cast<Awaiter*>(hook);
    a->engine_->waiter_ = nullptr;
    a->shard_->timers().cancel(&a->timer_);
    a->shard_->schedule(a->h_, a->task_);
  };
  moirai::detail::arm_cancel(task_, this);
}

Received ReceiveEngine::Awaiter::await_resume() {
  moirai::detail::disarm_cancel(task_, this);
  if (moirai::detail::cancel_requested(task_)) {
    engine_->recycle(std::exchange(got_.bid, -1));  // a datagram that came with the cancellation: not lost
    moirai::detail::throw_if_cancelled(task_);
  }
  return got_;
}

}  // namespace moirai::transport::detail
