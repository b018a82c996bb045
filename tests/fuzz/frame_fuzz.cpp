// The frame decoder (frame.hpp, docs/wire.md) on arbitrary bytes, as a stream receiver meets them.
//
// Input: [max][chunks][chunk sizes...][wanted sender][stash limit][stash prefix][stream bytes...].
// 1. The bytes are parsed whole, frame after frame, until "need more" or an error; every result is checked
//    against the format: a frame never exceeds the maximum, `consumed` never passes the buffer, `needed` is
//    what the header says, errors are the documented ones, and a frame re-encoded gives the same bytes and
//    parses to the same frame (also when cut to exactly its size, as a datagram carries it).
// 2. The same bytes arrive in chunks split where the input says and are reassembled as FramedStream::receive
//    does (parse, take whole frames, compact, receive more): the frames and the final state must be those
//    of step 1, whatever the split.
// 3. The frames go through a RecvStash (recv_from's store for other senders' messages) with a small
//    capacity, and come back per sender in arrival order, byte for byte; a refused put means the record did
//    not fit.
#include <algorithm>
#include <array>
#include <cstring>
#include <deque>
#include <optional>
#include <vector>

#include "fuzz_check.hpp"
#include "moirai/transport/detail/recv_stash.hpp"
#include "moirai/transport/frame.hpp"

namespace {

using moirai::fuzz::InputReader;
using namespace moirai::transport;

struct Seen {
  FrameHeader header;
  std::vector<std::byte> bytes;  // the whole frame, header first
};

bool same_header(const FrameHeader& a, const FrameHeader& b) {
  return a.length == b.length && a.type == b.type && a.sender == b.sender;
}

std::uint64_t le(std::span<const std::byte> b, std::size_t at, std::size_t n) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < n; ++i)
    v |= static_cast<std::uint64_t>(b[at + i]) << (8 * i);
  return v;
}

// One parse, checked against docs/wire.md.
ParseResult checked_parse(std::span<const std::byte> buffer, std::uint32_t max) {
  const ParseResult r = parse_frame(buffer, max);
  switch (r.status) {
    case ParseStatus::frame: {
      MOIRAI_FUZZ_CHECK(r.header.length <= max);
      MOIRAI_FUZZ_CHECK(r.consumed == kFrameHeaderSize + r.header.length);
      MOIRAI_FUZZ_CHECK(r.consumed <= buffer.size());
      MOIRAI_FUZZ_CHECK(r.payload.data() == buffer.data() + kFrameHeaderSize);
      MOIRAI_FUZZ_CHECK(r.payload.size() == r.header.length);
      MOIRAI_FUZZ_CHECK(le(buffer, 0, 4) == r.header.length && le(buffer, 4, 2) == r.header.type);
      MOIRAI_FUZZ_CHECK(le(buffer, 8, 8) == r.header.sender.packed());
      // Re-encoding gives the same bytes: version 1 and flags 0 are the only ones accepted.
      std::array<std::byte, kFrameHeaderSize> again{};
      write_frame_header(r.header, again);
      MOIRAI_FUZZ_CHECK(std::memcmp(again.data(), buffer.data(), kFrameHeaderSize) == 0);
      // The frame alone (a datagram of exactly its size) parses to the same frame.
      const ParseResult alone = parse_frame(buffer.first(r.consumed), max);
      MOIRAI_FUZZ_CHECK(alone.status == ParseStatus::frame && alone.consumed == r.consumed);
      MOIRAI_FUZZ_CHECK(same_header(alone.header, r.header));
      // One byte short is "need more", asking for exactly the frame.
      const ParseResult shorter = parse_frame(buffer.first(r.consumed - 1), max);
      MOIRAI_FUZZ_CHECK(shorter.status == ParseStatus::need_more);
      MOIRAI_FUZZ_CHECK(shorter.needed ==
                        (r.consumed - 1 < kFrameHeaderSize ? kFrameHeaderSize : r.consumed));
      break;
    }
    case ParseStatus::need_more:
      MOIRAI_FUZZ_CHECK(r.needed > buffer.size());
      MOIRAI_FUZZ_CHECK(r.needed <= kFrameHeaderSize + std::size_t{max});
      if (buffer.size() < kFrameHeaderSize) {
        MOIRAI_FUZZ_CHECK(r.needed == kFrameHeaderSize);
      } else {
        MOIRAI_FUZZ_CHECK(r.needed == kFrameHeaderSize + le(buffer, 0, 4));
      }
      MOIRAI_FUZZ_CHECK(r.consumed == 0);
      break;
    case ParseStatus::error: {
      MOIRAI_FUZZ_CHECK(buffer.size() >= kFrameHeaderSize);
      const bool bad_header = le(buffer, 6, 1) != kFrameVersion || le(buffer, 7, 1) != 0;
      if (bad_header) {
        MOIRAI_FUZZ_CHECK(r.error == make_error_code(TransportErrc::malformed));
      } else {
        MOIRAI_FUZZ_CHECK(r.error == make_error_code(TransportErrc::message_too_large));
        MOIRAI_FUZZ_CHECK(le(buffer, 0, 4) > max);
      }
      MOIRAI_FUZZ_CHECK(r.consumed == 0);
      break;
    }
  }
  return r;
}

