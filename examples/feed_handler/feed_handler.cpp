#include "feed_handler.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <iostream>

#include "moirai/core/clock.hpp"
#include "moirai/core/error.hpp"
#include "moirai/core/timer.hpp"
#include "moirai/transport/error.hpp"
#include "moirai/transport/frame.hpp"

namespace moirai::examples::feed {

using transport::SocketAddress;
using transport::TransportErrc;
using transport::TransportError;

const char* to_string(PacketStatus s) noexcept {
  switch (s) {
    case PacketStatus::ok:
      return "ok";
    case PacketStatus::too_short:
      return "shorter than a packet header";
    case PacketStatus::bad_magic:
      return "not a quote packet (bad magic)";
    case PacketStatus::bad_count:
      return "quote count disagrees with the datagram's length";
  }
  return "?";
}

bool is_multicast(const SocketAddress& a) noexcept {
  if (a.family() == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(a.data());
    return IN_MULTICAST(ntohl(in->sin_addr.s_addr));
  }
  if (a.family() == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(a.data());
    return IN6_IS_ADDR_MULTICAST(&in6->sin6_addr);
  }
  return false;
}

std::string host_of(const SocketAddress& a) {
  char text[INET6_ADDRSTRLEN] = {};
  if (a.family() == AF_INET) {
    ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(a.data())->sin_addr, text, sizeof text);
  } else if (a.family() == AF_INET6) {
    ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(a.data())->sin6_addr, text, sizeof text);
  }
  return text;
}

// One TCP subscriber: two fixed buffers, one being filled by the feed while the other is in the kernel.
struct FeedHandler::Subscriber {
  transport::StreamSocket socket;
  std::unique_ptr<std::byte[]> buffers[2];
  std::size_t used[2] = {0, 0};
  int filling = 0;
  bool dead = false;
  Event ready;
  TaskHandle<void> writer;
  std::string peer;
};

namespace {
constexpr std::size_t kFrameBytes = transport::kFrameHeaderSize + kUpdateSize;
constexpr std::int64_t kLogEveryNs = 1'000'000'000;
constexpr std::uint64_t kYieldEvery = 32;

// A feed arrives in bursts; the socket's buffer is what absorbs one while the shard is busy. Asks for
// `bytes`, past the system's rmem_max where the process may (SO_RCVBUFFORCE needs CAP_NET_ADMIN).
void size_receive_buffer(int fd, std::size_t bytes) {
  if (bytes == 0) return;
  const int want = static_cast<int>(std::min<std::size_t>(bytes, 1u << 30));
  if (::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &want, sizeof want) != 0)
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &want, sizeof want);  // capped at net.core.rmem_max
}

transport::DatagramSocket bind_feed(const FeedOptions& o) {
  const SocketAddress at = SocketAddress::parse(o.feed);
  transport::DatagramOptions d;
  d.recv.buffers = o.receive_buffers;
  const bool group = is_multicast(at);
  d.reuse_address = group;  // several handlers (or a handler and a recorder) may listen to one group
  transport::DatagramSocket s = transport::DatagramSocket::bind(at, d);
  size_receive_buffer(s.fd(), o.socket_buffer);
  if (group) s.join(host_of(at), o.interface);
  return s;
}

void check(const FeedOptions& o) {
  if (o.symbols == 0) throw Error(Errc::invalid_argument, "feed handler: symbols is 0; give at least 1");
  if (o.subscriber_buffer < kFrameBytes) {
    throw Error(Errc::invalid_argument,
                "feed handler: subscriber_buffer " + std::to_string(o.subscriber_buffer) +
                    " cannot hold one update; give at least " + std::to_string(kFrameBytes) + " bytes");
  }
}
}  // namespace

FeedHandler::FeedHandler(FeedOptions options)
    : options_((check(options), std::move(options))),
      socket_(bind_feed(options_)),
      listener_(transport::StreamListener::bind(SocketAddress::parse(options_.publish))),
      book_(options_.symbols) {
  // What the kernel granted; fixed from here on, so read once rather than on every stats().
  int bytes = 0;
  socklen_t size = sizeof bytes;
  if (::getsockopt(socket_.fd(), SOL_SOCKET, SO_RCVBUF, &bytes, &size) == 0)
    stats_.socket_buffer = static_cast<std::size_t>(bytes);
  if (!options_.ipc_name.empty()) {
    transport::IpcOptions io;
    io.slot_size = 64;  // an update and its 16-byte header: one cache line
    io.capacity = 8192;
    io.sender = transport::EndpointId{static_cast<std::uint32_t>(::getpid()), 0, 0};
    ipc_.emplace(transport::IpcChannel::create(options_.ipc_name, io));
  }
}

