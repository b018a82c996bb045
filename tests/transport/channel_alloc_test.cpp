// Channel traffic allocates nothing in steady state: 100k messages from the owner shard and from the other
// shard, received on the owner, after a warm-up, with every operator new and malloc counted.
#include <gtest/gtest.h>

#include "../support/allocation_counter.hpp"
#include "moirai/core/spawn.hpp"
#include "moirai/transport/channel.hpp"

namespace {

using moirai::Task;
using moirai_test::count_allocations;
using moirai_test::Counted;

TEST(ChannelAllocations, NoneAcrossOneHundredThousandMessages) {
  moirai::transport::Channel<std::uint64_t> ch(0, 64);
  auto body = [&ch](int n) -> Task<std::uint64_t> {
    auto remote = moirai::spawn([&ch, n]() -> Task<void> {
      co_await moirai::submit_to(1, [&ch, n]() -> Task<void> {
        for (int i = 0; i < n / 2; ++i)
          co_await ch.send(static_cast<std::uint64_t>(i));
      });
    });
    auto local = moirai::spawn([&ch, n]() -> Task<void> {
      for (int i = 0; i < n / 2; ++i)
        co_await ch.send(1);
    });
    std::uint64_t sum = 0;
    for (int i = 0; i < n; ++i)
      sum += (co_await ch.recv()).payload;
    co_await remote.join();
    co_await local.join();
    co_return sum;
  };
  Counted c = count_allocations(body);
  EXPECT_EQ(c.allocations, 0u);
  EXPECT_GT(c.sum, 0u);
}

}  // namespace
