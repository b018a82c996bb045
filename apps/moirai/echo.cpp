#include "echo.hpp"

#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <iostream>
#include <memory>

#include "framing_options.hpp"
#include "json_writer.hpp"
#include "metrics_option.hpp"
#include "moirai/core/cpu_set.hpp"
#include "moirai/core/error.hpp"
#include "moirai/core/histogram.hpp"
#include "moirai/core/io.hpp"
#include "moirai/core/runtime.hpp"
#include "moirai/core/spawn.hpp"
#include "moirai/transport/error.hpp"
#include "moirai/transport/framed_datagram.hpp"
#include "moirai/transport/framed_server.hpp"
#include "report.hpp"

namespace moirai::cli {
namespace {

using namespace moirai::transport;

constexpr std::uint16_t kEchoType = 1;

RuntimeOptions one_shard(const EchoOptions& o) {
  RuntimeOptions ro;
  ro.cpus = {resolve_shard_cpus(o.cpus, CpuFacts::current()).front()};
  ro.idle = o.idle.empty() ? IdleStrategy::spin_then_sleep : parse_idle_strategy(o.idle);
  ro.metrics = !o.metrics.empty();  // the histograms cost a clock read per wake-up: only when served
  // The metrics listener, and a UDP server's socket, are bound once the runtime runs.
  apply_caps_options(o.caps, ro, {o.metrics, o.transport == "udp" ? o.address : std::string()});
  return ro;
}

void check_transport(const EchoOptions& o) {
  if (o.transport != "tcp" && o.transport != "unix" && o.transport != "udp") {
    throw Error(Errc::invalid_argument, "--transport " + o.transport + ": use tcp, udp or unix");
  }
}

// SIGINT and SIGTERM, blocked in this thread (and so in the shards it starts) and read from a signalfd.
class StopSignals {
 public:
  StopSignals() {
    sigemptyset(&set_);
    sigaddset(&set_, SIGINT);
    sigaddset(&set_, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set_, &old_);
    fd_ = ::signalfd(-1, &set_, SFD_CLOEXEC | SFD_NONBLOCK);
    if (fd_ < 0) throw Error(Errc::invalid_argument, std::string("signalfd: ") + std::strerror(errno));
  }
  ~StopSignals() {
    ::close(fd_);
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

  // Resumes with the signal's number when one arrives.
  Task<int> next() {
    signalfd_siginfo info{};
    const int fd = fd_;
    const int res = co_await async_read(fd, &info, sizeof info);
    co_return res == static_cast<int>(sizeof info) ? static_cast<int>(info.ssi_signo) : 0;
  }

 private:
  sigset_t set_{};
  sigset_t old_{};
  int fd_ = -1;
};

struct Echo {
  Task<void> operator()(FramedStream& c, const Frame& f) { co_await c.send(f.header.type, f.payload); }
};

void print_stats(std::ostream& out, const ServerStats& st) {
  out << "moirai echo: served " << st.accepted << " connections, " << st.frames << " frames; closed:";
  for (std::size_t i = 0; i < st.closed.size(); ++i) {
    if (st.closed[i] != 0) out << ' ' << to_string(static_cast<CloseReason>(i)) << ' ' << st.closed[i] << ';';
  }
  out << '\n';
}

}  // namespace

std::string echo_address(const EchoOptions& o) {
  check_transport(o);
  if (o.address.empty())
    throw Error(Errc::invalid_argument, "no address: give HOST:PORT (or a path for unix)");
  if (o.transport == "unix" && o.address.rfind("unix:", 0) != 0) return "unix:" + o.address;
  if (o.transport != "unix" && o.address.rfind("unix:", 0) == 0) {
    throw Error(Errc::invalid_argument,
                o.address + " is a Unix socket path; use --transport unix, or give HOST:PORT");
  }
  return o.address;
}

namespace {

// UDP: every datagram that is one acceptable frame goes back to its sender; the rest are dropped and counted.
int udp_echo_server(const SocketAddress& at, const EchoOptions& o, std::ostream& out) {
  StopSignals signals;
  Runtime rt(one_shard(o));
  int signal = 0;
  DatagramStats stats;
  rt.run([&]() -> Task<void> {
    serve_metrics_if_asked(o.metrics);
    FramedDatagramSocket s = FramedDatagramSocket::bind(
        at, EndpointId{static_cast<std::uint32_t>(::getpid()), 0, 0}, datagram_framing(o.poll_when_idle));
    out << "moirai echo: listening on " << s.local_address().to_string() << " (udp); SIGINT or SIGTERM stops"
        << std::endl;
    auto serving = spawn([&]() -> Task<void> {
      for (;;) {
        DatagramFrame f = co_await s.recv();
        const SocketAddress from = f.sender_address();
        try {
          co_await s.send_to(from, f.header.type, f.payload);
        } catch (const TransportError&) {  // that sender is gone (ICMP unreachable): serve the others
        }
      }
    });
    signal = co_await signals.next();
    serving.cancel();
    try {
      co_await serving.join();
    } catch (const TaskCancelled&) {
    }
    stats = s.stats();
  });
  out << "moirai echo: stopped by " << (signal != 0 ? strsignal(signal) : "the runtime") << '\n';
  out << "moirai echo: served " << stats.frames << " frames; dropped:";
  for (std::size_t i = 0; i < stats.dropped.size(); ++i) {
    if (stats.dropped[i] != 0)
      out << ' ' << to_string(static_cast<DropReason>(i)) << ' ' << stats.dropped[i] << ';';
  }
  if (stats.dropped_total() == 0) out << " none";
  out << '\n';
  return 0;
}

}  // namespace

int echo_server(const EchoOptions& o, std::ostream& out) {
  const SocketAddress at = SocketAddress::parse(echo_address(o));
  if (o.transport == "udp") return udp_echo_server(at, o, out);
  StopSignals signals;
  Runtime rt(one_shard(o));
  ServerOptions so;
  so.self = EndpointId{static_cast<std::uint32_t>(::getpid()), 0, 0};
  so.framing = stream_framing(o.poll_when_idle);
  FramedServer server(StreamListener::bind(at), so);
  out << "moirai echo: listening on " << server.local_address().to_string() << " (" << o.transport
      << "); SIGINT or SIGTERM stops" << std::endl;
  int signal = 0;
  rt.run([&]() -> Task<void> {
    serve_metrics_if_asked(o.metrics);
    auto watcher = spawn([&]() -> Task<void> {
      signal = co_await signals.next();
      server.stop();
    });
    co_await server.serve(Echo{});
  });
  out << "moirai echo: stopped by " << (signal != 0 ? strsignal(signal) : "the runtime") << '\n';
  print_stats(out, server.stats());
  return 0;
}

namespace {

// What a client run counted.
struct ClientCounts {
  std::uint64_t sent = 0, echoed = 0, wrong = 0, late = 0;
  std::string failure;
};

// Sends o.count numbered messages over `c` one at a time and checks every reply. Over TCP and Unix sockets a
// reply that does not come is the end (the stream is broken); over UDP it is counted missing and the next
// message goes out, and a reply that arrives after its time (an earlier message's) is counted late.
template <class Conn>
Task<void> client_loop(Conn& c, const EchoOptions& o, Duration timeout, bool datagram, LatencyHistogram& hist,
                       ClientCounts& n) {
  std::vector<std::byte> payload(o.size - kFrameHeaderSize);
  for (std::uint64_t i = 0; i < o.count; ++i) {
    std::memcpy(payload.data(), &i, sizeof i);
    for (std::size_t k = sizeof i; k < payload.size(); ++k)
      payload[k] = static_cast<std::byte>(i + k);
    const std::int64_t t0 = monotonic_ns();
    co_await c.send(kEchoType, payload);
    ++n.sent;
    for (;;) {
      std::uint16_t type = 0;
      std::span<const std::byte> got;
      try {
        auto f = co_await c.recv(timeout);
        type = f.header.type;
        got = f.payload;
      } catch (const TransportError& e) {
        if (!datagram || e.errc() != TransportErrc::timeout) throw;
        break;  // lost: counted missing at the end
      }
      std::uint64_t seq = ~std::uint64_t{0};
      if (got.size() >= sizeof seq) std::memcpy(&seq, got.data(), sizeof seq);
      if (datagram && seq < i) {
        ++n.late;
        continue;
      }
      hist.record(static_cast<std::uint64_t>(monotonic_ns() - t0));
      ++n.echoed;
      if (type != kEchoType || got.size() != payload.size() ||
          std::memcmp(got.data(), payload.data(), payload.size()) != 0) {
        ++n.wrong;
      }
      break;
    }
  }
}

}  // namespace

int echo_client(const EchoOptions& o, std::ostream& out) {
  const SocketAddress at = SocketAddress::parse(echo_address(o));
  if (o.size < kFrameHeaderSize + 8) {
    throw Error(Errc::invalid_argument, "--size " + std::to_string(o.size) +
                                            " leaves no room for a sequence number: give at least " +
                                            std::to_string(kFrameHeaderSize + 8) + " (16-byte header + 8)");
  }
  Runtime rt(one_shard(o));
  auto hist = std::make_unique<LatencyHistogram>();
  ClientCounts n;
  const Duration timeout = std::chrono::nanoseconds(static_cast<long long>(o.timeout_s * 1e9));
  const EndpointId self{static_cast<std::uint32_t>(::getpid()), 0, 0};
  rt.run([&]() -> Task<void> {
    serve_metrics_if_asked(o.metrics);
    if (o.transport == "udp") {
      FramedDatagramSocket c =
          FramedDatagramSocket::bind(SocketAddress::parse(at.family() == AF_INET6 ? "[::]:0" : "0.0.0.0:0"),
                                     self, datagram_framing(o.poll_when_idle));
      c.connect(at);
      try {
        co_await client_loop(c, o, timeout, true, *hist, n);
      } catch (const TransportError& e) {
        // A connected UDP socket hears of a port nobody listens on (ICMP port unreachable) as a refusal.
        if (e.errc() == TransportErrc::connection_refused && n.echoed == 0)
          throw Error(Errc::invalid_argument, "connect to " + at.to_string() + " (udp): " + e.what());
        n.failure = e.what();
      }
      co_return;
    }
    FramedStream c(co_await StreamSocket::connect(at, timeout, RetryPolicy{5}), self,
                   stream_framing(o.poll_when_idle));
    try {
      co_await client_loop(c, o, timeout, false, *hist, n);
    } catch (const TransportError& e) {
      n.failure = e.what();
    }
    co_await c.close();
  });
  const std::uint64_t missing = o.count - n.echoed;
  BenchReport r;
  r.bench = "echo";
  BenchRow row = summarize("moirai.echo." + o.transport, *hist);
  r.rows.push_back(row);
  r.note = std::to_string(n.sent) + " sent, " + std::to_string(n.echoed) + " echoed, " +
           std::to_string(n.wrong) + " wrong, " + std::to_string(missing) + " missing; " +
           (n.late != 0 ? std::to_string(n.late) + " late replies ignored; " : std::string()) +
           std::to_string(o.size) + "-byte messages to " + at.to_string() +
           (n.failure.empty() ? "" : "; stopped by: " + n.failure);
  if (o.json) {
    out << to_json(r) << '\n';
  } else {
    print_table(out, r);
  }
  return n.wrong == 0 && missing == 0 ? 0 : 1;
}

}  // namespace moirai::cli