FeedHandler::~FeedHandler() = default;

const FeedStats& FeedHandler::stats() const noexcept {
  stats_.sequence = sequence_.stats();
  stats_.subscribers = subscribers_.size();
  stats_.kernel_drops = socket_.kernel_drops();
  return stats_;
}

void FeedHandler::stop() noexcept {
  stopping_ = true;
  stopped_.set();
}

Task<void> FeedHandler::settle(Duration quiet, Duration limit) {
  const std::int64_t give_up = deadline_after(limit);
  const std::int64_t quiet_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(quiet).count();
  std::uint64_t seen = stats_.datagrams;
  std::int64_t since = monotonic_ns();
  while (monotonic_ns() - since < quiet_ns && monotonic_ns() < give_up) {
    co_await sleep_for(std::chrono::milliseconds(5));
    if (stats_.datagrams != seen) {
      seen = stats_.datagrams;
      since = monotonic_ns();
    }
  }
}

Task<void> FeedHandler::run() {
  auto receiving = spawn(receive_loop());
  auto accepting = spawn(accept_loop());
  co_await stopped_.wait();
  receiving.cancel();
  accepting.cancel();
  for (TaskHandle<void>* t : {&receiving, &accepting}) {
    try {
      co_await t->join();
    } catch (const TaskCancelled&) {
    }
  }
  for (auto& s : subscribers_) {
    s->dead = true;
    s->writer.cancel();
  }
  for (auto& s : subscribers_) {
    try {
      co_await s->writer.join();
    } catch (const std::exception&) {  // cancelled, or the peer's error: it is closing either way
    }
  }
  subscribers_.clear();
  if (ipc_) ipc_->close();
}

Task<void> FeedHandler::receive_loop() {
  for (std::uint64_t n = 1;; ++n) {
    // A receive that finds a datagram already queued completes without suspending: after a burst, let the
    // subscribers' writers (on this shard) send what was published before taking more.
    if (n % kYieldEvery == 0) co_await yield();
    transport::Datagram d = co_await socket_.recv();
    ++stats_.datagrams;
    if (d.truncated) {
      ++stats_.malformed;
      if (may_log(last_malformed_log_ns_))
        log("malformed datagram from " + d.sender_address().to_string() +
            ": longer than the receive buffer; dropped");
      continue;
    }
    handle(d.payload);
    if (dirty_) flush_subscribers();
    // A subscriber's buffer is half full: let its writer hand it to the kernel before the next packet, so
    // that only a subscriber whose previous send is still in the kernel can fill it.
    if (pressure_) {
      pressure_ = false;
      co_await yield();
    }
  }
}

void FeedHandler::handle(std::span<const std::byte> datagram) {
  const PacketView p = decode_packet(datagram);
  if (p.status != PacketStatus::ok) {
    ++stats_.malformed;
    if (may_log(last_malformed_log_ns_))
      log(std::string("malformed datagram (") + std::to_string(datagram.size()) +
          " bytes): " + to_string(p.status) + "; dropped");
    return;
  }
  const SequenceTracker::Verdict v = sequence_.on_packet(p.seq, p.count);
  if (v.missing != 0) {
    if (may_log(last_gap_log_ns_))
      log("gap: " + std::to_string(v.missing) + " quotes missing before seq " + std::to_string(p.seq) + " (" +
          std::to_string(sequence_.stats().gaps) + " gaps so far)");
  }
  for (std::size_t i = v.first; i < p.count; ++i) {
    const Quote q = p.quote(i);
    switch (book_.apply(p.seq + i, q)) {
      case Book::Apply::changed:
        ++stats_.quotes;
        ++stats_.changes;
        publish(Update{p.seq + i, q});
        break;
      case Book::Apply::unchanged:
        ++stats_.quotes;
        break;
      case Book::Apply::unknown_symbol:
        ++stats_.unknown_symbol;
        break;
    }
  }
}

