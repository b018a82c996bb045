#include "load.hpp"

#include <unistd.h>

#include <cmath>
#include <vector>

#include "feed_handler.hpp"
#include "moirai/core/clock.hpp"
#include "moirai/core/error.hpp"
#include "moirai/core/pacer.hpp"
#include "moirai/transport/datagram_socket.hpp"
#include "moirai/transport/error.hpp"
#include "moirai/transport/framed_stream.hpp"
#include "quote.hpp"

namespace moirai::examples::feed {

using transport::SocketAddress;
using transport::TransportErrc;
using transport::TransportError;

namespace {

void check(const GeneratorOptions& o) {
  auto bad = [](const std::string& what) { throw Error(Errc::invalid_argument, "feed generator: " + what); };
  if (!(o.rate > 0) || !std::isfinite(o.rate)) bad("rate " + std::to_string(o.rate) + " must be above 0");
  if (o.quotes_per_packet == 0 || o.quotes_per_packet > kMaxQuotesPerPacket) {
    bad("quotes per packet " + std::to_string(o.quotes_per_packet) + ": give 1 to " +
        std::to_string(kMaxQuotesPerPacket) + " (what one 1472-byte datagram holds)");
  }
  if (o.burst == 0) bad("burst 0: give at least 1 packet per step");
  if (o.symbols == 0) bad("symbols 0: give at least 1");
  if (o.duration <= Duration::zero()) bad("duration must be above 0");
}

// xorshift64*: a fixed, cheap sequence so that a run can be repeated.
struct Random {
  std::uint64_t s;
  std::uint64_t next() noexcept {
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    return s * 2685821657736338717ull;
  }
};

// Each symbol's book moves by a tick or two at random; one quote in eight repeats the last one, which a
// handler must take without publishing.
struct Market {
  explicit Market(std::uint32_t symbols, std::uint64_t seed) : rng{seed | 1}, last(symbols) {
    for (std::uint32_t i = 0; i < symbols; ++i) {
      last[i].symbol = i;
      last[i].bid = 1'000'000 + 100 * i;
      last[i].ask = last[i].bid + 100;
      last[i].bid_size = last[i].ask_size = 100;
    }
  }
  Quote next(std::int64_t sent_ns) noexcept {
    const std::uint64_t r = rng.next();
    Quote& q = last[r % last.size()];
    if ((r >> 20) % 8 != 0) {
      const std::int64_t move = static_cast<std::int64_t>((r >> 24) % 5) - 2;
      q.bid += move * 100;
      q.ask = q.bid + 100 * static_cast<std::int64_t>(1 + (r >> 28) % 2);
      q.bid_size = static_cast<std::uint32_t>(100 + (r >> 32) % 900);
      q.ask_size = static_cast<std::uint32_t>(100 + (r >> 42) % 900);
    }
    q.sent_ns = sent_ns;
    return q;
  }
  Random rng;
  std::vector<Quote> last;
};

}  // namespace

Task<GeneratorStats> generate(GeneratorOptions o) {
  check(o);
  const SocketAddress to = SocketAddress::parse(o.to);
  transport::DatagramSocket s =
      transport::DatagramSocket::bind(SocketAddress::parse(to.family() == AF_INET6 ? "[::]:0" : "0.0.0.0:0"));
  if (is_multicast(to)) {
    s.set_multicast_loopback(true);
    if (!o.interface.empty()) s.set_multicast_interface(o.interface);
  }
  Market market(o.symbols, o.seed);
  std::array<Quote, kMaxQuotesPerPacket> quotes;
  std::array<std::byte, kMaxPacketSize> packet;
  const double step_ns = 1e9 * o.burst * o.quotes_per_packet / o.rate;
  GeneratorStats st;
  st.started_ns = monotonic_ns();
  const std::int64_t end_ns =
      st.started_ns + std::chrono::duration_cast<std::chrono::nanoseconds>(o.duration).count();
  std::uint64_t seq = o.first_seq;
  WakeMargin margin;
  for (std::uint64_t step = 0;; ++step) {
    const auto intended = st.started_ns + static_cast<std::int64_t>(static_cast<double>(step) * step_ns);
    if (intended >= end_ns) break;
    co_await pace_until(intended, margin);
    if (monotonic_ns() > intended + static_cast<std::int64_t>(step_ns)) ++st.behind;
    for (unsigned b = 0; b < o.burst; ++b) {
      for (unsigned i = 0; i < o.quotes_per_packet; ++i)
        quotes[i] = market.next(intended);
      const std::uint64_t packet_index = st.packets + st.skipped_packets + 1;
      if (o.skip_every != 0 && packet_index % o.skip_every == 0) {
        ++st.skipped_packets;
        st.skipped_quotes += o.quotes_per_packet;
      } else {
        const std::size_t n =
            write_packet(seq, std::span<const Quote>(quotes.data(), o.quotes_per_packet), packet);
        co_await s.send_to(to, std::span<const std::byte>(packet.data(), n));
        ++st.packets;
        st.quotes += o.quotes_per_packet;
      }
      seq += o.quotes_per_packet;
    }
  }
  st.ended_ns = monotonic_ns();
  co_return st;
}

namespace {
// Records one update: its latency from the quote's intended send time, and whether it is newer than the last
// update seen for its symbol.
void take(std::span<const std::byte> payload, std::vector<std::uint64_t>& last_seq, LatencyHistogram& latency,
          ConsumerStats& stats) {
  Update u;
  if (!read_update(payload, u)) {
    ++stats.malformed;
    return;
  }
  const std::int64_t now = monotonic_ns();
  latency.record(static_cast<std::uint64_t>(now > u.quote.sent_ns ? now - u.quote.sent_ns : 0));
  ++stats.updates;
  if (u.quote.symbol >= last_seq.size()) last_seq.resize(u.quote.symbol + 1, 0);
  if (u.seq <= last_seq[u.quote.symbol]) ++stats.out_of_order;
  last_seq[u.quote.symbol] = u.seq;
}
}  // namespace

Task<void> subscribe(SocketAddress handler, LatencyHistogram& latency, ConsumerStats& stats) {
  transport::FramedStream c(
      co_await transport::StreamSocket::connect(handler, std::chrono::seconds(1), transport::RetryPolicy{20}),
      transport::EndpointId{});
  std::vector<std::uint64_t> last_seq(4096, 0);
  try {
    for (;;) {
      transport::Frame f = co_await c.recv();
      if (f.header.type != kUpdateFrameType) {
        ++stats.malformed;
        continue;
      }
      take(f.payload, last_seq, latency, stats);
    }
  } catch (const TransportError& e) {
    stats.ended_by = e.what();
  }
}

Task<void> read_strategy_channel(transport::IpcChannel& channel, LatencyHistogram& latency,
                                 ConsumerStats& stats) {
  std::vector<std::uint64_t> last_seq(4096, 0);
  try {
    for (;;) {
      transport::IpcMessage m = co_await channel.recv();
      take(m.payload, last_seq, latency, stats);
    }
  } catch (const TransportError& e) {
    stats.ended_by = e.what();
  }
}

Task<transport::IpcChannel> open_channel(std::string name, Duration wait) {
  const std::int64_t give_up = deadline_after(wait);
  for (;;) {
    try {
      co_return transport::IpcChannel::open(
          name, transport::EndpointId{static_cast<std::uint32_t>(::getpid()), 0, 0});
    } catch (const TransportError& e) {
      // Refused: not created yet; malformed: created, but its creator is still writing the header.
      const bool not_ready =
          e.errc() == TransportErrc::connection_refused || e.errc() == TransportErrc::malformed;
      if (!not_ready || monotonic_ns() >= give_up) throw;
    }
    co_await sleep_for(std::chrono::milliseconds(2));
  }
}

}  // namespace moirai::examples::feed
