#include "baselines.hpp"

#include <fcntl.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "moirai/core/cpu_relax.hpp"
#include "moirai/numa/node_memory.hpp"
#include "moirai/numa/topology.hpp"

namespace moirai::cli {

namespace {

// Far above any real machine (the kernel's NR_CPUS tops out at 8192), low enough that CPU_ALLOC stays small.
constexpr int kMaxCpuNumber = 1 << 16;

std::string pin_failure(int cpu, const std::string& reason) {
  return "cannot pin a thread to CPU " + std::to_string(cpu) + ": " + reason;
}

void pin(pthread_t thread, int cpu) {
  if (cpu < 0 || cpu >= kMaxCpuNumber) {
    throw std::runtime_error(pin_failure(cpu, "no such CPU (CPUs are numbered from 0; see `nproc`)"));
  }
  // A dynamically sized set, so that a CPU number beyond CPU_SETSIZE reaches the kernel (and is refused
  // there) instead of being silently dropped, which would ask for an empty set.
  struct CpuSetFree {
    void operator()(cpu_set_t* s) const noexcept { CPU_FREE(s); }
  };
  std::unique_ptr<cpu_set_t, CpuSetFree> set(CPU_ALLOC(cpu + 1));
  if (!set) throw std::bad_alloc();
  const std::size_t size = CPU_ALLOC_SIZE(cpu + 1);
  CPU_ZERO_S(size, set.get());
  CPU_SET_S(static_cast<std::size_t>(cpu), size, set.get());
  const int rc = pthread_setaffinity_np(thread, size, set.get());
  if (rc == 0) return;
  std::string reason = std::generic_category().message(rc);
  if (rc == EINVAL) {
    reason +=
        " (the CPU does not exist, is offline, or is outside this process's allowed CPUs: see "
        "/sys/devices/system/cpu/online and `taskset -p $$`)";
  } else if (rc == EPERM) {
    reason += " (not permitted to change this thread's affinity)";
  }
  throw std::runtime_error(pin_failure(cpu, reason));
}

// A thread that spins must stay SCHED_OTHER: under SCHED_FIFO a spinner that never blocks can starve the
// kernel's own per-CPU work on its CPU. Threads inherit the creator's policy, so set it explicitly; lowering
// a policy needs no privilege.
void make_time_shared(pthread_t thread, int cpu) {
  sched_param param{};
  param.sched_priority = 0;
  const int rc = pthread_setschedparam(thread, SCHED_OTHER, &param);
  if (rc != 0) {
    throw std::runtime_error("cannot make the thread for CPU " + std::to_string(cpu) +
                             " SCHED_OTHER: " + std::generic_category().message(rc));
  }
}

enum class Policy { inherit, time_shared };

// A thread that is pinned (and given its policy) by its creator before its body starts: the body waits behind
// a gate until start(), so neither thread of a pair measures anything while the other may still be unpinned.
// If setting the thread up fails, the gate opens on "abort", the thread ends without running its body and the
// constructor throws; destroying a thread that was never started does the same.
class PinnedThread {
 public:
  template <class Body>
  PinnedThread(int cpu, Policy policy, Body body)
      : thread_([this, body = std::move(body)]() mutable {
          gate_.wait(kClosed, std::memory_order_acquire);
          if (gate_.load(std::memory_order_acquire) == kGo) body();
        }) {
    try {
      pin(thread_.native_handle(), cpu);
      if (policy == Policy::time_shared) make_time_shared(thread_.native_handle(), cpu);
    } catch (...) {
      open(kAbort);
      thread_.join();
      throw;
    }
  }

  PinnedThread(const PinnedThread&) = delete;
  PinnedThread& operator=(const PinnedThread&) = delete;

  ~PinnedThread() {
    if (thread_.joinable()) {
      open(kAbort);  // no effect if start() already opened it on kGo
      thread_.join();
    }
  }

  void start() noexcept { open(kGo); }
  void join() { thread_.join(); }

 private:
  static constexpr int kClosed = 0;
  static constexpr int kGo = 1;
  static constexpr int kAbort = 2;

  void open(int how) noexcept {
    int expected = kClosed;
    // Release: whatever the creator set up before start() is visible to the body, which loads with acquire.
    if (gate_.compare_exchange_strong(expected, how, std::memory_order_release)) gate_.notify_one();
  }

