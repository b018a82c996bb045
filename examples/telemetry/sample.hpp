// The telemetry collector's wire format: clients push batches of metric samples as frames (docs/wire.md) of
// type kBatchFrameType over TCP, and the collector answers each batch with a frame of type kAckFrameType once
// its samples are in the aggregates. Little-endian, written and read byte by byte.
//
// A batch's payload is a 16-byte header and `count` 64-byte samples:
//
//   offset  size  field
//   0       4     magic "MTB1" (0x3142544d as a little-endian u32)
//   4       4     count: samples in the batch, 1..kMaxSamplesPerBatch
//   8       8     batch id, chosen by the client (echoed in the ack)
//
// A sample:
//
//   0   8  intended_ns: when the client meant to send it (CLOCK_MONOTONIC ns on the client's host), so that
//          latency measured from it includes any delay in sending (no coordinated omission)
//   8   8  value, an IEEE-754 double; must be finite
//   16  1  kind: 0 counter (values are added), 1 gauge (the latest value is kept)
//   17  1  key length, 1..kMaxKeySize
//   18  46 key: letters, digits and "_.:/-" (what a Prometheus label value needs no escape for), the rest
//   zero
//
// An ack is 32 bytes: the batch id (8), when the collector had folded the batch in (8, CLOCK_MONOTONIC ns on
// the collector's host), samples accepted (4) and rejected (4), and 8 reserved bytes.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>

#include "moirai/transport/byte_order.hpp"

namespace moirai::examples::telemetry {

inline constexpr std::uint16_t kBatchFrameType = 0x5401;
inline constexpr std::uint16_t kAckFrameType = 0x5402;
inline constexpr std::uint32_t kBatchMagic = 0x3142544d;  // "MTB1"
inline constexpr std::size_t kBatchHeaderSize = 16;
inline constexpr std::size_t kSampleSize = 64;
inline constexpr std::size_t kMaxKeySize = 46;
inline constexpr std::size_t kMaxSamplesPerBatch = 1024;  // a 64 KiB frame, well under the 1 MiB maximum
inline constexpr std::size_t kAckSize = 32;

enum class Kind : std::uint8_t { counter = 0, gauge = 1 };

struct Sample {
  std::int64_t intended_ns = 0;
  double value = 0;
  Kind kind = Kind::counter;
  std::uint8_t key_size = 0;
  char key[kMaxKeySize] = {};
  std::string_view key_view() const noexcept { return {key, key_size}; }
};

struct Ack {
  std::uint64_t batch = 0;
  std::int64_t aggregated_ns = 0;
  std::uint32_t accepted = 0;
  std::uint32_t rejected = 0;
};

inline bool key_char(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
         c == ':' || c == '/' || c == '-';
}
inline bool valid_key(std::string_view k) noexcept {
  if (k.empty() || k.size() > kMaxKeySize) return false;
  for (char c : k) {
    if (!key_char(c)) return false;
  }
  return true;
}

// Makes a sample; false (and nothing set) for a key that is not valid_key().
inline bool make_sample(std::string_view key, Kind kind, double value, std::int64_t intended_ns,
                        Sample& out) noexcept {
  if (!valid_key(key)) return false;
  out = Sample{};
  out.intended_ns = intended_ns;
  out.value = value;
  out.kind = kind;
  out.key_size = static_cast<std::uint8_t>(key.size());
  std::memcpy(out.key, key.data(), key.size());
  return true;
}

inline std::size_t batch_size(std::size_t samples) noexcept {
  return kBatchHeaderSize + samples * kSampleSize;
}

// Writes a batch of 1..kMaxSamplesPerBatch samples into `out` (at least batch_size(samples.size()) bytes);
// returns the bytes written.
inline std::size_t write_batch(std::uint64_t batch, std::span<const Sample> samples,
                               std::span<std::byte> out) noexcept {
  std::byte* p = out.data();
  transport::put_le(p, kBatchMagic, 4);
  transport::put_le(p + 4, samples.size(), 4);
  transport::put_le(p + 8, batch, 8);
  p += kBatchHeaderSize;
  for (const Sample& s : samples) {
    std::uint64_t bits;
    std::memcpy(&bits, &s.value, sizeof bits);
    transport::put_le(p, static_cast<std::uint64_t>(s.intended_ns), 8);
    transport::put_le(p + 8, bits, 8);
    p[16] = static_cast<std::byte>(s.kind);
    p[17] = static_cast<std::byte>(s.key_size);
    std::memset(p + 18, 0, kMaxKeySize);
    std::memcpy(p + 18, s.key, s.key_size);
    p += kSampleSize;
  }
  return batch_size(samples.size());
}

// A batch's header, checked against the payload's size: false for a payload that is not a batch.
struct BatchHeader {
  std::uint32_t count = 0;
  std::uint64_t batch = 0;
};
inline bool read_batch_header(std::span<const std::byte> payload, BatchHeader& out) noexcept {
  if (payload.size() < kBatchHeaderSize) return false;
  if (transport::get_le(payload.data(), 4) != kBatchMagic) return false;
  out.count = static_cast<std::uint32_t>(transport::get_le(payload.data() + 4, 4));
  out.batch = transport::get_le(payload.data() + 8, 8);
  return out.count >= 1 && out.count <= kMaxSamplesPerBatch && payload.size() == batch_size(out.count);
}

// Sample i of a batch whose header read_batch_header() accepted; false for a sample that breaks the format
// (unknown kind, bad key, a value that is not finite): the batch's other samples still count.
inline bool read_sample(std::span<const std::byte> payload, std::size_t i, Sample& out) noexcept {
  const std::byte* p = payload.data() + kBatchHeaderSize + i * kSampleSize;
  out.intended_ns = static_cast<std::int64_t>(transport::get_le(p, 8));
  const std::uint64_t bits = transport::get_le(p + 8, 8);
  std::memcpy(&out.value, &bits, sizeof bits);
  const auto kind = static_cast<std::uint8_t>(p[16]);
  out.key_size = static_cast<std::uint8_t>(p[17]);
  if (kind > 1 || out.key_size == 0 || out.key_size > kMaxKeySize || !std::isfinite(out.value)) return false;
  out.kind = static_cast<Kind>(kind);
  std::memcpy(out.key, p + 18, out.key_size);
  return valid_key(out.key_view());
}

inline void write_ack(const Ack& a, std::span<std::byte, kAckSize> out) noexcept {
  transport::put_le(out.data(), a.batch, 8);
  transport::put_le(out.data() + 8, static_cast<std::uint64_t>(a.aggregated_ns), 8);
  transport::put_le(out.data() + 16, a.accepted, 4);
  transport::put_le(out.data() + 20, a.rejected, 4);
  transport::put_le(out.data() + 24, 0, 8);
}
inline bool read_ack(std::span<const std::byte> payload, Ack& out) noexcept {
  if (payload.size() != kAckSize) return false;
  out.batch = transport::get_le(payload.data(), 8);
  out.aggregated_ns = static_cast<std::int64_t>(transport::get_le(payload.data() + 8, 8));
  out.accepted = static_cast<std::uint32_t>(transport::get_le(payload.data() + 16, 4));
  out.rejected = static_cast<std::uint32_t>(transport::get_le(payload.data() + 20, 4));
  return true;
}

}  // namespace moirai::examples::telemetry