// Step 1: the whole buffer, frame after frame.
ParseStatus parse_all(std::span<const std::byte> stream, std::uint32_t max, std::vector<Seen>& frames) {
  for (;;) {
    const ParseResult r = checked_parse(stream, max);
    if (r.status != ParseStatus::frame) return r.status;
    frames.push_back({r.header, {stream.begin(), stream.begin() + static_cast<long>(r.consumed)}});
    stream = stream.subspan(r.consumed);
  }
}

// Step 2: the bytes in chunks, into a buffer that is compacted and grown as FramedStream's is.
void reassemble(std::span<const std::byte> stream, std::uint32_t max, const std::vector<std::size_t>& cuts,
                const std::vector<Seen>& expected, ParseStatus expected_end) {
  std::vector<std::byte> buffer(std::min<std::size_t>(64, kFrameHeaderSize + max));
  std::size_t begin = 0, end = 0, sent = 0, next = 0, cut = 0;
  for (;;) {
    const ParseResult r = checked_parse(std::span<const std::byte>(buffer).subspan(begin, end - begin), max);
    if (r.status == ParseStatus::frame) {
      MOIRAI_FUZZ_CHECK(next < expected.size());
      MOIRAI_FUZZ_CHECK(same_header(r.header, expected[next].header));
      MOIRAI_FUZZ_CHECK(std::memcmp(buffer.data() + begin, expected[next].bytes.data(), r.consumed) == 0);
      ++next;
      begin += r.consumed;
      if (begin == end) begin = end = 0;
      continue;
    }
    if (r.status == ParseStatus::error || sent == stream.size()) {
      MOIRAI_FUZZ_CHECK(next == expected.size());
      MOIRAI_FUZZ_CHECK(r.status == expected_end);
      return;
    }
    // Need more: room for the whole frame, then the next chunk (at most what fits, as recv_some takes).
    if (buffer.size() < r.needed) buffer.resize(r.needed);
    if (buffer.size() - begin < r.needed) {
      std::memmove(buffer.data(), buffer.data() + begin, end - begin);
      end -= begin;
      begin = 0;
    }
    const std::size_t want = cuts.empty() ? stream.size() : cuts[cut++ % cuts.size()];
    const std::size_t n = std::min({want, buffer.size() - end, stream.size() - sent});
    MOIRAI_FUZZ_CHECK(n > 0);
    std::memcpy(buffer.data() + end, stream.data() + sent, n);
    end += n;
    sent += n;
  }
}

