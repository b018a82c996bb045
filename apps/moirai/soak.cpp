#include "soak.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>

#include "bench_support.hpp"
#include "moirai/core/error.hpp"
#include "moirai/core/runtime.hpp"
#include "moirai/core/spawn.hpp"
#include "moirai/core/submit.hpp"
#include "moirai/core/timer.hpp"
#include "moirai/transport/channel.hpp"
#include "moirai/transport/framed_datagram.hpp"
#include "moirai/transport/framed_stream.hpp"
#include "moirai/transport/ipc.hpp"
#include "moirai/transport/stream_socket.hpp"

namespace moirai::cli {
namespace {

using namespace moirai::transport;
using soak::Verifier;

// Frame types on the sockets.
constexpr std::uint16_t kData = 1;
constexpr std::uint16_t kAck = 2;     // udp, receiver to sender: one past the highest seq seen
constexpr std::uint16_t kEnd = 3;     // udp, sender to receiver: everything was sent
constexpr std::uint16_t kEndAck = 4;  // udp: the receiver heard the end
constexpr std::size_t kChannelMaxPayload = 256;
constexpr std::size_t kChannelCapacity = 1024;
// Datagrams a UDP sender may have out before the receiver acknowledges them, and how often it does. The
// receiver's socket holds them all: 32 frames of at most kUdpMaxPayload + 16 bytes (about 2 KiB each, plus
// the kernel's per-datagram overhead of under 1 KiB) stay well inside the default SO_RCVBUF (208 KiB), and
// inside the 64 buffers of its provided-buffer ring. A drop is then a real fault, not an overrun.
constexpr std::uint64_t kUdpWindow = 32;
constexpr std::uint64_t kUdpAckEvery = 8;
// The receive buffers' default size less the kernel's 72 bytes and the frame header (RecvOptions).
constexpr std::size_t kUdpMaxPayload = 2048 - 72 - kFrameHeaderSize;
// How long a receiver waits for the next message before it calls the run broken.
constexpr Duration kStallTimeout = std::chrono::seconds(30);
// A sleeping receiver and an in-flight acknowledgement: how long a UDP side waits before it asks again.
constexpr Duration kUdpRetry = std::chrono::milliseconds(200);

struct Slot {  // a channel message: the payload bytes, in place
  std::uint32_t size = 0;
  std::array<std::byte, kChannelMaxPayload> bytes{};
  std::span<const std::byte> payload() const noexcept { return {bytes.data(), size}; }
};

bool is_closed(const TransportError& e) noexcept {
  return e.errc() == TransportErrc::closed;
}

// Resident memory at the end of the warm-up (a tenth of the messages) and when the last message arrived (or,
// when some never do, once the receiver gave up); of this process and of a peer process (ipc). Not later:
// ending a run throws its first exception (a closed channel, a stream's end), and the unwinder then reads
// pages of the program's unwind tables that nothing read before, which are no leak.
class RssWatch {
 public:
  RssWatch(std::uint64_t messages, SoakRow& row, pid_t peer = 0)
      : warm_(std::max<std::uint64_t>(1, messages / 10)), last_(messages), row_(row), peer_(peer) {}
  // After the n-th arrival.
  void at(std::uint64_t n) noexcept {
    if (n == warm_) sample(row_.rss_start_kb, row_.peer_rss_start_kb);
    if (n == last_) end();
  }
  void end() noexcept {
    if (!ended_) sample(row_.rss_end_kb, row_.peer_rss_end_kb);
    ended_ = true;
  }

