// The names of the operations Moirai submits, each checked against liburing's number, and the SQE of the one
// liburing 2.3 cannot prepare.
#include "moirai/io/op.hpp"

#include <linux/futex.h>

#include <cstring>

#include "moirai/io/ring.hpp"

namespace moirai::io {
namespace {

constexpr bool is(Op op, io_uring_op kernel) {
  return static_cast<int>(op) == static_cast<int>(kernel);
}
static_assert(is(Op::nop, IORING_OP_NOP) && is(Op::poll_add, IORING_OP_POLL_ADD) &&
              is(Op::sendmsg, IORING_OP_SENDMSG) && is(Op::recvmsg, IORING_OP_RECVMSG) &&
              is(Op::accept, IORING_OP_ACCEPT) && is(Op::async_cancel, IORING_OP_ASYNC_CANCEL) &&
              is(Op::link_timeout, IORING_OP_LINK_TIMEOUT) && is(Op::connect, IORING_OP_CONNECT) &&
              is(Op::close, IORING_OP_CLOSE) && is(Op::read, IORING_OP_READ) &&
              is(Op::write, IORING_OP_WRITE) && is(Op::send, IORING_OP_SEND) &&
              is(Op::recv, IORING_OP_RECV) && is(Op::shutdown, IORING_OP_SHUTDOWN) &&
              is(Op::msg_ring, IORING_OP_MSG_RING) && is(Op::send_zc, IORING_OP_SEND_ZC));
// futex_wait has no name to check against in liburing 2.3: it is the kernel's 51, three after SENDMSG_ZC.
static_assert(static_cast<int>(Op::futex_wait) == static_cast<int>(IORING_OP_SENDMSG_ZC) + 3);

// The futex2 flags (linux/futex.h has them from Linux 6.7 only).
constexpr std::uint32_t kFutex2SizeU32 = 0x02;
constexpr std::uint32_t kFutex2Private = FUTEX_PRIVATE_FLAG;

}  // namespace

const char* to_string(Op op) noexcept {
  switch (op) {
    case Op::nop:
      return "IORING_OP_NOP";
    case Op::poll_add:
      return "IORING_OP_POLL_ADD";
    case Op::sendmsg:
      return "IORING_OP_SENDMSG";
    case Op::recvmsg:
      return "IORING_OP_RECVMSG";
    case Op::accept:
      return "IORING_OP_ACCEPT";
    case Op::async_cancel:
      return "IORING_OP_ASYNC_CANCEL";
    case Op::link_timeout:
      return "IORING_OP_LINK_TIMEOUT";
    case Op::connect:
      return "IORING_OP_CONNECT";
    case Op::close:
      return "IORING_OP_CLOSE";
    case Op::read:
      return "IORING_OP_READ";
    case Op::write:
      return "IORING_OP_WRITE";
    case Op::send:
      return "IORING_OP_SEND";
    case Op::recv:
      return "IORING_OP_RECV";
    case Op::shutdown:
      return "IORING_OP_SHUTDOWN";
    case Op::msg_ring:
      return "IORING_OP_MSG_RING";
    case Op::send_zc:
      return "IORING_OP_SEND_ZC";
    case Op::futex_wait:
      return "IORING_OP_FUTEX_WAIT";
  }
  return "?";
}

// As the kernel reads a futex wait (io_uring/futex.c): fd = the futex2 flags, addr = the word, addr2 (off) =
// the expected value, addr3 = the wake mask; len, rw_flags, buf_index and file_index must be zero.
void prep_futex_wait(io_uring_sqe* sqe, const std::atomic<std::uint32_t>& word, std::uint32_t expected,
                     FutexScope scope) noexcept {
  std::memset(sqe, 0, sizeof(*sqe));
  sqe->opcode = static_cast<std::uint8_t>(Op::futex_wait);
  sqe->fd = static_cast<std::int32_t>(kFutex2SizeU32 |
                                      (scope == FutexScope::process_private ? kFutex2Private : 0u));
  sqe->addr = reinterpret_cast<std::uint64_t>(&word);
  sqe->off = expected;
  sqe->addr3 = FUTEX_BITSET_MATCH_ANY;
}

}  // namespace moirai::io