  // Declared before thread_ so that it exists before the thread does.
  std::atomic<int> gate_{kClosed};
  std::thread thread_;
};

std::int64_t monotonic_ns() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

timespec to_timespec(std::int64_t ns) noexcept {
  timespec ts{};
  ts.tv_sec = static_cast<time_t>(ns / 1'000'000'000);
  ts.tv_nsec = static_cast<long>(ns % 1'000'000'000);
  return ts;
}

constexpr int kPingPongWarmup = 1000;

// A warm-up of kPingPongWarmup round trips (lines of code and cache lines settle, both vCPUs are awake), then
// each round trip timed (steady clock: clock_gettime(CLOCK_MONOTONIC) through the vDSO) into `hist` until
// `budget` is done. `round_trip` returns false when the peer is gone, which ends it early.
template <class RoundTrip>
void time_round_trips(const RunBudget& budget, LatencyHistogram& hist, RoundTrip round_trip) {
  for (int i = 0; i < kPingPongWarmup; ++i)
    if (!round_trip()) return;
  using Clock = std::chrono::steady_clock;
  const Clock::time_point begin = Clock::now();
  std::uint64_t iterations = 0;
  std::chrono::nanoseconds elapsed{0};
  while (!budget.done(iterations, elapsed)) {
    const Clock::time_point t0 = Clock::now();
    if (!round_trip()) return;
    const Clock::time_point t1 = Clock::now();
    hist.record(static_cast<std::uint64_t>(std::chrono::nanoseconds(t1 - t0).count()));
    ++iterations;
    elapsed = t1 - begin;
  }
}

void check_two_cpus(int cpu_a, int cpu_b, const char* what) {
  if (cpu_a == cpu_b) {
    // Two spinners on one CPU progress only when the scheduler switches between them: milliseconds per trip.
    throw std::invalid_argument(std::string(what) + " needs two different CPUs, got CPU " +
                                std::to_string(cpu_a) + " twice");
  }
}

// Closes an fd when it goes out of scope.
struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

int checked(int rc, const char* what) {
  if (rc < 0) throw std::runtime_error(std::string("socket baseline: ") + what + ": " + std::strerror(errno));
  return rc;
}

// Two connected sockets of `kind` over loopback, both non-blocking.
std::pair<int, int> connected_pair(SocketKind kind) {
  int a = -1;
  int b = -1;
  if (kind == SocketKind::unix_stream) {
    int sv[2];
    checked(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), "socketpair");
    a = sv[0];
    b = sv[1];
  } else {
    const int type = kind == SocketKind::tcp ? SOCK_STREAM : SOCK_DGRAM;
    sockaddr_in any{};
    any.sin_family = AF_INET;
    any.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    auto bound = [&](int fd) {
      checked(::bind(fd, reinterpret_cast<const sockaddr*>(&any), sizeof any), "bind");
      sockaddr_in at{};
      socklen_t len = sizeof at;
      checked(::getsockname(fd, reinterpret_cast<sockaddr*>(&at), &len), "getsockname");
      return at;
    };
    if (kind == SocketKind::tcp) {
      Fd listener(checked(::socket(AF_INET, type | SOCK_CLOEXEC, 0), "socket"));
      const sockaddr_in at = bound(listener.fd);
      checked(::listen(listener.fd, 1), "listen");
      a = checked(::socket(AF_INET, type | SOCK_CLOEXEC, 0), "socket");
      checked(::connect(a, reinterpret_cast<const sockaddr*>(&at), sizeof at), "connect");
      b = checked(::accept4(listener.fd, nullptr, nullptr, SOCK_CLOEXEC), "accept");
      const int one = 1;
      ::setsockopt(a, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      ::setsockopt(b, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    } else {
      a = checked(::socket(AF_INET, type | SOCK_CLOEXEC, 0), "socket");
      b = checked(::socket(AF_INET, type | SOCK_CLOEXEC, 0), "socket");
      const sockaddr_in at_a = bound(a);
      const sockaddr_in at_b = bound(b);
      checked(::connect(a, reinterpret_cast<const sockaddr*>(&at_b), sizeof at_b), "connect");
      checked(::connect(b, reinterpret_cast<const sockaddr*>(&at_a), sizeof at_a), "connect");
    }
  }
  for (int fd : {a, b})
    checked(::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK), "fcntl(O_NONBLOCK)");
  return {a, b};
}

// Spins on recv until `n` bytes (one datagram, for UDP) have arrived; false at end of stream or on a stop
// datagram (shorter than a message).
bool recv_spinning(int fd, std::byte* buf, std::size_t n, bool datagram) {
  std::size_t got = 0;
  while (got < n) {
    const ssize_t r = ::recv(fd, buf + got, n - got, MSG_DONTWAIT);
    if (r > 0) {
      if (datagram) return static_cast<std::size_t>(r) == n;
      got += static_cast<std::size_t>(r);
    } else if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
      return false;
    } else {
      cpu_relax();
    }
  }
  return true;
}

void send_whole(int fd, const std::byte* buf, std::size_t n) {
  std::size_t sent = 0;
  while (sent < n) {
    const ssize_t r = ::send(fd, buf + sent, n - sent, MSG_NOSIGNAL);
    if (r > 0) {
      sent += static_cast<std::size_t>(r);
    } else if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      return;
    }
  }
}

// The socket baselines' two ways of doing io: plain non-blocking syscalls spinning on recv, or a raw
// io_uring of the thread's own, set up as Moirai's shards set theirs up (SINGLE_ISSUER | DEFER_TASKRUN |
// TASKRUN_FLAG where the kernel takes them), a one-shot recv or send per request, spinning on the CQ and
// entering the kernel only when it flags deferred work. The second is what any io_uring program pays on this
// host before a line of framework runs: the floor for Moirai's own rows.
struct SyscallIo {
  bool recv(int fd, std::byte* buf, std::size_t n, bool datagram) {
    return recv_spinning(fd, buf, n, datagram);
  }
  void send(int fd, const std::byte* buf, std::size_t n) { send_whole(fd, buf, n); }
};

class RawRingIo {
 public:
  RawRingIo() {
    io_uring_params p{};
    p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_TASKRUN_FLAG;
    if (io_uring_queue_init_params(64, &ring_, &p) < 0) {
      io_uring_params plain{};
      const int rc = io_uring_queue_init_params(64, &ring_, &plain);
      if (rc < 0) throw std::runtime_error(std::string("raw io_uring baseline: ") + std::strerror(-rc));
    }
  }
  ~RawRingIo() { io_uring_queue_exit(&ring_); }
  RawRingIo(const RawRingIo&) = delete;
  RawRingIo& operator=(const RawRingIo&) = delete;

