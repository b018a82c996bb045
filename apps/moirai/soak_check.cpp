#include "soak_check.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "moirai/core/error.hpp"

namespace moirai::cli::soak {
namespace {

constexpr std::size_t kChecksumAt = 16;

std::uint64_t mix(std::uint64_t x) noexcept {  // splitmix64's finaliser
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

std::uint64_t load(const std::byte* p, std::size_t n) noexcept {  // n <= 8 bytes, little-endian
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < n; ++i)
    v |= static_cast<std::uint64_t>(p[i]) << (8 * i);
  return v;
}

void store(std::byte* p, std::uint64_t v, std::size_t n) noexcept {
  for (std::size_t i = 0; i < n; ++i)
    p[i] = static_cast<std::byte>(v >> (8 * i));
}

// The filler from kMessageHeader on: 8-byte words of mix(key + word index).
void fill(std::uint64_t key, std::span<std::byte> out) noexcept {
  for (std::size_t at = kMessageHeader, w = 0; at < out.size(); at += 8, ++w)
    store(out.data() + at, mix(key + w), std::min<std::size_t>(8, out.size() - at));
}

bool filler_matches(std::uint64_t key, std::span<const std::byte> in) noexcept {
  for (std::size_t at = kMessageHeader, w = 0; at < in.size(); at += 8, ++w) {
    const std::size_t n = std::min<std::size_t>(8, in.size() - at);
    if (load(in.data() + at, n) != (mix(key + w) & (n == 8 ? ~0ull : (1ull << (8 * n)) - 1))) return false;
  }
  return true;
}

std::uint64_t key_of(std::uint32_t sender, std::uint64_t seq) noexcept {
  return mix(static_cast<std::uint64_t>(sender) << 40 ^ seq);
}

}  // namespace

std::uint64_t checksum(std::span<const std::byte> payload) noexcept {
  std::uint64_t h = 0xCBF29CE484222325ull ^ payload.size();
  for (std::size_t at = 0; at < payload.size(); at += 8) {
    if (at == kChecksumAt) continue;
    h = (h ^ load(payload.data() + at, std::min<std::size_t>(8, payload.size() - at))) * 0x100000001B3ull;
    h ^= h >> 29;
  }
  return h;
}

void encode(std::uint32_t sender, std::uint64_t seq, std::span<std::byte> out) noexcept {
  store(out.data(), sender, 4);
  store(out.data() + 4, out.size(), 4);
  store(out.data() + 8, seq, 8);
  fill(key_of(sender, seq), out);
  store(out.data() + kChecksumAt, checksum(out), 8);
}

std::string Counts::violations() const {
  std::string out;
  auto add = [&out](std::uint64_t n, const char* what) {
    if (n == 0) return;
    if (!out.empty()) out += ", ";
    out += std::to_string(n) + ' ' + what;
  };
  add(lost, "lost");
  add(duplicated, "duplicated");
  add(reordered, "reordered");
  add(corrupt, "corrupt");
  return out;
}

Verifier::Verifier(std::vector<std::uint64_t> per_sender, std::size_t payload)
    : per_sender_(std::move(per_sender)), next_(per_sender_.size(), 0), payload_(payload) {
  if (payload_ < kMessageHeader) {
    throw Error(Errc::invalid_argument,
                "soak: a payload of " + std::to_string(payload_) +
                    " bytes cannot hold the sender, sequence number and checksum; give "
                    "at least " +
                    std::to_string(kMessageHeader));
  }
  std::uint64_t bits = 0;
  for (std::uint64_t n : per_sender_) {
    first_bit_.push_back(bits);
    bits += n;
  }
  counts_.expected = bits;
  // Written, not just reserved: every page is resident before the first message.
  seen_.assign((bits + 63) / 64, 0);
  std::memset(seen_.data(), 0, seen_.size() * sizeof(std::uint64_t));
}

bool Verifier::check(std::span<const std::byte> p) noexcept {
  if (p.size() != payload_ || load(p.data() + 4, 4) != p.size()) {
    ++counts_.corrupt;
    return false;
  }
  const auto sender = static_cast<std::uint32_t>(load(p.data(), 4));
  const std::uint64_t seq = load(p.data() + 8, 8);
  if (load(p.data() + kChecksumAt, 8) != checksum(p) || sender >= per_sender_.size() ||
      seq >= per_sender_[sender] || !filler_matches(key_of(sender, seq), p)) {
    ++counts_.corrupt;
    return false;
  }
  const std::uint64_t bit = first_bit_[sender] + seq;
  std::uint64_t& word = seen_[bit / 64];
  const std::uint64_t mask = 1ull << (bit % 64);
  if ((word & mask) != 0) {
    ++counts_.duplicated;
    return false;
  }
  word |= mask;
  ++counts_.received;
  if (seq + 1 < next_[sender]) {  // a later message of this sender came first
    ++counts_.reordered;
    return false;
  }
  next_[sender] = seq + 1;
  return true;
}

Counts Verifier::finish() const noexcept {
  Counts c = counts_;
  c.lost = c.expected - c.received;
  return c;
}

std::vector<std::uint64_t> split(std::uint64_t messages, std::uint32_t senders) {
  std::vector<std::uint64_t> out(senders, messages / senders);
  for (std::uint32_t k = 0; k < messages % senders; ++k)
    ++out[k];
  return out;
}

std::uint64_t resident_kb(pid_t pid) noexcept {
  char path[64];
  if (pid == 0) {
    std::snprintf(path, sizeof path, "/proc/self/statm");
  } else {
    std::snprintf(path, sizeof path, "/proc/%d/statm", static_cast<int>(pid));
  }
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char text[128];
  const ssize_t n = ::read(fd, text, sizeof text - 1);
  ::close(fd);
  if (n <= 0) return 0;
  text[n] = '\0';
  unsigned long long size = 0, resident = 0;
  if (std::sscanf(text, "%llu %llu", &size, &resident) != 2) return 0;
  return resident * static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE)) / 1024;
}

}  // namespace moirai::cli::soak
