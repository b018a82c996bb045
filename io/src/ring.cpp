#include "moirai/io/ring.hpp"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bitset>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>

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

// IORING_REGISTER_NAPI and its argument as the kernel defines them (Linux 6.13 for the opcode fields); Debian
// 12's headers predate both.
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

bool file_contains(const char* path, const char* needle) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.find(needle) != std::string::npos) return true;
  }
  return false;
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

HostFacts HostFacts::current() {
  HostFacts facts;
  {
    std::ifstream in("/proc/sys/kernel/io_uring_disabled");
    int value = 0;
    if (in >> value) facts.io_uring_disabled = value;
  }
  rlimit lim{};
  if (getrlimit(RLIMIT_MEMLOCK, &lim) == 0) {
    facts.memlock_kib = lim.rlim_cur == RLIM_INFINITY ? ~0ull : lim.rlim_cur / 1024;
  }
  {
    std::ifstream status("/proc/self/status");
    std::string line;
    while (std::getline(status, line)) {
      if (line.rfind("Seccomp:", 0) == 0) facts.seccomp_filtered = line.find('2') != std::string::npos;
    }
  }
  facts.in_container = access("/.dockerenv", F_OK) == 0 || access("/run/.containerenv", F_OK) == 0 ||
                       file_contains("/proc/1/cgroup", "docker") ||
                       file_contains("/proc/1/cgroup", "kubepods");
  return facts;
}