 private:
  void sample(std::uint64_t& self, std::uint64_t& peer) noexcept {
    self = soak::resident_kb();
    if (peer_ != 0) peer = soak::resident_kb(peer_);
  }
  std::uint64_t warm_;
  std::uint64_t last_;
  SoakRow& row_;
  pid_t peer_;
  bool ended_ = false;
};

SoakRow new_row(const std::string& transport, const SoakOptions& o, std::uint32_t senders) {
  SoakRow r;
  r.transport = transport;
  r.messages = o.messages;
  r.senders = senders;
  r.payload = o.payload;
  return r;
}

void finish_row(SoakRow& r, const Verifier& v, std::int64_t start_ns) {
  r.counts = v.finish();
  r.seconds = static_cast<double>(monotonic_ns() - start_ns) / 1e9;
  r.per_sec = r.seconds > 0 ? static_cast<double>(r.counts.received) / r.seconds : 0;
  // Everything a run keeps is mapped before the warm-up ends: the shards' pools at start, the verifier's
  // bitmap when it is made, the receive buffers at their first frames. What grows after that is a leak; 1
  // MiB (or 2% of a larger process) leaves room for the allocator's own bookkeeping, while a leak of one
  // 16-byte allocation per message shows after 70,000 messages.
  const std::uint64_t larger = std::max(r.rss_start_kb, r.peer_rss_start_kb);
  r.rss_bound_kb = std::max<std::uint64_t>(1024, larger / 50);
}

std::vector<int> soak_cpus(const SoakOptions& o) {
  std::vector<int> cpus = resolve_shard_cpus(o.cpus, CpuFacts::current());
  if (cpus.size() < 2) {
    throw Error(Errc::invalid_cpu_set, "moirai soak needs two CPUs (--cpus A,B), receiver and sender; only " +
                                           format_cpu_list(cpus) + " is available");
  }
  return cpus;
}

RuntimeOptions soak_runtime(std::vector<int> cpus) {
  BenchOptions bo;
  RuntimeOptions ro = detail::bench_runtime(bo, std::move(cpus), IdleStrategy::spin_then_sleep);
  ro.stall_budget = std::chrono::nanoseconds(0);  // a receiver checks buffered messages for a long while
  return ro;
}

// Waits for the sending task; its failure becomes the row's unless the receiver already had one.
Task<void> join_sender(TaskHandle<void>& sending, SoakRow& row) {
  try {
    co_await sending.join();
  } catch (const std::exception& e) {
    if (row.failure.empty()) row.failure = std::string("the sender failed: ") + e.what();
  }
}

// --- cross-core channels -------------------------------------------------------------------------------

Task<void> channel_sender(Channel<Slot>& ch, std::uint32_t sender, std::uint64_t n, std::size_t payload) {
  Slot s;
  s.size = static_cast<std::uint32_t>(payload);
  const std::span<std::byte> out(s.bytes.data(), payload);
  for (std::uint64_t seq = 0; seq < n; ++seq) {
    soak::encode(sender, seq, out);
    co_await ch.send(s, static_cast<std::uint16_t>(sender));
  }
}

// One receiver on shard 0; `senders` tasks spread over the other shards, each sending its own sequence.
SoakRow channel_soak(const std::string& name, const SoakOptions& o, std::uint32_t senders) {
  std::vector<int> cpus = soak_cpus(o);
  if (senders == 1) cpus.resize(2);
  SoakRow row = new_row(name, o, senders);
  const std::vector<std::uint64_t> per = soak::split(o.messages, senders);
  Verifier v(per, o.payload);
  Channel<Slot> ch(0, kChannelCapacity);
  RssWatch watch(o.messages, row);
  Runtime rt(soak_runtime(cpus));
  const auto shards = static_cast<unsigned>(cpus.size());
  const std::int64_t start = monotonic_ns();
  rt.run([&]() -> Task<void> {
    auto sending = spawn([&]() -> Task<void> {
      std::vector<TaskHandle<void>> each;
      for (std::uint32_t k = 0; k < senders; ++k) {
        const unsigned shard = 1 + k % (shards - 1);
        each.push_back(spawn([&, k, shard]() -> Task<void> {
          co_await submit_to(shard, [&, k] { return channel_sender(ch, k, per[k], o.payload); });
        }));
      }
      for (auto& h : each)
        co_await join_sender(h, row);
      ch.close();
    });
    std::uint64_t n = 0;
    for (;;) {
      try {
        Envelope<Slot> e = co_await ch.recv(kStallTimeout);
        const std::span<const std::byte> p = e.payload.payload();
        if (p.size() >= 4 &&
            e.sender.channel != (std::to_integer<unsigned>(p[0]) | std::to_integer<unsigned>(p[1]) << 8)) {
          v.reject();
        } else {
          v.check(p);
        }
        watch.at(++n);
      } catch (const TransportError& e) {
        if (!is_closed(e)) row.failure = e.what();
        break;
      }
    }
    watch.end();
    if (!row.failure.empty()) ch.close();
    co_await sending.join();
  });
  finish_row(row, v, start);
  return row;
}

// --- TCP and Unix stream sockets -------------------------------------------------------------------------

SoakRow stream_soak(const std::string& name, const SoakOptions& o) {
  std::vector<int> cpus = soak_cpus(o);
  cpus.resize(2);
  SoakRow row = new_row(name, o, 1);
  Verifier v({o.messages}, o.payload);
  RssWatch watch(o.messages, row);
  Runtime rt(soak_runtime(cpus));
  const SocketAddress listen_at = SocketAddress::parse(
      name == "unix" ? "unix:/tmp/moirai-soak-" + std::to_string(::getpid()) + ".sock" : "127.0.0.1:0");
  StreamListener listener = StreamListener::bind(listen_at);
  const SocketAddress at = listener.local_address();
  FramedOptions fo;
  fo.max_payload = static_cast<std::uint32_t>(std::max<std::size_t>(o.payload, 1));
  const std::int64_t start = monotonic_ns();
  rt.run([&]() -> Task<void> {
    // Pipelined: frames are queued and go out a send buffer at a time; TCP's own window holds the sender.
    auto sending = spawn([&]() -> Task<void> {
      co_await submit_to(1, [&]() -> Task<void> {
        FramedStream c(co_await StreamSocket::connect(at), EndpointId{0, 1, 0}, fo);
        std::vector<std::byte> buf(o.payload);
        for (std::uint64_t seq = 0; seq < o.messages; ++seq) {
          soak::encode(0, seq, buf);
          co_await c.queue(kData, buf);
          // A queue() that only copies, or whose flush went out as one syscall, completes without suspending.
          // The compiler turns each such await into a tail call, but sanitizer builds do not: there the stack
          // would grow with every one until the task suspends. Yielding now and then bounds it.
          if (seq % 256 == 255) co_await yield();
        }
        co_await c.close();
      });
    });
    FramedStream s(co_await listener.accept(), EndpointId{0, 0, 0}, fo);
    std::uint64_t n = 0;
    for (;;) {
      try {
        Frame f = co_await s.recv(kStallTimeout);
        if (f.header.type != kData) {
          v.reject();
        } else {
          v.check(f.payload);
        }
        watch.at(++n);
      } catch (const TransportError& e) {
        if (!is_closed(e)) row.failure = e.what();
        break;
      }
    }
    watch.end();
    co_await s.close();
    co_await join_sender(sending, row);
  });
  finish_row(row, v, start);
  return row;
}

// --- UDP ---------------------------------------------------------------------------------------------------

std::uint64_t read_u64(std::span<const std::byte> p) noexcept {
  std::uint64_t v = 0;
  if (p.size() == sizeof v) std::memcpy(&v, p.data(), sizeof v);
  return v;
}

std::span<const std::byte> as_bytes(const std::uint64_t& v) noexcept {
  return {reinterpret_cast<const std::byte*>(&v), sizeof v};
}

// Sends every message, never more than kUdpWindow beyond what the receiver acknowledged; then the end,
// until the receiver confirms it.
Task<void> udp_sender(FramedDatagramSocket& c, const SoakOptions& o) {
  std::vector<std::byte> buf(o.payload);
  std::uint64_t acked = 0;
  auto await_ack = [&]() -> Task<bool> {  // true: the end was confirmed
    try {
      DatagramFrame f = co_await c.recv(kUdpRetry);
      if (f.header.type == kAck) acked = std::max(acked, read_u64(f.payload));
      co_return f.header.type == kEndAck;
    } catch (const TransportError& e) {
      if (e.errc() != TransportErrc::timeout) throw;
    }
    co_return false;
  };
  for (std::uint64_t seq = 0; seq < o.messages; ++seq) {
    for (unsigned waits = 0; seq - acked >= kUdpWindow; ++waits) {
      // The receiver acknowledges on its own every kUdpRetry it hears nothing, so a lost datagram at the
      // window's end costs a pause, not the run.
      if (waits * kUdpRetry >= kStallTimeout)
        throw TransportError(TransportErrc::timeout, "udp soak: the receiver stopped acknowledging");
      co_await await_ack();
    }
    soak::encode(0, seq, buf);
    co_await c.send(kData, buf);
  }
  const std::uint64_t total = o.messages;
  for (unsigned tries = 0;; ++tries) {
    if (tries * kUdpRetry >= kStallTimeout)
      throw TransportError(TransportErrc::timeout, "udp soak: the receiver never confirmed the end");
    co_await c.send(kEnd, as_bytes(total));
    if (co_await await_ack()) break;
  }
}

SoakRow udp_soak(const SoakOptions& o) {
  std::vector<int> cpus = soak_cpus(o);
  cpus.resize(2);
  SoakRow row = new_row("udp", o, 1);
  Verifier v({o.messages}, o.payload);
  RssWatch watch(o.messages, row);
  Runtime rt(soak_runtime(cpus));
  const SocketAddress any = SocketAddress::parse("127.0.0.1:0");
  const std::int64_t start = monotonic_ns();
  rt.run([&]() -> Task<void> {
    FramedDatagramSocket s = FramedDatagramSocket::bind(any, EndpointId{0, 0, 0});
    const SocketAddress at = s.local_address();
    auto sending = spawn([&]() -> Task<void> {
      co_await submit_to(1, [&]() -> Task<void> {
        FramedDatagramSocket c = FramedDatagramSocket::bind(any, EndpointId{0, 1, 0});
        c.connect(at);
        co_await udp_sender(c, o);
      });
    });
    std::optional<SocketAddress> peer;
    std::uint64_t next = 0;  // one past the highest seq seen: what the ack releases
    std::uint64_t n = 0, since_ack = 0;
    Duration quiet = Duration::zero();
    for (;;) {
      bool nudge = false;  // nothing came for a while: acknowledge again, in case an ack was lost
      try {
        DatagramFrame f = co_await s.recv(kUdpRetry);
        quiet = Duration::zero();
        if (!peer) peer = f.sender_address();
        if (f.header.type == kEnd) {
          co_await s.send_to(*peer, kEndAck, {});
          break;
        }
        if (f.header.type != kData) {
          v.reject();
        } else {
          v.check(f.payload);
          std::uint64_t seq = 0;  // credit is released past a lost datagram too: the check counts it
          if (f.payload.size() >= 16) std::memcpy(&seq, f.payload.data() + 8, sizeof seq);
          if (seq < o.messages) next = std::max(next, seq + 1);
        }
        watch.at(++n);
        if (++since_ack == kUdpAckEvery) {
          since_ack = 0;
          co_await s.send_to(*peer, kAck, as_bytes(next));
        }
      } catch (const TransportError& e) {
        if (e.errc() != TransportErrc::timeout) {
          row.failure = e.what();
          break;
        }
        quiet += kUdpRetry;
        if (quiet >= kStallTimeout) {
          row.failure =
              "udp soak: no datagram for " + std::to_string(kStallTimeout.count() / 1'000'000'000) + " s";
          break;
        }
        nudge = peer.has_value();
      }
      if (nudge) co_await s.send_to(*peer, kAck, as_bytes(next));
    }
    watch.end();
    co_await join_sender(sending, row);
  });
  finish_row(row, v, start);
  return row;
}

// --- shared-memory IPC between two processes ------------------------------------------------------------

// The child: one shard on `cpu` sending every message, then a one-byte end marker; it waits for the
// receiver's one-byte reply (so that its memory can still be read) before it closes. Never returns.
[[noreturn]] void ipc_sender_child(const std::string& name, const IpcOptions& io, const SoakOptions& o,
                                   int cpu) {
  int rc = 0;
  try {
    Runtime rt(soak_runtime({cpu}));
    rc = rt.run([&]() -> Task<int> {
      IpcChannel peer = IpcChannel::open(name, EndpointId{static_cast<std::uint32_t>(::getpid()), 0, 0}, io);
      std::vector<std::byte> buf(o.payload);
      const std::byte end{1};
      try {
        for (std::uint64_t seq = 0; seq < o.messages; ++seq) {
          soak::encode(0, seq, buf);
          co_await peer.send(buf, kStallTimeout);
        }
        co_await peer.send({&end, 1}, kStallTimeout);
        (void)co_await peer.recv(kStallTimeout);
      } catch (const TransportError& e) {
        std::fprintf(stderr, "moirai soak: ipc sender: %s\n", e.what());
        peer.close();
        co_return 2;
      }
      peer.close();
      co_return 0;
    });
  } catch (const std::exception& e) {
    std::fprintf(stderr, "moirai soak: ipc sender: %s\n", e.what());
    rc = 3;
  }
  ::_exit(rc);
}

SoakRow ipc_soak(const SoakOptions& o) {
  std::vector<int> cpus = soak_cpus(o);
  SoakRow row = new_row("ipc", o, 1);
  Verifier v({o.messages}, o.payload);
  const std::string name = "moirai-soak-" + std::to_string(::getpid());
  IpcOptions io;
  io.slot_size = static_cast<std::uint32_t>((o.payload + 16 + 63) / 64 * 64);
  io.sender = EndpointId{static_cast<std::uint32_t>(::getpid()), 0, 0};
  IpcChannel ch = IpcChannel::create(name, io);
  std::fflush(nullptr);  // nothing buffered may be written twice, by both processes
  const pid_t child = ::fork();
  if (child < 0) throw std::runtime_error(std::string("ipc soak: fork failed: ") + std::strerror(errno));
  if (child == 0) ipc_sender_child(name, io, o, cpus[1]);
  RssWatch watch(o.messages, row, child);
  std::int64_t start = monotonic_ns();
  try {
    Runtime rt(soak_runtime({cpus[0]}));
    rt.run([&]() -> Task<void> {
      std::uint64_t n = 0;
      for (;;) {
        try {
          IpcMessage m = co_await ch.recv(kStallTimeout);
          if (m.payload.size() == 1) {  // the end: the sender waits for our word
            watch.end();
            const std::byte done{1};
            co_await ch.send({&done, 1}, kStallTimeout);
            break;
          }
          v.check(m.payload);
          watch.at(++n);
        } catch (const TransportError& e) {
          row.failure = e.what();
          watch.end();
          break;
        }
      }
      ch.close();
    });
  } catch (const std::exception& e) {
    row.failure = e.what();
  }
  ch.close();
  int status = 0;
  ::waitpid(child, &status, 0);
  if (row.failure.empty() && (!WIFEXITED(status) || WEXITSTATUS(status) != 0))
    row.failure = "the sending process failed (wait status " + std::to_string(status) + ")";
  finish_row(row, v, start);
  return row;
}

}  // namespace

const std::vector<std::string>& soak_transports() {
  static const std::vector<std::string> names{"channel", "mpsc", "tcp", "udp", "unix", "ipc"};
  return names;
}

std::size_t soak_max_payload(const std::string& t) {
  if (t == "channel" || t == "mpsc") return kChannelMaxPayload;
  if (t == "udp") return kUdpMaxPayload;
  if (t == "ipc") return 65536 - 16;  // IpcOptions: slots of at most 64 KiB, a 16-byte header each
  return kDefaultMaxFrame;
}

void check_soak_options(const SoakOptions& o) {
  const std::vector<std::string>& known = soak_transports();
  for (const std::string& t : o.transports) {
    if (std::find(known.begin(), known.end(), t) == known.end()) {
      throw Error(Errc::invalid_argument,
                  "--transport " + t + ": use channel, mpsc, tcp, udp, unix, ipc or all");
    }
  }
  if (o.messages == 0)
    throw Error(Errc::invalid_argument, "--messages 0 would check nothing: give at least 1");
  if (o.payload < soak::kMessageHeader) {
    throw Error(Errc::invalid_argument, "--payload " + std::to_string(o.payload) +
                                            " cannot hold the sender, sequence number and checksum: give at "
                                            "least " +
                                            std::to_string(soak::kMessageHeader));
  }
  if (o.senders == 0 || o.senders > 65535 || o.senders > o.messages) {
    throw Error(Errc::invalid_argument,
                "--senders " + std::to_string(o.senders) + ": give 1 to 65535, and no more than --messages");
  }
  for (const std::string& t : o.transports.empty() ? known : o.transports) {
    if (o.payload > soak_max_payload(t)) {
      throw Error(Errc::invalid_argument, "--payload " + std::to_string(o.payload) + " is more than " + t +
                                              " carries in one message (" +
                                              std::to_string(soak_max_payload(t)) +
                                              " bytes): give a smaller payload or another transport");
    }
  }
}

SoakRow run_soak(const std::string& transport, const SoakOptions& o) {
  if (o.progress) std::fprintf(stderr, "moirai soak: %s...\n", transport.c_str());
  if (transport == "channel") return channel_soak(transport, o, 1);
  if (transport == "mpsc") return channel_soak(transport, o, o.senders);
  if (transport == "tcp" || transport == "unix") return stream_soak(transport, o);
  if (transport == "udp") return udp_soak(o);
  if (transport == "ipc") return ipc_soak(o);
  throw Error(Errc::invalid_argument, "moirai soak: no transport " + transport);
}

int soak_main(const SoakOptions& o, std::ostream& out, std::ostream& err, bool json_out) {
  check_soak_options(o);
  std::vector<SoakRow> rows;
  for (const std::string& t : o.transports.empty() ? soak_transports() : o.transports) {
    rows.push_back(run_soak(t, o));
    if (!rows.back().passed()) err << "moirai soak: " << t << " failed: " << rows.back().violations() << '\n';
  }
  if (json_out) {
    out << soak_json(rows) << '\n';
  } else {
    print_soak(out, rows);
  }
  const bool all = std::all_of(rows.begin(), rows.end(), [](const SoakRow& r) { return r.passed(); });
  return all ? 0 : 1;
}

}  // namespace moirai::cli
