// Cross-core channels: every message arrives, in order per sender, with its sender; a full channel holds its
// senders back; a filtered receive leaves the other senders' messages queued; timeouts and close are errors
// the receiver can tell apart.
#include "moirai/transport/channel.hpp"

#include <gtest/gtest.h>

#include <map>
#include <vector>

#include "../core/core_test_support.hpp"
#include "moirai/core/runtime.hpp"
#include "moirai/core/spawn.hpp"

namespace {

using moirai::Task;
using moirai_test::two_shards;
using namespace moirai::transport;
using namespace std::chrono_literals;

TEST(Channel, EveryMessageArrivesInOrderPerSenderFromBothShards) {
  moirai::Runtime rt(two_shards());
  Channel<int> ch(0, 8, 5);
  std::map<std::uint16_t, std::vector<int>> got;
  rt.run([&]() -> Task<void> {
    constexpr int kEach = 2000;
    auto remote = moirai::spawn([&]() -> Task<void> {
      co_await moirai::submit_to(1, [&]() -> Task<void> {
        for (int i = 0; i < kEach; ++i)
          co_await ch.send(i);
      });
    });
    auto local = moirai::spawn([&]() -> Task<void> {
      for (int i = 0; i < kEach; ++i)
        co_await ch.send(-i);
    });
    for (int n = 0; n < 2 * kEach; ++n) {
      Envelope<int> e = co_await ch.recv();
      got[e.sender.shard].push_back(e.payload);
    }
    co_await remote.join();
    co_await local.join();
  });
  ASSERT_EQ(got.size(), 2u);
  ASSERT_EQ(got[1].size(), 2000u);
  ASSERT_EQ(got[0].size(), 2000u);
  for (int i = 0; i < 2000; ++i) {
    EXPECT_EQ(got[1][static_cast<std::size_t>(i)], i);
    EXPECT_EQ(got[0][static_cast<std::size_t>(i)], -i);
  }
  EXPECT_EQ(ch.id(), (EndpointId{0, 0, 5}));
}

TEST(Channel, AFullChannelHoldsItsSenderBackUntilThereIsRoom) {
  moirai::RuntimeOptions o = two_shards();
  o.cpus = {0};
  moirai::Runtime rt(o);
  Channel<int> ch(0, 4);
  std::size_t queued_while_full = 0;
  bool sender_done_while_full = true;
  std::vector<int> got;
  rt.run([&]() -> Task<void> {
    auto sender = moirai::spawn([&]() -> Task<void> {
      for (int i = 0; i < 10; ++i)
        co_await ch.send(i);
    });
    for (int i = 0; i < 5; ++i)
      co_await moirai::yield();
    queued_while_full = ch.size();
    sender_done_while_full = sender.done();
    for (int i = 0; i < 10; ++i)
      got.push_back((co_await ch.recv()).payload);
    co_await sender.join();
  });
  EXPECT_EQ(queued_while_full, 4u);
  EXPECT_FALSE(sender_done_while_full);
  EXPECT_EQ(got, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
}

TEST(Channel, FilteredReceiveTakesOneSendersMessagesAndKeepsTheOthers) {
  moirai::RuntimeOptions o = two_shards();
  o.cpus = {0};
  moirai::Runtime rt(o);
  Channel<int> ch(0, 16);
  std::vector<int> from_two, rest;
  rt.run([&]() -> Task<void> {
    for (int i = 0; i < 6; ++i)
      co_await ch.send(i, static_cast<std::uint16_t>(1 + i % 2));  // 0,2,4 from channel 1; 1,3,5 from 2
    const EndpointId two{0, 0, 2};
    for (int i = 0; i < 3; ++i)
      from_two.push_back((co_await ch.recv_from(two)).payload);
    for (int i = 0; i < 3; ++i)
      rest.push_back((co_await ch.recv()).payload);
  });
  EXPECT_EQ(from_two, (std::vector<int>{1, 3, 5}));
  EXPECT_EQ(rest, (std::vector<int>{0, 2, 4}));
}

TEST(Channel, ATimeoutAndACloseAreErrorsTheReceiverCanTellApart) {
  moirai::RuntimeOptions o = two_shards();
  o.cpus = {0};
  moirai::Runtime rt(o);
  Channel<int> ch(0, 4);
  TransportErrc on_empty{}, after_close{}, send_after_close{};
  int queued_before_close = -1;
  rt.run([&]() -> Task<void> {
    try {
      co_await ch.recv(1ms);
    } catch (const TransportError& e) {
      on_empty = e.errc();
    }
    co_await ch.send(42);
    ch.close();
    queued_before_close = (co_await ch.recv()).payload;  // what was queued is still delivered
    try {
      co_await ch.recv();
    } catch (const TransportError& e) {
      after_close = e.errc();
    }
    try {
      co_await ch.send(1);
    } catch (const TransportError& e) {
      send_after_close = e.errc();
    }
  });
  EXPECT_EQ(on_empty, TransportErrc::timeout);
  EXPECT_EQ(queued_before_close, 42);
  EXPECT_EQ(after_close, TransportErrc::closed);
  EXPECT_EQ(send_after_close, TransportErrc::closed);
}

TEST(Channel, CloseWakesAWaitingReceiver) {
  moirai::RuntimeOptions o = two_shards();
  o.cpus = {0};
  moirai::Runtime rt(o);
  Channel<int> ch(0, 4);
  TransportErrc seen{};
  rt.run([&]() -> Task<void> {
    auto receiver = moirai::spawn([&]() -> Task<void> {
      try {
        co_await ch.recv();
      } catch (const TransportError& e) {
        seen = e.errc();
      }
    });
    co_await moirai::yield();
    ch.close();
    co_await receiver.join();
  });
  EXPECT_EQ(seen, TransportErrc::closed);
}

TEST(Channel, ReceivingOffTheOwnerShardIsRefused) {
  moirai::Runtime rt(two_shards());
  Channel<int> ch(0, 4);
  std::string what;
  rt.run([&]() -> Task<void> {
    what = co_await moirai::submit_to(1, [&]() -> Task<std::string> {
      try {
        co_await ch.recv();
      } catch (const moirai::Error& e) {
        co_return e.what();
      }
      co_return "";
    });
  });
  EXPECT_NE(what.find("belongs to shard 0"), std::string::npos) << what;
}

}  // namespace
