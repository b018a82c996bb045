// IPC traffic allocates nothing in steady state: 100k round trips between two shards through an IpcChannel
// (both ends in this process, each on its own shard, so each receive suspends and is resumed by the
// shard's poller), after a warm-up, with every operator new and malloc counted.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "../support/allocation_counter.hpp"
#include "moirai/core/spawn.hpp"
#include "moirai/core/submit.hpp"
#include "moirai/transport/ipc.hpp"

namespace {

using moirai::Task;
using moirai::transport::EndpointId;
using moirai::transport::IpcChannel;
using moirai::transport::IpcMessage;
using moirai_test::count_allocations;
using moirai_test::Counted;

TEST(IpcAllocations, NoneAcrossOneHundredThousandRoundTrips) {
  const std::string name = "moirai-ipc-alloc-test-" + std::to_string(::getpid());
  IpcChannel near = IpcChannel::create(name);
  IpcChannel far = IpcChannel::open(name, EndpointId{2, 1, 0});
  auto body = [&](int n) -> Task<std::uint64_t> {
    auto echo = moirai::spawn([&far, n]() -> Task<void> {
      co_await moirai::submit_to(1, [&far, n]() -> Task<void> {
        for (int i = 0; i < n; ++i) {
          IpcMessage m = co_await far.recv();
          co_await far.send(m.payload, m.sender);
        }
      });
    });
    std::uint64_t sum = 0;
    std::byte payload[64]{};
    for (int i = 0; i < n; ++i) {
      std::memcpy(payload, &i, sizeof(i));
      co_await near.send(payload);
      IpcMessage m = co_await near.recv();
      int back = 0;
      std::memcpy(&back, m.payload.data(), sizeof(back));
      sum += back == i ? 1 : 0;
    }
    co_await echo.join();
    co_return sum;
  };
  Counted c = count_allocations(body);
  EXPECT_EQ(c.allocations, 0u);
  EXPECT_EQ(c.sum, 101'000u);
}

}  // namespace