void FeedHandler::publish(const Update& u) noexcept {
  std::array<std::byte, kFrameBytes> frame;
  transport::write_frame_header(
      transport::FrameHeader{static_cast<std::uint32_t>(kUpdateSize), kUpdateFrameType, {}},
      std::span<std::byte, transport::kFrameHeaderSize>(frame.data(), transport::kFrameHeaderSize));
  write_update(u, std::span<std::byte, kUpdateSize>(frame.data() + transport::kFrameHeaderSize, kUpdateSize));
  for (auto& s : subscribers_) {
    if (s->dead) continue;
    std::size_t& used = s->used[s->filling];
    if (used + kFrameBytes > options_.subscriber_buffer) {
      cut(s.get());
      continue;
    }
    std::memcpy(s->buffers[s->filling].get() + used, frame.data(), kFrameBytes);
    used += kFrameBytes;
    if (used > options_.subscriber_buffer / 2) pressure_ = true;
    ++stats_.published_tcp;
    dirty_ = true;
  }
  if (ipc_) {
    try {
      if (ipc_->try_send(std::span<const std::byte>(frame).subspan(transport::kFrameHeaderSize))) {
        ++stats_.published_ipc;
      } else {
        ++stats_.ipc_dropped;
      }
    } catch (const TransportError& e) {  // the strategy process closed or died: the feed goes on without it
      if (may_log(last_cut_log_ns_))
        log(std::string("ipc channel ") + options_.ipc_name + " ended: " + e.what());
      ipc_.reset();
    }
  }
}

void FeedHandler::flush_subscribers() noexcept {
  dirty_ = false;
  for (auto& s : subscribers_) {
    if (!s->dead && s->used[s->filling] != 0) s->ready.set();
  }
  reap_subscribers();
}

void FeedHandler::cut(Subscriber* s) noexcept {
  s->dead = true;
  s->writer.cancel();
  ++stats_.subscribers_cut;
  if (may_log(last_cut_log_ns_))
    log("subscriber " + s->peer + " cut: " + std::to_string(options_.subscriber_buffer) +
        " bytes of updates queued while its previous send was still in the kernel");
}

void FeedHandler::reap_subscribers() noexcept {
  std::erase_if(subscribers_,
                [](const std::unique_ptr<Subscriber>& s) { return s->dead && s->writer.done(); });
}

Task<void> FeedHandler::accept_loop() {
  for (;;) {
    transport::StreamSocket socket;
    try {
      socket = co_await listener_.accept();
    } catch (const TransportError& e) {  // EMFILE and the like: the next accept may succeed
      if (may_log(last_cut_log_ns_)) log(std::string("accept: ") + e.what());
      continue;
    }
    reap_subscribers();
    if (subscribers_.size() >= options_.max_subscribers) {
      if (may_log(last_cut_log_ns_))
        log("subscriber refused: max_subscribers (" + std::to_string(options_.max_subscribers) +
            ") are connected");
      continue;  // closes `socket`
    }
    auto s = std::make_unique<Subscriber>();
    s->peer = SocketAddress::of_peer(socket.fd()).to_string();
    s->socket = std::move(socket);
    for (auto& b : s->buffers)
      b = std::make_unique<std::byte[]>(options_.subscriber_buffer);
    s->writer = spawn(write_loop(s.get()));
    subscribers_.push_back(std::move(s));
    ++stats_.subscribers_accepted;
  }
}

Task<void> FeedHandler::write_loop(Subscriber* s) {
  try {
    for (;;) {
      while (s->used[s->filling] == 0) {
        s->ready.reset();
        co_await s->ready.wait();
      }
      const int sending = s->filling;
      s->filling ^= 1;
      co_await s->socket.send_all(std::span<const std::byte>(s->buffers[sending].get(), s->used[sending]));
      s->used[sending] = 0;
    }
  } catch (const TransportError&) {
    if (!s->dead) ++stats_.subscribers_lost;
  } catch (const TaskCancelled&) {
  }
  s->dead = true;
}

bool FeedHandler::may_log(std::int64_t& last_ns) const noexcept {
  if (!options_.log) return false;
  const std::int64_t now = monotonic_ns();
  if (now - last_ns < kLogEveryNs) return false;
  last_ns = now;
  return true;
}

void FeedHandler::log(const std::string& line) {
  std::cerr << "feed handler: " << line << '\n';
}

}  // namespace moirai::examples::feed
