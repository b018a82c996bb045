// Broadcast: every shard gets every message, in order per sender, with its sender; a full channel on one
// shard holds the broadcaster back and nothing is dropped; close wakes every shard's receiver.
#include "moirai/transport/broadcast.hpp"

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <vector>

#include "../core/core_test_support.hpp"
#include "moirai/core/runtime.hpp"
#include "moirai/core/spawn.hpp"

namespace {

using moirai::Task;
using moirai_test::two_shards;
using namespace moirai::transport;
using namespace std::chrono_literals;

TEST(Broadcast, EveryShardGetsEveryMessageInOrderPerSender) {
  constexpr int kEach = 500;
  moirai::Runtime rt(two_shards());
  Broadcast<int> b(2, 4, 3);  // a small capacity: the senders are held back often
  // got[receiving shard][sending shard]
  std::array<std::array<std::vector<int>, 2>, 2> got;
  rt.run([&]() -> Task<void> {
    auto receive_on = [&](unsigned shard) {
      return moirai::spawn([&, shard]() -> Task<void> {
        co_await moirai::submit_to(shard, [&, shard]() -> Task<void> {
          for (int n = 0; n < 2 * kEach; ++n) {
            Envelope<int> e = co_await b.recv(5s);
            got[shard][e.sender.shard].push_back(e.payload);
          }
        });
      });
    };
    auto r0 = receive_on(0);
    auto r1 = receive_on(1);
    auto remote = moirai::spawn([&]() -> Task<void> {
      co_await moirai::submit_to(1, [&]() -> Task<void> {
        for (int i = 0; i < kEach; ++i)
          co_await b.send(i);
      });
    });
    for (int i = 0; i < kEach; ++i)
      co_await b.send(-i);
    co_await remote.join();
    co_await r0.join();
    co_await r1.join();
  });
  for (unsigned r = 0; r < 2; ++r) {
    for (unsigned s = 0; s < 2; ++s) {
      ASSERT_EQ(got[r][s].size(), static_cast<std::size_t>(kEach)) << "receiver " << r << " sender " << s;
      for (int i = 0; i < kEach; ++i)
        EXPECT_EQ(got[r][s][static_cast<std::size_t>(i)], s == 0 ? -i : i);
    }
  }
}

TEST(Broadcast, CloseWakesEveryShardsReceiver) {
  moirai::Runtime rt(two_shards());
  Broadcast<int> b(2, 4);
  std::atomic<int> closed_seen{0};
  rt.run([&]() -> Task<void> {
    auto waiter = [&]() -> Task<void> {
      try {
        (void)co_await b.recv(5s);
      } catch (const TransportError& e) {
        if (e.errc() == TransportErrc::closed) closed_seen.fetch_add(1);
      }
    };
    auto w0 = moirai::spawn(waiter);
    auto w1 = moirai::spawn([&]() -> Task<void> { co_await moirai::submit_to(1, waiter); });
    co_await moirai::sleep_for(1ms);
    co_await b.close();
    co_await w0.join();
    co_await w1.join();
    bool refused = false;
    try {
      co_await b.send(1);
    } catch (const TransportError& e) {
      refused = e.errc() == TransportErrc::closed;
    }
    EXPECT_TRUE(refused);
  });
  EXPECT_EQ(closed_seen.load(), 2);
}

TEST(Broadcast, ZeroShardsAndAReceiverOutsideTheSpanAreRefused) {
  EXPECT_THROW(Broadcast<int>(0, 4), moirai::Error);
  moirai::Runtime rt(two_shards());
  Broadcast<int> b(1, 4);
  bool refused = false;
  rt.run([&]() -> Task<void> {
    co_await moirai::submit_to(1, [&]() -> Task<void> {
      try {
        (void)co_await b.recv(1ms);
      } catch (const moirai::Error&) {
        refused = true;
      }
    });
  });
  EXPECT_TRUE(refused);
}

}  // namespace
