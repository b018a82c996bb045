// The stash behind recv_from: records in arrival order, the oldest of one sender or of any, a capacity that
// refuses without losing what is kept, and no allocation after the first.
#include "moirai/transport/detail/recv_stash.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "../support/allocation_counter.hpp"

namespace {

using moirai::transport::EndpointId;
using moirai::transport::detail::RecvStash;

constexpr EndpointId kX{1, 0, 1};
constexpr EndpointId kY{1, 0, 2};
constexpr EndpointId kZ{2, 3, 4};

std::span<const std::byte> bytes_of(std::string_view s) {
  return std::as_bytes(std::span<const char>(s.data(), s.size()));
}
std::string text_of(std::span<const std::byte> b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

// "x<i>", built by appending (g++ 12 warns falsely on a literal + std::string under -O3).
std::string numbered(int i) {
  std::string s = "x";
  s.append(std::to_string(i));
  return s;
}

// Takes (of `sender`, or of any) until nothing is left, releasing each record after reading it.
std::vector<std::string> drain(RecvStash& s, std::optional<EndpointId> sender = std::nullopt) {
  std::vector<std::string> out;
  while (std::optional<RecvStash::Kept> k = s.take(sender)) {
    out.push_back(text_of(k->payload));
    s.release_taken();
  }
  return out;
}

TEST(RecvStash, GivesRecordsBackInArrivalOrder) {
  RecvStash s(1024);
  EXPECT_FALSE(s.has_waiting());
  EXPECT_FALSE(s.take(std::nullopt));
  for (const char* m : {"x0", "y0", "x1", "z0", "y1"})
    ASSERT_TRUE(s.put(m[0] == 'x' ? kX : m[0] == 'y' ? kY : kZ, 0, bytes_of(m)));
  EXPECT_TRUE(s.has_waiting());
  EXPECT_EQ(drain(s), (std::vector<std::string>{"x0", "y0", "x1", "z0", "y1"}));
  EXPECT_EQ(s.bytes(), 0u);
}

TEST(RecvStash, TakesTheOldestOfOneSenderAndKeepsTheOthersInOrder) {
  RecvStash s(1024);
  for (const char* m : {"x0", "y0", "x1", "z0", "y1", "x2"})
    ASSERT_TRUE(s.put(m[0] == 'x' ? kX : m[0] == 'y' ? kY : kZ, 0, bytes_of(m)));
  EXPECT_EQ(drain(s, kY), (std::vector<std::string>{"y0", "y1"}));
  std::optional<RecvStash::Kept> z = s.take(kZ);
  ASSERT_TRUE(z);
  EXPECT_EQ(z->sender, kZ);
  EXPECT_EQ(text_of(z->payload), "z0");
  s.release_taken();
  EXPECT_FALSE(s.take(kY));
  EXPECT_EQ(drain(s), (std::vector<std::string>{"x0", "x1", "x2"}));
}

TEST(RecvStash, RecordsCarrySenderTagAndPrefix) {
  RecvStash s(1024, 8);
  const std::byte prefix[3] = {std::byte{7}, std::byte{8}, std::byte{9}};
  ASSERT_TRUE(s.put(kZ, 0xBEEF0001u, bytes_of("payload"), prefix));
  ASSERT_TRUE(s.put(kX, 2, {}));  // an empty payload, no prefix
  std::optional<RecvStash::Kept> k = s.take(std::nullopt);
  ASSERT_TRUE(k);
  EXPECT_EQ(k->sender, kZ);
  EXPECT_EQ(k->tag, 0xBEEF0001u);
  EXPECT_EQ(text_of(k->payload), "payload");
  ASSERT_EQ(k->prefix.size(), 8u);
  const std::vector<std::byte> expected = {std::byte{7}, std::byte{8}, std::byte{9}, std::byte{0},
                                           std::byte{0}, std::byte{0}, std::byte{0}, std::byte{0}};
  EXPECT_EQ(std::vector<std::byte>(k->prefix.begin(), k->prefix.end()), expected);
  s.release_taken();
  k = s.take(std::nullopt);
  ASSERT_TRUE(k);
  EXPECT_EQ(k->sender, kX);
  EXPECT_EQ(k->tag, 2u);
  EXPECT_TRUE(k->payload.empty());
  EXPECT_TRUE(std::all_of(k->prefix.begin(), k->prefix.end(), [](std::byte b) { return b == std::byte{0}; }));
}

TEST(RecvStash, AFullStashRefusesAndKeepsWhatItHolds) {
  RecvStash s(3 * (RecvStash::kRecordHead + 2), 0);
  EXPECT_EQ(s.record_bytes(2), RecvStash::kRecordHead + 2);
  ASSERT_TRUE(s.put(kX, 0, bytes_of("x0")));
  ASSERT_TRUE(s.put(kY, 0, bytes_of("y0")));
  ASSERT_TRUE(s.put(kX, 0, bytes_of("x1")));
  EXPECT_EQ(s.bytes(), s.capacity());
  EXPECT_FALSE(s.put(kZ, 0, bytes_of("z0")));
  EXPECT_FALSE(s.put(kZ, 0, {}));  // a head alone does not fit either
  EXPECT_EQ(s.bytes(), s.capacity());
  // A prefix longer than the stash's own is refused too.
  RecvStash p(1024, 2);
  const std::byte long_prefix[3]{};
  EXPECT_FALSE(p.put(kX, 0, bytes_of("x"), long_prefix));
  EXPECT_FALSE(p.has_waiting());
  // What was refused took nothing; what was kept is all there.
  EXPECT_EQ(drain(s), (std::vector<std::string>{"x0", "y0", "x1"}));
}

TEST(RecvStash, ACountOfRecordsBoundsItAsItsBytesDo) {
  RecvStash s(1024, 0, 2);  // room for many bytes, two records
  EXPECT_EQ(s.max_records(), 2u);
  ASSERT_TRUE(s.put(kX, 0, bytes_of("x0")));
  ASSERT_TRUE(s.put(kY, 0, bytes_of("y0")));
  EXPECT_FALSE(s.put(kX, 0, bytes_of("x1")));
  // A record taken and released makes room for one more.
  std::optional<RecvStash::Kept> k = s.take(kY);
  ASSERT_TRUE(k.has_value());
  EXPECT_EQ(text_of(k->payload), "y0");
  s.release_taken();
  EXPECT_TRUE(s.put(kX, 0, bytes_of("x1")));
  EXPECT_FALSE(s.put(kZ, 0, {}));
  EXPECT_EQ(drain(s), (std::vector<std::string>{"x0", "x1"}));
}

TEST(RecvStash, ATakenRecordHoldsItsRoomUntilReleased) {
  RecvStash s(2 * (RecvStash::kRecordHead + 2));
  ASSERT_TRUE(s.put(kX, 0, bytes_of("x0")));
  ASSERT_TRUE(s.put(kY, 0, bytes_of("y0")));
  std::optional<RecvStash::Kept> k = s.take(kY);
  ASSERT_TRUE(k);
  EXPECT_EQ(s.bytes(), s.record_bytes(2));  // the taken one no longer counts as waiting
  EXPECT_EQ(text_of(k->payload), "y0");
  s.release_taken();
  // Room again, behind x0, which stays the oldest.
  ASSERT_TRUE(s.put(kZ, 0, bytes_of("z0")));
  EXPECT_EQ(drain(s), (std::vector<std::string>{"x0", "z0"}));
}

TEST(RecvStash, RoomFreedInFrontIsUsedAgainInOrder) {
  RecvStash s(3 * (RecvStash::kRecordHead + 2));
  std::vector<std::string> out;
  int next = 0;
  for (int i = 0; i < 3; ++i, ++next)
    ASSERT_TRUE(s.put(kX, 0, bytes_of(numbered(next))));
  // Take the oldest and keep one more, round after round: the buffer's front and back both move.
  for (int round = 0; round < 20; ++round, ++next) {
    std::optional<RecvStash::Kept> k = s.take(std::nullopt);
    ASSERT_TRUE(k);
    out.push_back(text_of(k->payload));
    s.release_taken();
    ASSERT_TRUE(s.put(round % 2 ? kX : kY, 0, bytes_of(numbered(next % 10))));
  }
  std::vector<std::string> rest = drain(s);
  out.insert(out.end(), rest.begin(), rest.end());
  ASSERT_EQ(out.size(), 23u);
  for (std::size_t i = 0; i < out.size(); ++i)
    EXPECT_EQ(out[i], numbered(static_cast<int>(i % 10)));
}

TEST(RecvStash, AllocatesOnceAndNeverAgain) {
  RecvStash s(4 * (RecvStash::kRecordHead + 4), 8);
  s.reserve();
  const std::byte prefix[8]{};
  moirai_test::g_allocations.store(0);
  moirai_test::g_counting.store(true);
  std::uint64_t taken = 0;
  for (int i = 0; i < 1000; ++i) {
    const bool kept = s.put(i % 3 ? kX : kY, static_cast<std::uint32_t>(i), bytes_of("abcd"), prefix);
    if (!kept || i % 2) {
      if (std::optional<RecvStash::Kept> k = s.take(i % 4 ? std::optional<EndpointId>(kY) : std::nullopt)) {
        ++taken;
        s.release_taken();
      }
    }
  }
  moirai_test::g_counting.store(false);
  EXPECT_EQ(moirai_test::g_allocations.load(), 0u);
  EXPECT_GT(taken, 0u);
}

}  // namespace