  bool recv(int fd, std::byte* buf, std::size_t n, bool datagram) {
    std::size_t got = 0;
    while (got < n) {
      io_uring_prep_recv(sqe(), fd, buf + got, n - got, 0);
      const int r = complete();
      if (r <= 0) return false;
      if (datagram) return static_cast<std::size_t>(r) == n;
      got += static_cast<std::size_t>(r);
    }
    return true;
  }
  void send(int fd, const std::byte* buf, std::size_t n) {
    std::size_t sent = 0;
    while (sent < n) {
      io_uring_prep_send(sqe(), fd, buf + sent, n - sent, MSG_NOSIGNAL);
      const int r = complete();
      if (r <= 0) return;
      sent += static_cast<std::size_t>(r);
    }
  }

 private:
  io_uring_sqe* sqe() { return io_uring_get_sqe(&ring_); }  // one request at a time: never null
  // Submits the one request and spins until its CQE.
  int complete() {
    io_uring_submit(&ring_);
    for (;;) {
      io_uring_cqe* cqe = nullptr;
      if (io_uring_peek_cqe(&ring_, &cqe) == 0) {
        const int res = cqe->res;
        io_uring_cqe_seen(&ring_, cqe);
        return res;
      }
      if ((IO_URING_READ_ONCE(*ring_.sq.kflags) & (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW)) != 0) {
        io_uring_get_events(&ring_);
      } else {
        cpu_relax();
      }
    }
  }
  io_uring ring_{};
};

}  // namespace

namespace {

// A writes its request on `request`, B waits for it and writes its reply on `reply`, A waits for that: one
// line bounced both ways when the two are one, else a line written by each thread and watched by the other.
// Odd values are A's requests, even values B's replies; kStop tells B to finish.
struct alignas(128) Line {  // 128: nor does the adjacent-line prefetcher pair it with another
  std::atomic<std::uint64_t> value{0};
};
void lines_pingpong(int cpu_a, int cpu_b, const RunBudget& budget, LatencyHistogram& hist, Line& request,
                    Line& reply, const char* what) {
  check_two_cpus(cpu_a, cpu_b, what);
  // Release/acquire is more than the counter needs (it carries no other data) and costs nothing extra on
  // x86, where every store is a release and every load an acquire.
  constexpr std::uint64_t kStop = std::numeric_limits<std::uint64_t>::max();
  PinnedThread responder(cpu_b, Policy::time_shared, [&request, &reply] {
    for (std::uint64_t expected = 1;; expected += 2) {
      std::uint64_t seen;
      while ((seen = request.value.load(std::memory_order_acquire)) != expected) {
        if (seen == kStop) return;
        cpu_relax();
      }
      reply.value.store(expected + 1, std::memory_order_release);
    }
  });

  PinnedThread initiator(cpu_a, Policy::time_shared, [&request, &reply, &budget, &hist] {
    std::uint64_t n = 0;
    time_round_trips(budget, hist, [&request, &reply, &n] {
      request.value.store(n + 1, std::memory_order_release);
      while (reply.value.load(std::memory_order_acquire) != n + 2)
        cpu_relax();
      n += 2;
      return true;
    });
    request.value.store(kStop, std::memory_order_release);
  });

  responder.start();
  initiator.start();
  initiator.join();
  responder.join();
}

}  // namespace

void cacheline_pingpong(int cpu_a, int cpu_b, const RunBudget& budget, LatencyHistogram& hist) {
  // The one line both threads touch, alone in its bytes so that nothing else on the caller's stack shares it
  // (false sharing would add traffic the baseline must not have).
  Line line;
  lines_pingpong(cpu_a, cpu_b, budget, hist, line, line, "cacheline ping-pong");
}

void two_lines_pingpong(int cpu_a, int cpu_b, const RunBudget& budget, LatencyHistogram& hist) {
  Line lines[2];
  lines_pingpong(cpu_a, cpu_b, budget, hist, lines[0], lines[1], "two-line ping-pong");
}

namespace {

// One direction of shm_ring_pingpong: `count` slots of `slot_bytes`, each a 16-byte header (the sequence,
// stored last, then the length and a sender word) and the payload, as an IpcChannel's ring lays them out.
class SlotRing {
 public:
  SlotRing(std::byte* base, std::uint32_t count, std::size_t slot_bytes) noexcept
      : base_(base), mask_(count - 1), slot_bytes_(slot_bytes) {}

