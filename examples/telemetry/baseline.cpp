#include "baseline.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <exception>
#include <string>
#include <thread>
#include <vector>

#include "aggregator.hpp"
#include "moirai/core/clock.hpp"
#include "moirai/core/cpu_set.hpp"
#include "moirai/core/error.hpp"
#include "moirai/core/pacer.hpp"
#include "moirai/transport/frame.hpp"
#include "sample.hpp"
#include "telemetry_load.hpp"

namespace moirai::examples::telemetry {

namespace {

[[noreturn]] void fail(const std::string& what) {
  throw Error(Errc::invalid_argument, "telemetry baseline: " + what + ": " + std::strerror(errno));
}

[[noreturn]] void bad(const std::string& what) {
  throw Error(Errc::invalid_argument, "telemetry baseline: " + what);
}

struct Fd {
  int fd = -1;
  Fd() = default;
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  Fd(Fd&& o) noexcept : fd(o.fd) { o.fd = -1; }
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

// One receiving connection: bytes that arrived and are not yet a whole frame.
struct Inbound {
  Fd sock;
  std::vector<std::byte> buf = std::vector<std::byte>(256 * 1024);
  std::size_t filled = 0;
  bool ended = false;
};

}  // namespace

TcpBaselineStats tcp_syscall_baseline(const TcpBaselineOptions& o, LatencyHistogram& latency) {
  if (o.connections == 0) bad("connections 0: give at least 1");
  if (o.batch == 0 || o.batch > kMaxSamplesPerBatch)
    bad("batch " + std::to_string(o.batch) + ": give 1 to " + std::to_string(kMaxSamplesPerBatch));
  if (o.keys == 0) bad("keys 0: give at least 1");
  if (!(o.rate > 0)) bad("rate must be above 0");
  if (!(o.seconds > 0)) bad("seconds must be above 0");

  // The connections, set up before either thread starts: the sender's ends blocking, the receiver's not.
  Fd listener;
  listener.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listener.fd < 0) fail("socket");
  sockaddr_in at{};
  at.sin_family = AF_INET;
  at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(listener.fd, reinterpret_cast<const sockaddr*>(&at), sizeof at) != 0) fail("bind");
  socklen_t len = sizeof at;
  if (::getsockname(listener.fd, reinterpret_cast<sockaddr*>(&at), &len) != 0) fail("getsockname");
  if (::listen(listener.fd, static_cast<int>(o.connections)) != 0) fail("listen");
  std::vector<Fd> tx(o.connections);
  std::vector<Inbound> rx(o.connections);
  for (unsigned i = 0; i < o.connections; ++i) {
    tx[i].fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (tx[i].fd < 0) fail("socket");
    const int one = 1;
    ::setsockopt(tx[i].fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    // A receiver that stopped reading cannot hold the sender in a blocking send for ever.
    const timeval give_up{2, 0};
    ::setsockopt(tx[i].fd, SOL_SOCKET, SO_SNDTIMEO, &give_up, sizeof give_up);
    if (::connect(tx[i].fd, reinterpret_cast<const sockaddr*>(&at), sizeof at) != 0) fail("connect");
    rx[i].sock.fd = ::accept4(listener.fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (rx[i].sock.fd < 0) fail("accept");
  }

  TcpBaselineStats st;
  st.connections = o.connections;
  std::atomic<bool> stop{false};  // the receiver failed: the sender stops
  std::exception_ptr receiver_error;
  std::thread receiver([&] {
    try {
      pin_current_thread(o.receiver_cpu);
      Aggregator aggregator(16'384);  // a collector shard's default table
      std::vector<std::int64_t> intended(kMaxSamplesPerBatch);
      unsigned open = o.connections;
      while (open > 0) {
        for (Inbound& in : rx) {
          if (in.ended) continue;
          const ssize_t n =
              ::recv(in.sock.fd, in.buf.data() + in.filled, in.buf.size() - in.filled, MSG_DONTWAIT);
          if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) continue;
            fail("recv");
          }
          if (n == 0) {
            in.ended = true;
            --open;
            continue;
          }
          in.filled += static_cast<std::size_t>(n);
          std::size_t used = 0;
          for (;;) {
            const auto f =
                transport::parse_frame(std::span<const std::byte>(in.buf.data() + used, in.filled - used));
            if (f.status == transport::ParseStatus::need_more) break;
            if (f.status == transport::ParseStatus::error) {
              errno = EPROTO;
              fail("bytes that are not a frame");
            }
            used += f.consumed;
            BatchHeader h;
            if (f.header.type != kBatchFrameType || !read_batch_header(f.payload, h)) {
              ++st.malformed;
              continue;
            }
            std::size_t taken = 0;
            for (std::uint32_t i = 0; i < h.count; ++i) {
              Sample s;
              if (read_sample(f.payload, i, s) && aggregator.add(s) == AddResult::added) {
                intended[taken++] = s.intended_ns;
              } else {
                ++st.refused;
              }
            }
            // The batch is in the aggregates now (when the collector would stamp its ack).
            const std::int64_t now = monotonic_ns();
            for (std::size_t i = 0; i < taken; ++i)
              latency.record(static_cast<std::uint64_t>(now > intended[i] ? now - intended[i] : 0));
            st.folded += taken;
            ++st.received_batches;
          }
          if (used > 0) {
            std::memmove(in.buf.data(), in.buf.data() + used, in.filled - used);
            in.filled -= used;
          }
        }
      }
      st.keys = aggregator.keys();
    } catch (...) {
      receiver_error = std::current_exception();
      stop.store(true);
    }
  });

  std::exception_ptr sender_error;
  std::thread sender([&] {
    try {
      pin_current_thread(o.sender_cpu);
      const std::vector<std::string> keys = load_keys("load", o.keys);
      std::vector<Sample> samples(o.batch);
      std::vector<std::byte> frame(transport::kFrameHeaderSize + batch_size(o.batch));
      transport::FrameHeader header;
      header.length = static_cast<std::uint32_t>(batch_size(o.batch));
      header.type = kBatchFrameType;
      write_frame_header(header, std::span<std::byte, transport::kFrameHeaderSize>(
                                     frame.data(), transport::kFrameHeaderSize));
      const std::span<std::byte> payload(frame.data() + transport::kFrameHeaderSize, batch_size(o.batch));
      const double step_ns = 1e9 * o.batch / o.rate;
      WakeMargin margin;
      const std::int64_t start = monotonic_ns();
      const std::int64_t end = start + static_cast<std::int64_t>(o.seconds * 1e9);
      std::uint64_t n = 0;  // samples made so far: sample n is for key n % keys
      for (std::uint64_t step = 0; !stop.load(std::memory_order_relaxed); ++step) {
        const auto intended = start + static_cast<std::int64_t>(static_cast<double>(step) * step_ns);
        if (intended >= end) break;
        pace_thread_until(intended, margin);  // the load's pacing, off a shard
        if (monotonic_ns() > intended + static_cast<std::int64_t>(step_ns)) ++st.behind;
        for (unsigned i = 0; i < o.batch; ++i, ++n) {
          const std::size_t k = n % o.keys;
          make_sample(keys[k], load_kind(k), load_value(n, load_kind(k)), intended, samples[i]);
        }
        write_batch(step, samples, payload);
        const int fd = tx[step % o.connections].fd;
        for (std::size_t off = 0; off < frame.size();) {
          const ssize_t w = ::send(fd, frame.data() + off, frame.size() - off, MSG_NOSIGNAL);
          if (w < 0) {
            if (errno == EINTR) continue;
            fail("send");
          }
          off += static_cast<std::size_t>(w);
        }
        ++st.sent_batches;
        st.sent_samples += o.batch;
      }
    } catch (...) {
      sender_error = std::current_exception();
    }
    // The end of the stream tells the receiver that everything sent has arrived once it reads it.
    for (Fd& t : tx)
      ::shutdown(t.fd, SHUT_WR);
  });
  sender.join();
  receiver.join();
  if (receiver_error) std::rethrow_exception(receiver_error);
  if (sender_error) std::rethrow_exception(sender_error);
  return st;
}

}  // namespace moirai::examples::telemetry
