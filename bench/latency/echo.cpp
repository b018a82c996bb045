// `moirai bench echo`: the round trip of a 64-byte message over loopback between shard 0 and shard 1, through
// each transport (TCP, UDP, Unix stream sockets), beside the kernel's own limit measured in the same run: two
// pinned threads spinning on non-blocking recv over the same kind of socket. Plus a pipelined TCP throughput
// row.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "baselines.hpp"
#include "bench.hpp"
#include "bench_support.hpp"
#include "framing_options.hpp"
#include "ipc_round_trip.hpp"
#include "metrics_option.hpp"
#include "moirai/core/runtime.hpp"
#include "moirai/core/spawn.hpp"
#include "moirai/core/submit.hpp"
#include "moirai/io/ring.hpp"
#include "moirai/transport/framed_datagram.hpp"
#include "moirai/transport/framed_stream.hpp"
#include "moirai/transport/stream_socket.hpp"

namespace moirai::cli {
namespace {

using namespace detail;
using namespace moirai::transport;
using Hist = LatencyHistogram;

// Bytes on the wire per message, as in the baseline: a 16-byte frame header and 48 bytes of payload.
constexpr std::size_t kWireBytes = 64;
constexpr std::size_t kPayload = kWireBytes - kFrameHeaderSize;
constexpr int kWarmup = 1000;
// Messages in flight in the throughput row: queued, then flushed in one send.
constexpr int kWindow = 32;

SocketAddress listen_address(SocketKind kind) {
  if (kind == SocketKind::unix_stream)
    return SocketAddress::parse("unix:/tmp/moirai-bench-echo-" + std::to_string(::getpid()) + ".sock");
  return SocketAddress::parse("127.0.0.1:0");
}

// Both ends' framing: 4 KiB frames, and the receive polled by a spinning shard itself (--poll-when-idle).
FramedOptions framing(const BenchOptions& o) {
  FramedOptions f = stream_framing(o.poll_when_idle);
  f.max_payload = 4096;
  return f;
}

// Shard 1's side: echoes every frame of one connection until it closes.
Task<void> echo_one(StreamListener& listener, const FramedOptions& options) {
  FramedStream s(co_await listener.accept(), EndpointId{0, 1, 0}, options);
  try {
    for (;;) {
      Frame f = co_await s.recv();
      // Replies to a burst of requests go out in one send, once no whole request is left to answer.
      co_await s.queue(f.header.type, f.payload);
      if (!s.has_buffered_frame()) co_await s.flush();
    }
  } catch (const TransportError&) {  // the client closed: the bench is over
  }
}

// Runs `client` on shard 0 against an echo server on shard 1, over a stream socket of `kind`.
template <class Client>
void with_stream_echo(const BenchOptions& o, SocketKind kind, int a, int b, IdleStrategy idle,
                      Client client) {
  RuntimeOptions ro = bench_runtime(o, {a, b}, idle);
  ro.stall_budget = std::chrono::nanoseconds(0);  // a spinning client runs long between suspensions by design
  Runtime rt(ro);
  StreamListener listener = StreamListener::bind(listen_address(kind));
  const SocketAddress at = listener.local_address();
  rt.run([&]() -> Task<void> {
    serve_metrics_if_asked(o.metrics);
    const FramedOptions options = framing(o);
    auto server =
        spawn([&]() -> Task<void> { co_await submit_to(1, [&] { return echo_one(listener, options); }); });
    FramedStream c(co_await StreamSocket::connect(at), EndpointId{0, 0, 0}, options);
    co_await client(c);
    co_await c.close();
    co_await server.join();
  });
}

void moirai_stream_round_trip(const BenchOptions& o, SocketKind kind, int a, int b, IdleStrategy idle,
                              const RunBudget& budget, Hist& hist) {
  with_stream_echo(o, kind, a, b, idle, [&](FramedStream& c) -> Task<void> {
    std::byte payload[kPayload]{};
    for (int i = 0; i < kWarmup; ++i) {
      co_await c.send(1, payload);
      (void)co_await c.recv();
    }
    TimedPasses passes(budget);
    for (std::uint64_t i = 0; passes.next(i); ++i) {
      co_await c.send(1, payload);
      (void)co_await c.recv();
      passes.record(hist);
    }
  });
}

// The same over framed UDP: shard 1 sends every frame back to its sender. Both sockets are connected to their
// one peer, as the baselines' are (an unconnected send names its address and looks up its route each time).
void moirai_udp_round_trip(const BenchOptions& o, int a, int b, IdleStrategy idle, const RunBudget& budget,
                           Hist& hist) {
  RuntimeOptions ro = bench_runtime(o, {a, b}, idle);
  ro.stall_budget = std::chrono::nanoseconds(0);
  Runtime rt(ro);
  rt.run([&]() -> Task<void> {
    serve_metrics_if_asked(o.metrics);
    const SocketAddress any = SocketAddress::parse("127.0.0.1:0");
    std::unique_ptr<FramedDatagramSocket> server;
    co_await submit_to(1, [&] {
      server = std::make_unique<FramedDatagramSocket>(
          FramedDatagramSocket::bind(any, EndpointId{0, 1, 0}, datagram_framing(o.poll_when_idle)));
    });
    const SocketAddress at = server->local_address();
    auto serving = spawn([&]() -> Task<void> {
      co_await submit_to(1, [&]() -> Task<void> {
        // UDP may lose a datagram even on loopback (a full receive buffer): a bench must then fail or end,
        // not hang, so both sides wait with a timeout.
        bool connected = false;
        for (;;) {
          DatagramFrame f = co_await server->recv(std::chrono::seconds(5));
          if (f.header.type == 0) break;  // the client's last word
          if (!connected) {
            server->connect(f.sender_address());
            connected = true;
          }
          co_await server->send(f.header.type, f.payload);
        }
      });
    });
    FramedDatagramSocket c =
        FramedDatagramSocket::bind(any, EndpointId{0, 0, 0}, datagram_framing(o.poll_when_idle));
    c.connect(at);
    std::byte payload[kPayload]{};
    for (int i = 0; i < kWarmup; ++i) {
      co_await c.send(1, payload);
      (void)co_await c.recv(std::chrono::seconds(1));
    }
    TimedPasses passes(budget);
    for (std::uint64_t i = 0; passes.next(i); ++i) {
      co_await c.send(1, payload);
      (void)co_await c.recv(std::chrono::seconds(1));
      passes.record(hist);
    }
    co_await c.send(0, {});
    co_await serving.join();
    co_await submit_to(1, [&] { server.reset(); });
  });
}

// kWindow messages out, then their kWindow echoes back; records ns per message of each window.
double moirai_stream_throughput(const BenchOptions& o, int a, int b, IdleStrategy idle,
                                const RunBudget& budget, Hist& hist) {
  double per_sec = 0;
  with_stream_echo(o, SocketKind::tcp, a, b, idle, [&](FramedStream& c) -> Task<void> {
    std::byte payload[kPayload]{};
    TimedPasses passes(budget);
    std::uint64_t done = 0;
    for (; passes.next(done); done += kWindow) {
      for (int k = 0; k < kWindow; ++k)
        co_await c.queue(1, payload);
      co_await c.flush();
      for (int k = 0; k < kWindow; ++k)
        (void)co_await c.recv();
      passes.record(hist, kWindow);
    }
    per_sec = per_second(done, passes.start_ns());
  });
  return per_sec;
}

// One socket transport's rows: the kernel's limit with plain syscalls and with a raw io_uring, and Moirai's,
// spinning in user space (or as --idle says) and, with no --idle, busy-polling in the kernel.
struct SocketRows {
  const char* baseline;
  const char* raw_ring;
  const char* mine;
  const char* mine_busy_poll;
  SocketKind kind;
  std::unique_ptr<Hist> base = std::make_unique<Hist>();
  std::unique_ptr<Hist> ring = std::make_unique<Hist>();
  std::unique_ptr<Hist> hist = std::make_unique<Hist>();
  std::unique_ptr<Hist> busy_poll = std::make_unique<Hist>();
};

std::vector<SocketRows> socket_rows() {
  std::vector<SocketRows> rows;
  rows.push_back({"baseline.tcp_syscall_spin", "baseline.tcp_raw_ring", "moirai.tcp", "moirai.tcp.busy_poll",
                  SocketKind::tcp});
  rows.push_back({"baseline.udp_syscall_spin", "baseline.udp_raw_ring", "moirai.udp", "moirai.udp.busy_poll",
                  SocketKind::udp});
  rows.push_back({"baseline.unix_syscall_spin", "baseline.unix_raw_ring", "moirai.unix",
                  "moirai.unix.busy_poll", SocketKind::unix_stream});
  return rows;
}

// The shared-memory rows: two processes through an IpcChannel, beside the cache line two threads bounce
// (what no transport between CPUs can beat), two lines each written by one thread (what any two
// single-writer rings move per round trip) and two threads passing the same messages through bare slot
// rings (what the slots themselves cost).
struct IpcRows {
  std::unique_ptr<Hist> cacheline = std::make_unique<Hist>();
  std::unique_ptr<Hist> two_lines = std::make_unique<Hist>();
  std::unique_ptr<Hist> slot_ring = std::make_unique<Hist>();
  std::unique_ptr<Hist> ipc = std::make_unique<Hist>();
};

// Where and how the echo bench runs.
struct EchoPlan {
  int a = 0;
  int b = 0;
  RunBudget budget;
  IdleStrategy idle = IdleStrategy::spin;      // the socket rows' shards
  IdleStrategy ipc_idle = IdleStrategy::spin;  // the IPC row's
  bool both = false;                           // no --idle: the .busy_poll rows too
  std::string busy_poll_refused;               // why the kernel refused busy-poll, if it did
};

EchoPlan plan_echo(const BenchOptions& o) {
  EchoPlan p;
  std::tie(p.a, p.b) = two_cpus(o);
  p.budget = or_default(o.budget, 100'000);
  // The socket rows' shards spin in user space (reading their waiting sockets themselves unless
  // --poll-when-idle false) unless --idle says otherwise; beside them, with no --idle, the same with shards
  // busy-polling in the kernel (the `.busy_poll` rows), so the two ways of spinning are compared in one run.
  // The IPC row spins in user space: its receiver watches shared memory, which no kernel wait sees.
  p.idle = idle_or(o, IdleStrategy::spin);
  p.ipc_idle = idle_or(o, IdleStrategy::spin);
  p.both = o.idle.empty();
  if (p.idle == IdleStrategy::busy_poll || p.both) {
    io::Ring probe_ring;
    if (const std::error_code refused = probe_ring.enable_busy_poll(std::chrono::milliseconds(1)))
      p.busy_poll_refused = io::describe_busy_poll_error(refused);
  }
  return p;
}

void measure_sockets(const BenchOptions& o, const EchoPlan& p, std::vector<SocketRows>& rows) {
  const RunBudget part = share(p.budget, kRounds);
  auto measure = [&](const SocketRows& r, IdleStrategy how, Hist& hist) {
    if (r.kind == SocketKind::udp) {
      moirai_udp_round_trip(o, p.a, p.b, how, part, hist);
    } else {
      moirai_stream_round_trip(o, r.kind, p.a, p.b, how, part, hist);
    }
  };
  for (unsigned round = 0; round < kRounds; ++round) {
    for (SocketRows& r : rows) {
      progress(o, (std::string("echo: ") + r.baseline).c_str());
      socket_syscall_spin(r.kind, p.a, p.b, kWireBytes, part, *r.base);
      progress(o, (std::string("echo: ") + r.raw_ring).c_str());
      socket_raw_ring_spin(r.kind, p.a, p.b, kWireBytes, part, *r.ring);
      progress(o, (std::string("echo: ") + r.mine).c_str());
      measure(r, p.idle, *r.hist);
      if (p.both) {
        progress(o, (std::string("echo: ") + r.mine_busy_poll).c_str());
        measure(r, IdleStrategy::busy_poll, *r.busy_poll);
      }
    }
  }
}

void measure_ipc(const BenchOptions& o, const EchoPlan& p, IpcRows& rows) {
  const RunBudget part = share(p.budget, kRounds);
  for (unsigned round = 0; round < kRounds; ++round) {
    progress(o, "echo: baseline.cacheline");
    cacheline_pingpong(p.a, p.b, part, *rows.cacheline);
    progress(o, "echo: baseline.two_lines");
    two_lines_pingpong(p.a, p.b, part, *rows.two_lines);
    progress(o, "echo: baseline.shm_ring");
    shm_ring_pingpong(p.a, p.b, kPayload, part, *rows.slot_ring);
    progress(o, "echo: moirai.ipc");
    // 64 bytes on the ring as on the sockets: the slot's 16-byte header (length, sender) and 48 of payload.
    moirai_ipc_round_trip(o, p.a, p.b, p.ipc_idle, part, *rows.ipc, kPayload);
  }
}

// "moirai.tcp p50 = 1.23x baseline.tcp_raw_ring, ...": Moirai's rows beside the floor under each, for the
// note.
class Floors {
 public:
  void add(const char* mine, const BenchRow& row, const BenchRow& floor) {
    if (floor.p50 == 0) return;
    char text[96];
    std::snprintf(text, sizeof text, "%s%s p50 = %.2fx %s", text_.empty() ? "" : ", ", mine,
                  static_cast<double>(row.p50) / static_cast<double>(floor.p50), floor.name.c_str());
    text_ += text;
  }
  // What was added since the last take().
  std::string take() { return std::exchange(text_, std::string()); }

 private:
  std::string text_;
};

void add_socket_rows(BenchReport& r, const std::vector<SocketRows>& rows, bool both, Floors& floors) {
  for (const SocketRows& p : rows) {
    r.rows.push_back(summarize(p.baseline, *p.base));
    BenchRow ring = summarize(p.raw_ring, *p.ring);
    ring.compare_with = p.baseline;
    r.rows.push_back(ring);
    BenchRow row = summarize(p.mine, *p.hist);
    row.compare_with = p.baseline;
    r.rows.push_back(row);
    if (both) {
      BenchRow busy = summarize(p.mine_busy_poll, *p.busy_poll);
      busy.compare_with = p.baseline;
      r.rows.push_back(busy);
    }
    floors.add(p.mine, row, ring);
  }
}

void add_ipc_rows(BenchReport& r, const IpcRows& rows, Floors& floors) {
  r.rows.push_back(summarize("baseline.cacheline", *rows.cacheline));
  const auto beside_cacheline = [&r](const char* name, const Hist& hist) {
    BenchRow row = summarize(name, hist);
    row.compare_with = "baseline.cacheline";
    r.rows.push_back(row);
    return row;
  };
  const BenchRow two_lines = beside_cacheline("baseline.two_lines", *rows.two_lines);
  const BenchRow slot_ring = beside_cacheline("baseline.shm_ring", *rows.slot_ring);
  const BenchRow ipc = beside_cacheline("moirai.ipc", *rows.ipc);
  floors.add("moirai.ipc", ipc, two_lines);
  floors.add("moirai.ipc", ipc, slot_ring);
}

std::string echo_note(const BenchOptions& o, const EchoPlan& p, const std::string& socket_floors,
                      const std::string& ipc_floors) {
  return "round trip of a 64-byte message (16-byte frame header + 48 bytes) over loopback, shard on CPU " +
         std::to_string(p.a) + " to shard on CPU " + std::to_string(p.b) + " and back; idle " +
         to_string(p.idle) +
         (p.both ? " (the .busy_poll rows: idle busy-poll, spinning in the kernel)" : "") +
         (p.busy_poll_refused.empty()
              ? std::string()
              : " (busy-poll refused, so those shards spun in user space: " + p.busy_poll_refused + ")") +
         (o.inline_io != 0 ? "; sends as syscalls where the socket has room (up to " +
                                 std::to_string(o.inline_io) + " per resumption), else through the ring"
                           : std::string("; every send through the ring")) +
         (o.poll_when_idle ? "; a shard spinning idle in user space reads its waiting socket itself "
                             "(poll_when_idle), the ring's receive armed behind it"
                           : "; every receive from the ring") +
         "; baselines: two pinned threads spinning on non-blocking recv/send over the same kind of socket "
         "(syscall_spin), or each through a raw io_uring with Moirai's ring flags, one request at a time, "
         "spinning on its completion queue (raw_ring: io_uring's cost here with a request per send and per "
         "receive; " +
         socket_floors +
         "). ipc: two processes, a 64-byte message (a 16-byte slot header + 48 bytes) each way through an "
         "IpcChannel in /dev/shm" +
         (p.ipc_idle == IdleStrategy::spin
              ? ", receives spin " + std::to_string(kIpcBenchSpinBeforeWait.count()) + " us before they wait"
              : std::string()) +
         ", against two threads bouncing a cache line (baseline.cacheline), two threads each writing a line "
         "the other watches (baseline.two_lines: the two lines any pair of single-writer rings moves per "
         "round trip), and two threads passing the same messages through two bare rings of 1024 such slots "
         "(baseline.shm_ring; " +
         ipc_floors + "). throughput: " + std::to_string(kWindow) + " frames in flight, ns per message";
}

BenchReport bench_echo(const BenchOptions& o) {
  const EchoPlan plan = plan_echo(o);
  std::vector<SocketRows> sockets = socket_rows();
  measure_sockets(o, plan, sockets);
  IpcRows ipc;
  measure_ipc(o, plan, ipc);
  progress(o, "echo: moirai.tcp.throughput");
  auto tput = std::make_unique<Hist>();
  const double per_sec =
      moirai_stream_throughput(o, plan.a, plan.b, plan.idle, or_default(o.budget, 1'000'000), *tput);

  BenchReport r;
  r.bench = "echo";
  Floors floors;
  add_socket_rows(r, sockets, plan.both, floors);
  const std::string socket_floors = floors.take();
  add_ipc_rows(r, ipc, floors);
  BenchRow t = summarize("moirai.tcp.throughput", *tput);
  t.per_sec = per_sec;
  r.rows.push_back(t);
  r.note = echo_note(o, plan, socket_floors, floors.take());
  return r;
}

}  // namespace

const LatencyBench kEchoBench{
    "echo", "64-byte round trip over TCP, Unix sockets vs. syscalls spinning on recv", bench_echo};

}  // namespace moirai::cli