std::string describe_setup_error(int err, const HostFacts& facts) {
  std::ostringstream out;
  const char* name = strerrorname_np(err);  // null for an errno glibc does not know
  out << "io_uring cannot be used: io_uring_setup failed with " << (name != nullptr ? name : "errno") << " "
      << err << " (" << std::strerror(err) << "). ";
  switch (err) {
    case ENOSYS:
      out << "This kernel has no io_uring (Linux before 5.1, or built without CONFIG_IO_URING)";
      if (facts.in_container || facts.seccomp_filtered) {
        out << ", or a seccomp filter on this process (a container's profile, say) blocks the io_uring "
               "system calls";
      }
      out << ". Fix: run on Linux 6.1 or newer with CONFIG_IO_URING=y; in a container, allow io_uring_setup, "
             "io_uring_enter and io_uring_register in its seccomp profile.";
      break;
    case EPERM:
    case EACCES:
      if (facts.io_uring_disabled == 2) {
        out << "kernel.io_uring_disabled is 2, which forbids io_uring to every process. Fix: sysctl -w "
               "kernel.io_uring_disabled=0 (or 1, with kernel.io_uring_group set to a group this user is "
               "in).";
      } else if (facts.io_uring_disabled == 1) {
        out << "kernel.io_uring_disabled is 1, which allows io_uring only to members of "
               "kernel.io_uring_group "
               "and to CAP_SYS_ADMIN. Fix: add this user to that group, or sysctl -w "
               "kernel.io_uring_disabled=0.";
      } else {
        out << "A security policy refused it: a seccomp filter"
            << (facts.seccomp_filtered ? " (this process has one)"
                : facts.in_container   ? " (this looks like a container)"
                                       : "")
            << " or an LSM such as SELinux or AppArmor. Fix: allow io_uring_setup, io_uring_enter and "
               "io_uring_register for this process.";
      }
      break;
    case ENOMEM:
      // Seen on 6.18 as well as before 5.12: without CAP_IPC_LOCK the ring's pages count against
      // RLIMIT_MEMLOCK together with memory already locked, so a 64 KiB limit (a container's default) fits
      // one 256-entry ring and fails the second shard's.
      out << "The kernel could not pin memory for the ring. Without CAP_IPC_LOCK a ring's memory counts "
             "against RLIMIT_MEMLOCK (with the memory this process has locked already; each shard has a "
             "ring), which is ";
      if (facts.memlock_kib == ~0ull) {
        out << "unlimited here, so the machine itself is short of memory. Fix: free memory or use fewer ring "
               "entries.";
      } else {
        out << facts.memlock_kib
            << " KiB here. Fix: raise it (ulimit -l unlimited; LimitMEMLOCK=infinity in a "
            << "systemd unit; memlock in /etc/security/limits.conf), or use fewer ring entries.";
      }
      break;
    case EMFILE:
    case ENFILE:
      out << "The process or the system is out of file descriptors. Fix: raise ulimit -n.";
      break;
    case EINVAL:
      out << "The kernel refused every set-up Moirai tries, even without flags, so it is older than Moirai "
             "supports. Fix: run on Linux 6.1 or newer (5.19 at the least).";
      break;
    default:
      out << "Fix: check dmesg and the kernel's io_uring configuration.";
      break;
  }
  return out.str();
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

// Why the kernel's own wait, spinning, beats a user-space spin on the CQ: measured on this project's 2-vCPU
// VMs, 64-byte TCP ping-pong over loopback, a thread spinning on recv(2) had its data about 0.5 us after the
// peer's send returned, a thread spinning on the CQ about 2 us after (it sees the TASKRUN flag, then pays a
// whole io_uring_enter to run the receive). Spinning inside io_uring_enter instead took a bare ring's round
// trip from about 1.3x the recv(2) spin to 1.15-1.23x, and Moirai's shards' from about 1.4x to about 1.25x
// (`moirai bench echo --poll-when-idle false`, moirai.tcp.busy_poll against moirai.tcp). A user-space spinner
// that reads its sockets itself (ReceiveOptions::poll_when_idle) needs no completion at all, and is lower
// still.
//
// The kernel spins only while the ring has NAPI ids to poll. In static tracking the ids are the caller's, and
// the ring is given two that no device has: NAPI instances are numbered upwards from NR_CPUS + 1, so the top
// of the 32-bit range is never reached. The kernel's loop then polls no device and spins on its own exit
// conditions alone: work for the ring (a completion to run), enough CQEs, the timeout, a signal. Two, not
// one: with a single id the kernel hands the loop to the network stack's, which returns at once for an id it
// does not know, and the wait would go straight to sleep. Over a NIC its real ids could be added as well.
std::string Ring::enable_busy_poll(std::chrono::microseconds window) {
  if (busy_poll_) return {};
  if (window.count() <= 0 || window.count() > 1'000'000) {
    return "a busy-poll window of " + std::to_string(window.count()) +
           " us is out of range; give 1 us to 1 s (the kernel spins that long without yielding its CPU)";
  }
  NapiArg reg;
  reg.busy_poll_to = static_cast<std::uint32_t>(window.count());
  reg.opcode = kNapiRegisterOp;
  reg.op_param = kNapiTrackStatic;
  int rc = register_napi(ring_.ring_fd, kRegisterNapi, &reg);
  if (rc == -EINVAL) {
    return "the kernel refused io_uring NAPI busy polling with static tracking (it needs Linux 6.13 or "
           "newer); shards spin in user space instead";
  }
  if (rc == -EOPNOTSUPP) {
    return "this kernel is built without CONFIG_NET_RX_BUSY_POLL, so io_uring cannot busy-poll; shards spin "
           "in user space instead";
  }
  if (rc != 0) {
    return std::string("io_uring NAPI registration failed: ") + std::strerror(-rc) +
           "; shards spin in user space instead";
  }
  for (std::uint32_t id : {0xFFFFFFFEu, 0xFFFFFFFFu}) {
    NapiArg add;
    add.opcode = kNapiStaticAddId;
    add.op_param = id;
    rc = register_napi(ring_.ring_fd, kRegisterNapi, &add);
    if (rc != 0 && rc != -EEXIST) {
      register_napi(ring_.ring_fd, kUnregisterNapi, nullptr);
      return std::string("io_uring refused a NAPI id to busy-poll: ") + std::strerror(-rc) +
             "; shards spin in user space instead";
    }
  }
  busy_poll_ = true;
  return {};
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
  if (!supports(IORING_OP_MSG_RING)) return false;
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
