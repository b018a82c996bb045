// The feed's wire format: UDP datagrams ("packets") of fixed-size binary quotes, and the top-of-book updates
// the handler publishes. Little-endian throughout, written and read byte by byte, so the format does not
// depend on the host's layout or alignment.
//
// A packet is a 16-byte header and `count` 40-byte quotes:
//
//   offset  size  field
//   0       4     magic "MQF1" (0x3146514d as a little-endian u32)
//   4       2     count: quotes in this packet, 1..kMaxQuotesPerPacket
//   6       2     reserved, zero
//   8       8     sequence number of the packet's first quote; quote i has seq + i
//
// A quote:
//
//   0   8  sent_ns: when the generator meant to send it (CLOCK_MONOTONIC ns), so that latency measured from
//          it includes any delay in sending (no coordinated omission)
//   8   4  symbol id
//   12  4  bid size
//   16  8  bid price, in 1e-4 units
//   24  8  ask price, in 1e-4 units
//   32  4  ask size
//   36  4  reserved, zero
//
// An update (the payload of a type-1 frame to TCP subscribers, and of an IPC message) is 48 bytes: the
// quote's sequence number, then the quote's 40 bytes as above.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "moirai/transport/byte_order.hpp"

namespace moirai::examples::feed {

inline constexpr std::uint32_t kPacketMagic = 0x3146514d;  // "MQF1"
inline constexpr std::size_t kPacketHeaderSize = 16;
inline constexpr std::size_t kQuoteSize = 40;
inline constexpr std::size_t kUpdateSize = 48;
// What fits one Ethernet-MTU UDP datagram: 1472 payload bytes.
inline constexpr std::size_t kMaxQuotesPerPacket = (1472 - kPacketHeaderSize) / kQuoteSize;
inline constexpr std::size_t kMaxPacketSize = kPacketHeaderSize + kMaxQuotesPerPacket * kQuoteSize;
inline constexpr std::uint16_t kUpdateFrameType = 1;

struct Quote {
  std::int64_t sent_ns = 0;
  std::uint32_t symbol = 0;
  std::uint32_t bid_size = 0;
  std::int64_t bid = 0;
  std::int64_t ask = 0;
  std::uint32_t ask_size = 0;
};

struct Update {
  std::uint64_t seq = 0;
  Quote quote;
};

inline void write_quote(const Quote& q, std::byte* out) noexcept {
  transport::put_le(out, static_cast<std::uint64_t>(q.sent_ns), 8);
  transport::put_le(out + 8, q.symbol, 4);
  transport::put_le(out + 12, q.bid_size, 4);
  transport::put_le(out + 16, static_cast<std::uint64_t>(q.bid), 8);
  transport::put_le(out + 24, static_cast<std::uint64_t>(q.ask), 8);
  transport::put_le(out + 32, q.ask_size, 4);
  transport::put_le(out + 36, 0, 4);
}

inline Quote read_quote(const std::byte* in) noexcept {
  Quote q;
  q.sent_ns = static_cast<std::int64_t>(transport::get_le(in, 8));
  q.symbol = static_cast<std::uint32_t>(transport::get_le(in + 8, 4));
  q.bid_size = static_cast<std::uint32_t>(transport::get_le(in + 12, 4));
  q.bid = static_cast<std::int64_t>(transport::get_le(in + 16, 8));
  q.ask = static_cast<std::int64_t>(transport::get_le(in + 24, 8));
  q.ask_size = static_cast<std::uint32_t>(transport::get_le(in + 32, 4));
  return q;
}

// Writes a packet of `quotes` (1..kMaxQuotesPerPacket of them) whose first quote has sequence `seq`; returns
// its size. `out` must hold kPacketHeaderSize + quotes.size() * kQuoteSize bytes.
inline std::size_t write_packet(std::uint64_t seq, std::span<const Quote> quotes,
                                std::span<std::byte> out) noexcept {
  transport::put_le(out.data(), kPacketMagic, 4);
  transport::put_le(out.data() + 4, quotes.size(), 2);
  transport::put_le(out.data() + 6, 0, 2);
  transport::put_le(out.data() + 8, seq, 8);
  for (std::size_t i = 0; i < quotes.size(); ++i)
    write_quote(quotes[i], out.data() + kPacketHeaderSize + i * kQuoteSize);
  return kPacketHeaderSize + quotes.size() * kQuoteSize;
}

enum class PacketStatus : std::uint8_t {
  ok,
  too_short,  // shorter than a header
  bad_magic,  // not one of our packets
  bad_count,  // count is 0, over the maximum, or disagrees with the datagram's length
};
const char* to_string(PacketStatus s) noexcept;

// A decoded packet header and a view of its quotes, in the receive buffer.
struct PacketView {
  PacketStatus status = PacketStatus::too_short;
  std::uint64_t seq = 0;
  std::uint16_t count = 0;
  std::span<const std::byte> quotes;
  Quote quote(std::size_t i) const noexcept { return read_quote(quotes.data() + i * kQuoteSize); }
};

// Checks and decodes a datagram; nothing is copied.
inline PacketView decode_packet(std::span<const std::byte> datagram) noexcept {
  PacketView v;
  if (datagram.size() < kPacketHeaderSize) return v;
  if (transport::get_le(datagram.data(), 4) != kPacketMagic) {
    v.status = PacketStatus::bad_magic;
    return v;
  }
  const auto count = static_cast<std::uint16_t>(transport::get_le(datagram.data() + 4, 2));
  if (count == 0 || count > kMaxQuotesPerPacket ||
      datagram.size() != kPacketHeaderSize + std::size_t{count} * kQuoteSize) {
    v.status = PacketStatus::bad_count;
    return v;
  }
  v.status = PacketStatus::ok;
  v.count = count;
  v.seq = transport::get_le(datagram.data() + 8, 8);
  v.quotes = datagram.subspan(kPacketHeaderSize);
  return v;
}

inline void write_update(const Update& u, std::span<std::byte, kUpdateSize> out) noexcept {
  transport::put_le(out.data(), u.seq, 8);
  write_quote(u.quote, out.data() + 8);
}

// Reads an update; false when `in` is not kUpdateSize bytes.
inline bool read_update(std::span<const std::byte> in, Update& u) noexcept {
  if (in.size() != kUpdateSize) return false;
  u.seq = transport::get_le(in.data(), 8);
  u.quote = read_quote(in.data() + 8);
  return true;
}

}  // namespace moirai::examples::feed
