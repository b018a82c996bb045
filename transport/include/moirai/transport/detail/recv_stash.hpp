// Messages kept aside for a later receive (internal): what recv_from(sender) does with the messages of other
// senders while it looks for one sender's. FramedStream and FramedDatagramSocket keep their frames here; it
// knows nothing of frames, so any receiver whose messages have a sender and bytes can keep them here too.
//
// One buffer of `capacity` bytes holds whole records in arrival order, packed with no padding. A record is a
// 16-byte head (the sender, the payload's length and a 32-bit tag the owner uses as it likes: a frame keeps
// its type there), a prefix of a size fixed at construction that the owner fills as it likes (a datagram's
// sender address; nothing for a stream) and the payload. A frame thus costs what it did on the wire, header
// included, plus the prefix.
//
// take() finds the oldest record, of one sender or of any. It stays where it is until release_taken(), so its
// payload can be handed out as a view; then it is cut out, and only the records older than it move (none,
// when it was the oldest). The buffer is allocated once, at the first put() or at reserve(), and never again;
// nothing already kept is dropped: put() refuses a record that does not fit, or one past `max_records` (for
// an owner that promises a number of messages, as IpcOptions::stash_capacity does), and the caller says so.
#pragma once

#include <cassert>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <span>

#include "moirai/transport/endpoint.hpp"

namespace moirai::transport::detail {

class RecvStash {
 public:
  // The head in front of each record: sender (8 bytes), payload length (4), tag (4).
  static constexpr std::size_t kRecordHead = 16;

  // Room for `capacity` bytes of records, each with a prefix of `prefix_bytes`, and for `max_records` of them
  // at most. Allocates nothing yet.
  explicit RecvStash(std::size_t capacity, std::size_t prefix_bytes = 0,
                     std::size_t max_records = static_cast<std::size_t>(-1)) noexcept
      : capacity_(capacity), prefix_(prefix_bytes), max_records_(max_records) {}
  RecvStash(RecvStash&&) noexcept = default;
  RecvStash& operator=(RecvStash&&) noexcept = default;

  std::size_t capacity() const noexcept { return capacity_; }
  std::size_t max_records() const noexcept { return max_records_; }
  // What a record with `payload_bytes` takes of the capacity.
  std::size_t record_bytes(std::size_t payload_bytes) const noexcept {
    return kRecordHead + prefix_ + payload_bytes;
  }
  // Bytes of records waiting, the one taken and not yet released excluded.
  std::size_t bytes() const noexcept { return end_ - begin_ - taken_len_; }
  bool has_waiting() const noexcept { return bytes() != 0; }

  // Allocates the buffer now, for an owner that allocates only when it is made.
  void reserve() {
    if (!bytes_) bytes_.reset(new std::byte[capacity_ == 0 ? 1 : capacity_]);
  }

  // Keeps a message from `sender` behind the others: `tag`, `payload`, and a copy of `prefix` (at most
  // prefix_bytes; the rest is zero). False, and nothing kept, when the record would pass the capacity. Not
  // while a record is taken (release it first): the records may move to make room.
  bool put(EndpointId sender, std::uint32_t tag, std::span<const std::byte> payload,
           std::span<const std::byte> prefix = {}) {
    assert(taken_len_ == 0);
    const std::size_t need = record_bytes(payload.size());
    if (prefix.size() > prefix_ || need > capacity_ - (end_ - begin_) || records_ == max_records_)
      return false;
    reserve();
    if (capacity_ - end_ < need) {  // room only in front: the records move there
      std::memmove(bytes_.get(), bytes_.get() + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
    }
    std::byte* at = bytes_.get() + end_;
    const std::uint64_t who = sender.packed();
    const auto length = static_cast<std::uint32_t>(payload.size());
    std::memcpy(at, &who, 8);
    std::memcpy(at + 8, &length, 4);
    std::memcpy(at + 12, &tag, 4);
    std::memset(at + kRecordHead, 0, prefix_);
    if (!prefix.empty()) std::memcpy(at + kRecordHead, prefix.data(), prefix.size());
    if (!payload.empty()) std::memcpy(at + kRecordHead + prefix_, payload.data(), payload.size());
    end_ += need;
    ++records_;
    return true;
  }

  // One record: views into the stash, valid until release_taken().
  struct Kept {
    EndpointId sender;
    std::uint32_t tag = 0;
    std::span<const std::byte> prefix;
    std::span<const std::byte> payload;
  };
  // The oldest record from `sender` (of any sender, without one), which stays in the stash, and its views
  // valid, until release_taken(). Release the one taken before taking another.
  std::optional<Kept> take(std::optional<EndpointId> sender) noexcept {
    assert(taken_len_ == 0);
    for (std::size_t at = begin_; at < end_;) {
      const std::byte* rec = bytes_.get() + at;
      std::uint64_t who = 0;
      std::uint32_t length = 0;
      Kept k;
      std::memcpy(&who, rec, 8);
      std::memcpy(&length, rec + 8, 4);
      std::memcpy(&k.tag, rec + 12, 4);
      const std::size_t len = record_bytes(length);
      k.sender = EndpointId::unpack(who);
      if (!sender || k.sender == *sender) {
        taken_at_ = at;
        taken_len_ = len;
        k.prefix = std::span<const std::byte>(rec + kRecordHead, prefix_);
        k.payload = std::span<const std::byte>(rec + kRecordHead + prefix_, length);
        return k;
      }
      at += len;
    }
    return std::nullopt;
  }

  // Cuts out the record the last take() returned, if any: the records older than it move up behind it.
  void release_taken() noexcept {
    if (taken_len_ == 0) return;
    std::byte* s = bytes_.get();
    std::memmove(s + begin_ + taken_len_, s + begin_, taken_at_ - begin_);
    begin_ += taken_len_;
    taken_len_ = 0;
    --records_;
    if (begin_ == end_) begin_ = end_ = 0;
  }

 private:
  std::size_t capacity_;
  std::size_t prefix_;
  std::size_t max_records_;
  std::size_t records_ = 0;
  std::unique_ptr<std::byte[]> bytes_;
  std::size_t begin_ = 0;  // the oldest record
  std::size_t end_ = 0;    // one past the newest
  std::size_t taken_at_ = 0;
  std::size_t taken_len_ = 0;
};

}  // namespace moirai::transport::detail