  void put(std::uint64_t n, const std::byte* payload, std::uint32_t bytes) noexcept {
    std::byte* s = slot(n);
    std::memcpy(s + 16, payload, bytes);
    std::memcpy(s + 4, &bytes, sizeof bytes);
    seq(s).store(static_cast<std::uint32_t>(n + 1), std::memory_order_release);
  }
  // Spins until slot `n` holds message n, copies it out; false once `stop` is set.
  bool take(std::uint64_t n, std::byte* out, const std::atomic<bool>& stop) noexcept {
    std::byte* s = slot(n);
    while (seq(s).load(std::memory_order_acquire) != static_cast<std::uint32_t>(n + 1)) {
      if (stop.load(std::memory_order_relaxed)) return false;
      cpu_relax();
    }
    std::uint32_t bytes = 0;
    std::memcpy(&bytes, s + 4, sizeof bytes);
    std::memcpy(out, s + 16, bytes);
    return true;
  }

 private:
  std::byte* slot(std::uint64_t n) const noexcept { return base_ + (n & mask_) * slot_bytes_; }
  static std::atomic<std::uint32_t>& seq(std::byte* s) noexcept {
    return *std::launder(reinterpret_cast<std::atomic<std::uint32_t>*>(s));
  }
  std::byte* base_;
  std::uint64_t mask_;
  std::size_t slot_bytes_;
};

}  // namespace

void shm_ring_pingpong(int cpu_a, int cpu_b, std::size_t payload_bytes, const RunBudget& budget,
                       LatencyHistogram& hist) {
  check_two_cpus(cpu_a, cpu_b, "the slot-ring ping-pong");
  constexpr std::uint32_t kSlots = 1024;
  const std::size_t slot_bytes = (payload_bytes + 16 + 63) / 64 * 64;
  const std::size_t ring_bytes = kSlots * slot_bytes;
  // Both rings in one mapping on the initiator's node, faulted in now (unmapped however this returns), each
  // slot's sequence zero (empty).
  const numa::Topology& topo = numa::Topology::system();
  const numa::NodeMemory rings =
      numa::allocate_on_node(topo, std::max(0, topo.node_of_cpu(cpu_a)), 2 * ring_bytes);
  auto* base = static_cast<std::byte*>(rings.data());
  for (std::size_t off = 0; off < 2 * ring_bytes; off += slot_bytes)
    new (base + off) std::atomic<std::uint32_t>(0);
  SlotRing request(base, kSlots, slot_bytes);
  SlotRing reply(base + ring_bytes, kSlots, slot_bytes);
  std::atomic<bool> stop{false};
  const auto bytes = static_cast<std::uint32_t>(payload_bytes);

  PinnedThread responder(cpu_b, Policy::time_shared, [&, bytes] {
    std::vector<std::byte> buf(bytes);
    for (std::uint64_t n = 0; request.take(n, buf.data(), stop); ++n)
      reply.put(n, buf.data(), bytes);
  });
  PinnedThread initiator(cpu_a, Policy::time_shared, [&, bytes] {
    std::vector<std::byte> out(bytes, std::byte{0x5a});
    std::vector<std::byte> in(bytes);
    std::uint64_t n = 0;
    time_round_trips(budget, hist, [&] {
      request.put(n, out.data(), bytes);
      return reply.take(n++, in.data(), stop);
    });
    stop.store(true, std::memory_order_relaxed);
  });

  responder.start();
  initiator.start();
  initiator.join();
  responder.join();
}

namespace {

template <class Io>
void socket_spin(SocketKind kind, int cpu_a, int cpu_b, std::size_t bytes, const RunBudget& budget,
                 LatencyHistogram& hist) {
  check_two_cpus(cpu_a, cpu_b, "the socket baseline");
  const auto [fa, fb] = connected_pair(kind);
  Fd a(fa);
  Fd b(fb);
  const bool datagram = kind == SocketKind::udp;

  PinnedThread responder(cpu_b, Policy::time_shared, [&b, bytes, datagram] {
    Io io;
    std::vector<std::byte> buf(bytes);
    while (io.recv(b.fd, buf.data(), bytes, datagram))
      io.send(b.fd, buf.data(), bytes);
  });

  PinnedThread initiator(cpu_a, Policy::time_shared, [&a, bytes, datagram, &budget, &hist] {
    Io io;
    std::vector<std::byte> out(bytes, std::byte{0x5a});
    std::vector<std::byte> in(bytes);
    bool peer_gone = false;
    time_round_trips(budget, hist, [&] {
      io.send(a.fd, out.data(), bytes);
      peer_gone = !io.recv(a.fd, in.data(), bytes, datagram);
      return !peer_gone;
    });
    if (peer_gone) return;
    // Stop the responder: end of stream, or for UDP a datagram shorter than a message.
    if (datagram) {
      const std::byte stop{0};
      ::send(a.fd, &stop, 1, MSG_NOSIGNAL);
    } else {
      ::shutdown(a.fd, SHUT_WR);
    }
  });

  responder.start();
  initiator.start();
  initiator.join();
  responder.join();
}

}  // namespace

void socket_syscall_spin(SocketKind kind, int cpu_a, int cpu_b, std::size_t bytes, const RunBudget& budget,
                         LatencyHistogram& hist) {
  socket_spin<SyscallIo>(kind, cpu_a, cpu_b, bytes, budget, hist);
}

void socket_raw_ring_spin(SocketKind kind, int cpu_a, int cpu_b, std::size_t bytes, const RunBudget& budget,
                          LatencyHistogram& hist) {
  socket_spin<RawRingIo>(kind, cpu_a, cpu_b, bytes, budget, hist);
}

void clock_nanosleep_lateness(int cpu, std::chrono::nanoseconds interval, const RunBudget& budget,
                              LatencyHistogram& hist, const rt::ThreadPolicy& policy) {
  if (interval.count() <= 0) {
    throw std::invalid_argument("clock_nanosleep lateness needs a positive interval, got " +
                                std::to_string(interval.count()) + " ns");
  }
  int sleep_error = 0;

  PinnedThread sleeper(cpu, Policy::inherit, [&] {
    if (policy != rt::ThreadPolicy{}) rt::apply_thread_policy(policy);  // refused: the inherited one stays
    const std::int64_t begin = monotonic_ns();
    std::int64_t target = begin;
    std::uint64_t iterations = 0;
    std::chrono::nanoseconds elapsed{0};
    while (!budget.done(iterations, elapsed)) {
      // Absolute targets one interval apart, as cyclictest does: a late wake-up does not shift later targets,
      // so lateness never accumulates into drift.
      target += interval.count();
      const timespec when = to_timespec(target);
      int rc;
      while ((rc = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &when, nullptr)) == EINTR) {
      }
      if (rc != 0) {
        sleep_error = rc;
        return;
      }
      const std::int64_t woke = monotonic_ns();
      hist.record(woke > target ? static_cast<std::uint64_t>(woke - target) : 0);
      ++iterations;
      elapsed = std::chrono::nanoseconds(woke - begin);
    }
  });

  sleeper.start();
  sleeper.join();
  if (sleep_error != 0) {
    throw std::runtime_error("clock_nanosleep on CPU " + std::to_string(cpu) +
                             " failed: " + std::generic_category().message(sleep_error));
  }
}

}  // namespace moirai::cli
