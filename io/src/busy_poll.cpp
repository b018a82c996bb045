// Busy polling: io_uring's NAPI busy poll (IORING_REGISTER_NAPI), a ring whose waits spin inside the kernel
// before they sleep, and epoll's (EPIOCSPARAMS), the same for a readiness loop's set.
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <string>
#include <system_error>

#include "moirai/io/readiness_loop.hpp"
#include "moirai/io/ring.hpp"

namespace moirai::io {
namespace {

// IORING_REGISTER_NAPI and its argument as the kernel defines them (Linux 6.13 for the opcode fields), here
// because older kernel headers have neither.
constexpr unsigned kRegisterNapi = 27;
constexpr unsigned kUnregisterNapi = 28;
constexpr std::uint8_t kNapiRegisterOp = 0;    // IO_URING_NAPI_REGISTER_OP
constexpr std::uint8_t kNapiStaticAddId = 1;   // IO_URING_NAPI_STATIC_ADD_ID
constexpr std::uint32_t kNapiTrackStatic = 1;  // IO_URING_NAPI_TRACKING_STATIC
struct NapiArg {
  std::uint32_t busy_poll_to = 0;  // microseconds
  std::uint8_t prefer_busy_poll = 0;
  std::uint8_t opcode = 0;
  std::uint8_t pad[2] = {0, 0};
  std::uint32_t op_param = 0;
  std::uint32_t resv = 0;
};
static_assert(sizeof(NapiArg) == 16);

int register_napi(int ring_fd, unsigned op, NapiArg* arg) noexcept {
  const long rc = ::syscall(__NR_io_uring_register, ring_fd, op, arg, arg != nullptr ? 1 : 0);
  return rc < 0 ? -errno : 0;
}

// EPIOCSPARAMS and its argument as the kernel defines them (Linux 6.9, <linux/eventpoll.h>), here because
// older kernel headers have neither.
struct EpollParams {
  std::uint32_t busy_poll_usecs = 0;
  std::uint16_t busy_poll_budget = 0;
  std::uint8_t prefer_busy_poll = 0;
  std::uint8_t pad = 0;
};
static_assert(sizeof(EpollParams) == 8);
constexpr unsigned long kEpiocSetParams = _IOW(0x8A, 0x01, EpollParams);

// The busy-poll window both kinds accept, refused with the caller's own error type (RingError,
// ReadinessError).
template <typename Refusal>
void check_window(const char* what, std::chrono::microseconds window) {
  if (window.count() <= 0 || window.count() > 1'000'000) {
    throw Refusal(EINVAL, std::string(what) + ": a window of " + std::to_string(window.count()) +
                              " us is out of range; give 1 us to 1 s (the kernel spins that long without "
                              "yielding its CPU)");
  }
}

}  // namespace

// Why the kernel's own wait, spinning, beats a user-space spin on the CQ: when a socket's data arrives, a
// thread spinning on the CQ sees only the TASKRUN flag, and must then pay a whole io_uring_enter to run the
// receive and reap its completion. A wait that spins inside io_uring_enter runs the completion and returns it
// in that same entry. A user-space spinner that reads its sockets itself (RecvOptions::poll_when_idle)
// needs no completion at all, and is quicker still.
//
// The kernel spins only while the ring has NAPI ids to poll. In static tracking the ids are the caller's, and
// the ring is given two that no device has: NAPI instances are numbered upwards from NR_CPUS + 1, so the top
// of the 32-bit range is never reached. The kernel's loop then polls no device and spins on its own exit
// conditions alone: work for the ring (a completion to run), enough CQEs, the timeout, a signal. Two, not
// one: with a single id the kernel hands the loop to the network stack's, which returns at once for an id it
// does not know, and the wait would go straight to sleep. Over a NIC its real ids could be added as well.
std::error_code Ring::enable_busy_poll(std::chrono::microseconds window) {
  if (busy_poll_) return {};
  check_window<RingError>("io_uring busy poll", window);
  NapiArg reg;
  reg.busy_poll_to = static_cast<std::uint32_t>(window.count());
  reg.opcode = kNapiRegisterOp;
  reg.op_param = kNapiTrackStatic;
  int rc = register_napi(ring_.ring_fd, kRegisterNapi, &reg);
  if (rc != 0) return {-rc, io_category()};
  for (std::uint32_t id : {0xFFFFFFFEu, 0xFFFFFFFFu}) {
    NapiArg add;
    add.opcode = kNapiStaticAddId;
    add.op_param = id;
    rc = register_napi(ring_.ring_fd, kRegisterNapi, &add);
    if (rc != 0 && rc != -EEXIST) {
      register_napi(ring_.ring_fd, kUnregisterNapi, nullptr);
      return {-rc, io_category()};
    }
  }
  busy_poll_ = true;
  return {};
}

std::string describe_busy_poll_error(std::error_code refused) {
  if (refused == std::errc::invalid_argument) {
    return "the kernel refused io_uring NAPI busy polling with static tracking (it needs Linux 6.13 or "
           "newer)";
  }
  if (refused == std::errc::operation_not_supported) {
    return "this kernel is built without CONFIG_NET_RX_BUSY_POLL, so io_uring cannot busy-poll; use a "
           "kernel built with it";
  }
  return "io_uring NAPI busy-poll registration failed: " + refused.message() +
         "; check dmesg and the kernel's io_uring configuration";
}

// epoll's busy poll spins in epoll_wait on the NAPI id of the sockets the set last saw data from, so it
// spins only for sockets a NAPI device fed: loopback and Unix sockets have none, and a wait on them sleeps at
// once. prefer_busy_poll stays off: it defers the device's interrupts, which only pays with
// napi_defer_hard_irqs set.
std::error_code ReadinessLoop::enable_busy_poll(std::chrono::microseconds window, std::uint16_t budget) {
  check_window<ReadinessError>("epoll busy poll", window);
  if (budget == 0) {
    throw ReadinessError(EINVAL,
                         "epoll busy poll: a budget of 0 packets; give 1 to 64 (more needs "
                         "CAP_NET_ADMIN)");
  }
  EpollParams params;
  params.busy_poll_usecs = static_cast<std::uint32_t>(window.count());
  params.busy_poll_budget = budget;
  if (::ioctl(epoll_fd_, kEpiocSetParams, &params) != 0) return {errno, io_category()};
  busy_poll_ = true;
  return {};
}

std::string describe_epoll_busy_poll_error(std::error_code refused) {
  if (refused == std::errc::inappropriate_io_control_operation) {
    return "the kernel has no epoll busy-poll parameters (EPIOCSPARAMS needs Linux 6.9 or newer); on older "
           "kernels the net.core.busy_poll sysctl, or SO_BUSY_POLL on each socket, makes epoll busy-poll";
  }
  if (refused == std::errc::operation_not_supported) {
    return "this kernel is built without CONFIG_NET_RX_BUSY_POLL, so epoll cannot busy-poll; use a kernel "
           "built with it";
  }
  if (refused == std::errc::operation_not_permitted) {
    return "a busy-poll budget over 64 packets needs CAP_NET_ADMIN; give 64 or fewer, or grant the "
           "capability";
  }
  return "epoll busy-poll parameters refused: " + refused.message() + "; check the window and the budget";
}

}  // namespace moirai::io
