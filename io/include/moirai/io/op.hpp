// The io_uring operations Moirai submits, by the kernel's own numbers: the one place they are named. Its own
// header, without liburing's, so that a header can name an operation without pulling in io_uring.
#pragma once

#include <array>
#include <cstdint>

namespace moirai::io {

// Each value is the kernel's opcode (enum io_uring_op in <linux/io_uring.h>), an ABI that never changes:
// io/src/op.cpp checks every value against liburing's name where liburing has one.
enum class Op : std::uint8_t {
  nop = 0,
  poll_add = 6,
  sendmsg = 9,
  recvmsg = 10,
  accept = 13,
  async_cancel = 14,
  link_timeout = 15,
  connect = 16,
  close = 19,
  read = 22,
  write = 23,
  send = 26,
  recv = 27,
  shutdown = 34,
  msg_ring = 40,
  send_zc = 47,
  // IORING_OP_FUTEX_WAIT (Linux 6.7). Spelled out because the uapi headers of older distributions (and the
  // liburing they ship) lack the name; prep_futex_wait (ring.hpp) fills its SQE by hand for the same reason.
  futex_wait = 51,
};

// Every Op above, in order.
inline constexpr std::array<Op, 17> kAllOps = {
    Op::nop,          Op::poll_add, Op::sendmsg,  Op::recvmsg, Op::accept,     Op::async_cancel,
    Op::link_timeout, Op::connect,  Op::close,    Op::read,    Op::write,      Op::send,
    Op::recv,         Op::shutdown, Op::msg_ring, Op::send_zc, Op::futex_wait,
};

// The kernel's name of the operation: "IORING_OP_RECV".
const char* to_string(Op op) noexcept;

}  // namespace moirai::io
