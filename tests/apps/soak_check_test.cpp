#include "soak_check.hpp"

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "moirai/core/error.hpp"
#include "soak.hpp"

namespace {

using moirai::cli::SoakOptions;
using moirai::cli::SoakRow;
using moirai::cli::soak::Counts;
using moirai::cli::soak::encode;
using moirai::cli::soak::kMessageHeader;
using moirai::cli::soak::Verifier;

constexpr std::size_t kPayload = 61;  // not a multiple of 8: the filler's last word is partial

std::vector<std::byte> message(std::uint32_t sender, std::uint64_t seq, std::size_t size = kPayload) {
  std::vector<std::byte> m(size);
  encode(sender, seq, m);
  return m;
}

// Feeds sender 0's messages in the order `seqs` gives.
Counts run(std::uint64_t expected, const std::vector<std::uint64_t>& seqs) {
  Verifier v({expected}, kPayload);
  for (std::uint64_t s : seqs)
    v.check(message(0, s));
  return v.finish();
}

TEST(SoakVerifier, AnIntactStreamIsClean) {
  const Counts c = run(5, {0, 1, 2, 3, 4});
  EXPECT_TRUE(c.clean());
  EXPECT_EQ(c.received, 5u);
  EXPECT_EQ(c.violations(), "");
}

TEST(SoakVerifier, CountsAMessageThatNeverCameAsLost) {
  const Counts c = run(5, {0, 1, 3, 4});
  EXPECT_FALSE(c.clean());
  EXPECT_EQ(c.lost, 1u);
  EXPECT_EQ(c.received, 4u);
  EXPECT_EQ(c.duplicated + c.reordered + c.corrupt, 0u);
  EXPECT_EQ(c.violations(), "1 lost");
}

TEST(SoakVerifier, CountsAMessageThatCameTwiceAsDuplicated) {
  const Counts c = run(4, {0, 1, 1, 2, 3, 3});
  EXPECT_EQ(c.duplicated, 2u);
  EXPECT_EQ(c.lost, 0u);
  EXPECT_EQ(c.reordered, 0u);
  EXPECT_FALSE(c.clean());
}

TEST(SoakVerifier, CountsAMessageThatCameAfterALaterOneAsReordered) {
  const Counts c = run(5, {0, 2, 1, 3, 4});
  EXPECT_EQ(c.reordered, 1u);
  EXPECT_EQ(c.lost, 0u);
  EXPECT_EQ(c.duplicated, 0u);
  EXPECT_EQ(c.violations(), "1 reordered");
}

TEST(SoakVerifier, OrderIsPerSender) {
  Verifier v({3, 3}, kPayload);
  for (std::uint64_t s = 0; s < 3; ++s) {  // interleaved: each sender's own order is kept
    EXPECT_TRUE(v.check(message(1, s)));
    EXPECT_TRUE(v.check(message(0, s)));
  }
  EXPECT_TRUE(v.finish().clean());

  Verifier w({2, 2}, kPayload);
  w.check(message(0, 1));
  w.check(message(1, 0));
  w.check(message(0, 0));  // sender 0 out of order
  w.check(message(1, 1));
  EXPECT_EQ(w.finish().reordered, 1u);
}

TEST(SoakVerifier, CountsEveryKindOfDamageAsCorrupt) {
  auto corrupt_after = [](auto damage) {
    Verifier v({2}, kPayload);
    std::vector<std::byte> m = message(0, 0);
    damage(m);
    EXPECT_FALSE(v.check(m));
    v.check(message(0, 1));
    return v.finish();
  };
  const auto flip = [](std::size_t at) {
    return [at](std::vector<std::byte>& m) { m[at] ^= std::byte{0x10}; };
  };
  for (std::size_t at :
       {std::size_t{0}, std::size_t{5}, std::size_t{9}, std::size_t{17}, kMessageHeader, kPayload - 1}) {
    const Counts c = corrupt_after(flip(at));
    EXPECT_EQ(c.corrupt, 1u) << "a bit flipped at byte " << at;
    EXPECT_EQ(c.lost, 1u) << "the damaged message does not count as received (byte " << at << ")";
    EXPECT_EQ(c.received, 1u);
  }
  const Counts shorter = corrupt_after([](std::vector<std::byte>& m) { m.pop_back(); });
  EXPECT_EQ(shorter.corrupt, 1u);
  // Intact messages, but of a sender or a sequence number that was never sent.
  Verifier v({2}, kPayload);
  EXPECT_FALSE(v.check(message(1, 0)));
  EXPECT_FALSE(v.check(message(0, 2)));
  EXPECT_FALSE(v.check(message(0, 0, kPayload + 8)));
  v.reject();
  EXPECT_EQ(v.finish().corrupt, 4u);
  EXPECT_EQ(v.finish().lost, 2u);
}

TEST(SoakVerifier, ACorruptedMessageWithItsChecksumRedoneIsStillCaught) {
  std::vector<std::byte> m = message(0, 0);
  m[kMessageHeader + 3] ^= std::byte{1};
  // Recompute the checksum over the damaged bytes: the filler no longer matches (sender, seq).
  const std::uint64_t sum = moirai::cli::soak::checksum(m);
  for (std::size_t i = 0; i < 8; ++i)
    m[16 + i] = static_cast<std::byte>(sum >> (8 * i));
  Verifier v({1}, kPayload);
  EXPECT_FALSE(v.check(m));
  EXPECT_EQ(v.finish().corrupt, 1u);
}

TEST(SoakVerifier, ReportsEveryViolationInOneLine) {
  const Counts c = run(6, {0, 2, 1, 1, 5});
  EXPECT_EQ(c.violations(), "2 lost, 1 duplicated, 1 reordered");
}

TEST(SoakVerifier, RefusesAPayloadTooSmallForTheHeader) {
  EXPECT_THROW(Verifier({1}, kMessageHeader - 1), moirai::Error);
}

TEST(SoakSplit, SpreadsMessagesAsEvenlyAsPossible) {
  EXPECT_EQ(moirai::cli::soak::split(10, 4), (std::vector<std::uint64_t>{3, 3, 2, 2}));
  EXPECT_EQ(moirai::cli::soak::split(3, 1), (std::vector<std::uint64_t>{3}));
}

TEST(SoakRss, ReadsThisProcesssResidentMemory) {
  EXPECT_GT(moirai::cli::soak::resident_kb(), 0u);
}

TEST(SoakRow, FailsWhenResidentMemoryGrowsPastItsBound) {
  SoakRow r;
  r.counts.expected = r.counts.received = 10;
  r.rss_start_kb = 10'000;
  r.rss_bound_kb = 1024;
  r.rss_end_kb = 11'024;
  EXPECT_TRUE(r.passed());
  r.rss_end_kb = 11'025;
  EXPECT_FALSE(r.passed());
  EXPECT_NE(r.violations().find("resident memory grew 1025 KiB"), std::string::npos) << r.violations();
  r.rss_end_kb = 10'000;
  r.peer_rss_start_kb = 5000;
  r.peer_rss_end_kb = 7000;
  EXPECT_FALSE(r.passed());
  EXPECT_NE(r.violations().find("sending process"), std::string::npos) << r.violations();
}

TEST(SoakRow, AFailureMidwayFailsTheRow) {
  SoakRow r;
  r.counts.expected = 10;
  r.counts.received = 10;
  r.failure = "the sender failed";
  EXPECT_FALSE(r.passed());
  EXPECT_NE(r.violations().find("the sender failed"), std::string::npos);
}

TEST(SoakOptions, RefusesWhatCannotBeChecked) {
  auto refused = [](SoakOptions o, const std::string& names) {
    try {
      moirai::cli::check_soak_options(o);
    } catch (const moirai::Error& e) {
      EXPECT_NE(std::string(e.what()).find(names), std::string::npos) << e.what();
      return true;
    }
    return false;
  };
  SoakOptions ok;
  EXPECT_FALSE(refused(ok, ""));
  SoakOptions none;
  none.messages = 0;
  EXPECT_TRUE(refused(none, "--messages 0"));
  SoakOptions unknown;
  unknown.transports = {"carrier-pigeon"};
  EXPECT_TRUE(refused(unknown, "carrier-pigeon"));
  SoakOptions tiny;
  tiny.payload = 8;
  EXPECT_TRUE(refused(tiny, "--payload 8"));
  SoakOptions big;  // too large for a channel slot, and so for `all`
  big.payload = 1000;
  EXPECT_TRUE(refused(big, "channel"));
  big.transports = {"tcp"};
  EXPECT_FALSE(refused(big, ""));
  big.payload = 4000;
  big.transports = {"udp"};
  EXPECT_TRUE(refused(big, "udp"));
  SoakOptions crowd;
  crowd.messages = 3;
  crowd.senders = 4;
  EXPECT_TRUE(refused(crowd, "--senders 4"));
}

}  // namespace
