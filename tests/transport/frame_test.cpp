// The frame format: what write_frame_header writes, what parse_frame accepts and refuses, and the example in
// docs/wire.md, read from the file itself so that the document and the code cannot drift apart.
#include "moirai/transport/frame.hpp"

#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "transport_test_support.hpp"

namespace {

using namespace moirai::transport;

std::vector<std::byte> frame_bytes(const FrameHeader& h, const std::string& payload) {
  return moirai_test::frame_bytes(h.length, h.type, h.sender, payload);
}

// The bytes of the first ```hex block of docs/wire.md.
std::vector<std::byte> documented_example() {
  std::ifstream in(std::string(MOIRAI_SOURCE_DIR) + "/docs/wire.md");
  std::string line;
  bool inside = false;
  std::vector<std::byte> bytes;
  while (std::getline(in, line)) {
    if (!inside) {
      inside = line == "```hex";
      continue;
    }
    if (line == "```") break;
    std::istringstream words(line);
    for (std::string w; words >> w;)
      bytes.push_back(static_cast<std::byte>(std::stoul(w, nullptr, 16)));
  }
  return bytes;
}

TEST(Frame, TheDocumentedExampleIsWhatTheCodeWritesAndReads) {
  const std::vector<std::byte> doc = documented_example();
  ASSERT_EQ(doc.size(), kFrameHeaderSize + 4) << "docs/wire.md lost its ```hex example";
  const FrameHeader h{4, 0x0102, EndpointId{0x0a000001, 2, 7}};
  EXPECT_EQ(frame_bytes(h, "ping"), doc);

  const ParseResult r = parse_frame(doc);
  ASSERT_EQ(r.status, ParseStatus::frame);
  EXPECT_EQ(r.header.length, 4u);
  EXPECT_EQ(r.header.type, 0x0102);
  EXPECT_EQ(r.header.sender, (EndpointId{0x0a000001, 2, 7}));
  EXPECT_EQ(r.consumed, doc.size());
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(r.payload.data()), r.payload.size()), "ping");
}

TEST(Frame, FramesAreParsedOneAfterAnotherFromOneBuffer) {
  std::vector<std::byte> stream;
  for (int i = 0; i < 3; ++i) {
    const std::string payload(static_cast<std::size_t>(i) * 10, static_cast<char>('a' + i));
    const auto f =
        frame_bytes(FrameHeader{static_cast<std::uint32_t>(payload.size()), static_cast<std::uint16_t>(i),
                                EndpointId{1, 0, static_cast<std::uint16_t>(i)}},
                    payload);
    stream.insert(stream.end(), f.begin(), f.end());
  }
  std::span<const std::byte> rest(stream);
  for (int i = 0; i < 3; ++i) {
    const ParseResult r = parse_frame(rest);
    ASSERT_EQ(r.status, ParseStatus::frame) << i;
    EXPECT_EQ(r.header.type, i);
    EXPECT_EQ(r.header.sender.channel, i);
    EXPECT_EQ(r.payload.size(), static_cast<std::size_t>(i) * 10);
    rest = rest.subspan(r.consumed);
  }
  EXPECT_TRUE(rest.empty());
}

TEST(Frame, ATruncatedFrameAsksForWhatIsMissing) {
  const auto f = frame_bytes(FrameHeader{100, 1, {}}, std::string(100, 'x'));
  for (std::size_t n = 0; n < f.size(); ++n) {
    const ParseResult r = parse_frame(std::span<const std::byte>(f.data(), n));
    ASSERT_EQ(r.status, ParseStatus::need_more) << n;
    EXPECT_EQ(r.needed, n < kFrameHeaderSize ? kFrameHeaderSize : f.size()) << n;
  }
  EXPECT_EQ(parse_frame(f).status, ParseStatus::frame);
}

TEST(Frame, AFrameOverTheMaximumIsRefusedFromItsHeaderAlone) {
  std::array<std::byte, kFrameHeaderSize> h{};
  write_frame_header(FrameHeader{kDefaultMaxFrame + 1, 0, {}}, h);
  const ParseResult r = parse_frame(h);
  ASSERT_EQ(r.status, ParseStatus::error);
  EXPECT_EQ(r.error, TransportErrc::message_too_large);
  EXPECT_EQ(r.error.message(), "message too large");
  // The maximum is the receiver's choice.
  write_frame_header(FrameHeader{64, 0, {}}, h);
  EXPECT_EQ(parse_frame(h, 63).error, TransportErrc::message_too_large);
  EXPECT_EQ(parse_frame(h, 64).status, ParseStatus::need_more);
}

TEST(Frame, AnotherVersionOrReservedFlagsAreMalformed) {
  auto f = frame_bytes(FrameHeader{0, 0, {}}, "");
  ASSERT_EQ(parse_frame(f).status, ParseStatus::frame);
  f[6] = std::byte{2};
  EXPECT_EQ(parse_frame(f).error, TransportErrc::malformed);
  f[6] = std::byte{1};
  f[7] = std::byte{0x80};
  EXPECT_EQ(parse_frame(f).error, TransportErrc::malformed);
}

// Random bytes are refused or parsed, never read past the buffer (the sanitizers watch this) and never taken
// for a frame longer than the buffer.
TEST(Frame, RandomBytesNeverReadPastTheBuffer) {
  std::mt19937 rng(12345);
  for (int round = 0; round < 20000; ++round) {
    std::vector<std::byte> junk(rng() % 64);
    for (auto& b : junk)
      b = static_cast<std::byte>(rng());
    if (!junk.empty() && rng() % 2 == 0) junk[std::min<std::size_t>(6, junk.size() - 1)] = std::byte{1};
    const ParseResult r = parse_frame(junk, 1024);
    if (r.status == ParseStatus::frame) {
      EXPECT_LE(r.consumed, junk.size());
      EXPECT_EQ(r.payload.data(), junk.data() + kFrameHeaderSize);
    }
  }
}

TEST(TransportError, CodesCarryTheirCategoryAndMessage) {
  const TransportError e(TransportErrc::not_supported, "recv_from on a raw UDP socket: it has no framing");
  EXPECT_EQ(e.errc(), TransportErrc::not_supported);
  EXPECT_EQ(e.code().category().name(), std::string("moirai.transport"));
  EXPECT_NE(std::string(e.what()).find("no framing"), std::string::npos);
  const std::error_code c = TransportErrc::timeout;
  EXPECT_EQ(c.message(), "timed out");
}

TEST(EndpointId, PacksAndUnpacksEveryField) {
  const EndpointId id{0xdeadbeef, 0x1234, 0xabcd};
  EXPECT_EQ(id.packed(), 0xdeadbeef1234abcdull);
  EXPECT_EQ(EndpointId::unpack(id.packed()), id);
}

}  // namespace
