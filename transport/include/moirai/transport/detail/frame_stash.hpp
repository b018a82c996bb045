// Frames kept aside for a later receive (internal): what recv_from(sender) does with the frames of other
// senders, for FramedStream and FramedDatagramSocket alike.
//
// One buffer of `limit` bytes, allocated at the first frame kept, holds whole records in arrival order: a
// fixed-size prefix the owner fills as it likes (a datagram's sender address; nothing for a stream) and the
// frame, header and payload, exactly as it arrived. A receive takes the oldest record that matches and it
// stays where it is until the next receive, so its payload can be handed out as a view; then it is cut out
// and the records behind it move up. Nothing is allocated after the first use, and nothing already accepted
// is dropped: put() refuses a record that does not fit and the caller says so.
#pragma once

#include <cstddef>
#include <cstring>
#include <memory>
#include <optional>
#include <span>

#include "moirai/transport/endpoint.hpp"
#include "moirai/transport/frame.hpp"

namespace moirai::transport::detail {

class FrameStash {
 public:
  FrameStash(std::size_t limit, std::size_t prefix_bytes) noexcept : limit_(limit), prefix_(prefix_bytes) {}

  std::size_t limit() const noexcept { return limit_; }
  // Bytes of records waiting, the one taken by the last receive excluded.
  std::size_t bytes() const noexcept { return end_ - taken_len_; }
  bool has_waiting() const noexcept { return end_ > taken_len_; }

  // Keeps `frame` (a whole frame the caller has parsed and accepted) behind a copy of `prefix` (at most
  // prefix_bytes; the rest is zero). False, and nothing kept, when the record would pass the limit.
  bool put(std::span<const std::byte> prefix, std::span<const std::byte> frame) {
    const std::size_t need = prefix_ + frame.size();
    if (end_ + need > limit_ || prefix.size() > prefix_) return false;
    if (!bytes_) bytes_.reset(new std::byte[limit_]);
    std::byte* at = bytes_.get() + end_;
    std::memset(at, 0, prefix_);
    if (!prefix.empty()) std::memcpy(at, prefix.data(), prefix.size());
    std::memcpy(at + prefix_, frame.data(), frame.size());
    end_ += need;
    return true;
  }

  struct Entry {
    std::span<const std::byte> prefix;
    FrameHeader header;
    std::span<const std::byte> payload;
  };
  // The oldest record from `sender` (any, without one). It stays in the stash, and its views valid, until
  // release_taken().
  bool take(std::optional<EndpointId> sender, Entry& out) noexcept {
    for (std::size_t at = 0; at < end_;) {
      const std::byte* rec = bytes_.get() + at;
      // Records were parsed before they were kept: this parse only finds the frame's length again.
      const ParseResult r = parse_frame(std::span<const std::byte>(rec + prefix_, end_ - at - prefix_), ~0u);
      const std::size_t len = prefix_ + r.consumed;
      if (!sender || r.header.sender == *sender) {
        taken_at_ = at;
        taken_len_ = len;
        out = Entry{std::span<const std::byte>(rec, prefix_), r.header, r.payload};
        return true;
      }
      at += len;
    }
    return false;
  }

  // Cuts out the record the last take() returned (if any).
  void release_taken() noexcept {
    if (taken_len_ == 0) return;
    std::byte* s = bytes_.get();
    const std::size_t after = taken_at_ + taken_len_;
    std::memmove(s + taken_at_, s + after, end_ - after);
    end_ -= taken_len_;
    taken_len_ = 0;
  }

 private:
  std::size_t limit_;
  std::size_t prefix_;
  std::unique_ptr<std::byte[]> bytes_;
  std::size_t end_ = 0;
  std::size_t taken_at_ = 0;
  std::size_t taken_len_ = 0;
};

}  // namespace moirai::transport::detail