// Step 3: the frames through a RecvStash, as a framed receiver keeps them (the type as the tag), taken back
// by sender.
void stash_round_trip(const std::vector<Seen>& frames, std::size_t limit, std::size_t prefix_bytes,
                      std::optional<EndpointId> wanted) {
  detail::RecvStash stash(limit, prefix_bytes);
  std::deque<std::size_t> kept;  // indexes into frames, in arrival order
  std::vector<std::byte> prefix(prefix_bytes);
  for (std::size_t i = 0; i < frames.size(); ++i) {
    std::fill(prefix.begin(), prefix.end(), static_cast<std::byte>(i));
    const std::size_t before = stash.bytes();
    const FrameHeader& h = frames[i].header;
    // A record costs what the frame did on the wire, and the prefix.
    MOIRAI_FUZZ_CHECK(stash.record_bytes(h.length) == prefix_bytes + frames[i].bytes.size());
    if (stash.put(h.sender, h.type, std::span<const std::byte>(frames[i].bytes).subspan(kFrameHeaderSize),
                  prefix)) {
      MOIRAI_FUZZ_CHECK(stash.bytes() == before + prefix_bytes + frames[i].bytes.size());
      kept.push_back(i);
    } else {
      MOIRAI_FUZZ_CHECK(before + prefix_bytes + frames[i].bytes.size() > limit);
      MOIRAI_FUZZ_CHECK(stash.bytes() == before);
    }
  }
  MOIRAI_FUZZ_CHECK(stash.bytes() <= limit);
  // First the wanted sender's frames, then the rest, each in arrival order.
  for (std::optional<EndpointId> sender : {wanted, std::optional<EndpointId>()}) {
    while (const std::optional<detail::RecvStash::Kept> e = stash.take(sender)) {
      const auto it = std::find_if(kept.begin(), kept.end(), [&](std::size_t i) {
        return !sender || frames[i].header.sender == *sender;
      });
      MOIRAI_FUZZ_CHECK(it != kept.end());
      const Seen& f = frames[*it];
      MOIRAI_FUZZ_CHECK(e->sender == f.header.sender && e->tag == f.header.type);
      MOIRAI_FUZZ_CHECK(e->prefix.size() == prefix_bytes);
      MOIRAI_FUZZ_CHECK(std::all_of(e->prefix.begin(), e->prefix.end(),
                                    [&](std::byte b) { return b == static_cast<std::byte>(*it); }));
      MOIRAI_FUZZ_CHECK(e->payload.size() == f.header.length);
      MOIRAI_FUZZ_CHECK(std::equal(e->payload.begin(), e->payload.end(), f.bytes.begin() + kFrameHeaderSize));
      kept.erase(it);
      stash.release_taken();
    }
    MOIRAI_FUZZ_CHECK(std::none_of(kept.begin(), kept.end(), [&](std::size_t i) {
      return !sender || frames[i].header.sender == *sender;
    }));
  }
  MOIRAI_FUZZ_CHECK(kept.empty() && !stash.has_waiting() && stash.bytes() == 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  InputReader in(data, size);
  // Small maxima reach message_too_large without megabytes of input; 0xff is the default maximum.
  const std::uint8_t max_byte = in.byte();
  const std::uint32_t max = max_byte == 0xff ? kDefaultMaxFrame : max_byte;
  std::vector<std::size_t> cuts(in.byte() % 8);
  for (std::size_t& c : cuts)
    c = 1 + in.byte();
  const std::uint8_t wanted_channel = in.byte();
  const std::size_t limit = 16 * std::size_t{in.byte()};
  const std::size_t prefix_bytes = in.byte() % 40;
  const std::span<const std::byte> stream = in.rest_bytes();

  std::vector<Seen> frames;
  const ParseStatus end = parse_all(stream, max, frames);
  reassemble(stream, max, cuts, frames, end);
  // The wanted sender: one that sent a frame (the first frame's node and shard, this channel), so that
  // recv_from's split between wanted and kept frames is exercised.
  std::optional<EndpointId> wanted;
  if (!frames.empty()) {
    wanted = frames.front().header.sender;
    wanted->channel = wanted_channel;
  }
  stash_round_trip(frames, limit, prefix_bytes, wanted);
  return 0;
}
