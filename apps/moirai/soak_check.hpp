// What `moirai soak` sends and how the receiver checks it. Every message's payload names its sender, its
// sequence number in that sender's stream and a checksum of the whole payload; the rest of the payload is
// derived from (sender, seq), so the receiver can rebuild what it should have got. The verifier counts each
// kind of violation: lost (never arrived), duplicated (arrived twice), reordered (arrived after a later
// message of the same sender), corrupt (checksum, content or size wrong, or a sender or sequence number that
// was never sent).
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace moirai::cli::soak {

// Payload layout, little-endian: sender (4 bytes), size (4: the payload's own length), seq (8), checksum
// (8), then derived filler bytes.
inline constexpr std::size_t kMessageHeader = 24;

// Writes message `seq` of `sender` into `out` (its whole size is the payload; at least kMessageHeader).
void encode(std::uint32_t sender, std::uint64_t seq, std::span<std::byte> out) noexcept;

// The checksum a payload carries: of every byte but the checksum field itself.
std::uint64_t checksum(std::span<const std::byte> payload) noexcept;

struct Counts {
  std::uint64_t expected = 0;  // messages the senders sent
  std::uint64_t received = 0;  // distinct, intact messages
  std::uint64_t lost = 0;
  std::uint64_t duplicated = 0;
  std::uint64_t reordered = 0;
  std::uint64_t corrupt = 0;
  bool clean() const noexcept {
    return received == expected && lost == 0 && duplicated == 0 && reordered == 0 && corrupt == 0;
  }
  // "3 lost, 1 corrupt"; "" when clean.
  std::string violations() const;
};

// Checks the messages of `per_sender.size()` senders, sender k sending seqs 0..per_sender[k]-1 of
// `payload` bytes each. Its memory (one bit per expected message) is allocated and touched here, so checking
// allocates nothing and a resident-memory sample taken after construction already holds it.
class Verifier {
 public:
  Verifier(std::vector<std::uint64_t> per_sender, std::size_t payload);

  // One received payload. Returns false when it was counted as a violation.
  bool check(std::span<const std::byte> payload) noexcept;
  // A message the transport already shows to be wrong (a frame type or a channel sender that disagrees
  // with its payload): counted corrupt.
  void reject() noexcept { ++counts_.corrupt; }
  // Distinct intact messages so far.
  std::uint64_t received() const noexcept { return counts_.received; }
  std::uint64_t expected() const noexcept { return counts_.expected; }
  // The counts, with everything expected and not received counted lost.
  Counts finish() const noexcept;

 private:
  std::vector<std::uint64_t> per_sender_;
  std::vector<std::uint64_t> first_bit_;  // where each sender's bits start in seen_
  std::vector<std::uint64_t> next_;       // one past the highest seq seen per sender
  std::vector<std::uint64_t> seen_;       // one bit per expected message
  std::size_t payload_;
  Counts counts_;
};

// Messages of sender k when `messages` are split among `senders` as evenly as possible.
std::vector<std::uint64_t> split(std::uint64_t messages, std::uint32_t senders);

// Resident memory of process `pid` (0: this one) in KiB, from /proc/PID/statm; 0 when it cannot be read (a
// process that is gone).
std::uint64_t resident_kb(pid_t pid = 0) noexcept;

}  // namespace moirai::cli::soak
