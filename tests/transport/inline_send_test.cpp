// Sends made as non-blocking syscalls (RuntimeOptions::inline_io_per_resumption): frames and datagrams
// arrive whole and in order either way, a send that finds the socket full goes on through the ring and loses
// nothing, a task that does nothing but send still lets the shard's other tasks run, and errors read the
// same as the ring's.
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <string>
#include <vector>

#include "../core/core_test_support.hpp"
#include "moirai/core/runtime.hpp"
#include "moirai/core/spawn.hpp"
#include "moirai/core/timer.hpp"
#include "moirai/transport/datagram_socket.hpp"
#include "moirai/transport/framed_stream.hpp"
#include "moirai/transport/stream_socket.hpp"
#include "transport_test_support.hpp"

namespace {

using moirai::Task;
using moirai_test::bytes_of;
using moirai_test::one_shard;
using moirai_test::text_of;
using namespace moirai::transport;
using namespace std::chrono_literals;

moirai::RuntimeOptions with_inline(unsigned per_resumption) {
  moirai::RuntimeOptions o = one_shard();
  o.inline_io_per_resumption = per_resumption;
  return o;
}

using Pair = moirai_test::StreamPair;
using moirai_test::connected_pair;

class InlineSends : public ::testing::TestWithParam<unsigned> {};

TEST_P(InlineSends, FramedStreamFramesArriveWholeAndInOrder) {
  moirai::Runtime rt(with_inline(GetParam()));
  StreamListener l = StreamListener::bind(SocketAddress::parse("127.0.0.1:0"));
  std::vector<std::string> got;
  rt.run([&]() -> Task<void> {
    Pair p = co_await connected_pair(l);
    FramedStream w(std::move(p.a), EndpointId{1, 0, 0});
    FramedStream r(std::move(p.b), EndpointId{});
    for (int i = 0; i < 1000; ++i) {
      co_await w.send(1, bytes_of(std::string("frame ").append(std::to_string(i))));
      if (i % 10 == 9) {  // now and then the reader catches up, so the socket never fills
        while (got.size() < static_cast<std::size_t>(i + 1))
          got.push_back(text_of((co_await r.recv(2s)).payload));
      }
    }
  });
  ASSERT_EQ(got.size(), 1000u);
  for (std::size_t i = 0; i < got.size(); ++i)
    EXPECT_EQ(got[i], std::string("frame ").append(std::to_string(i)));
  if (GetParam() == 0) {
    EXPECT_EQ(rt.stats(0).inline_io, 0u) << "every send through the ring";
  } else {
    EXPECT_GE(rt.stats(0).inline_io, 900u) << "the sends found room: almost all of them were syscalls";
  }
}

TEST_P(InlineSends, AStreamThatFillsGoesOnThroughTheRingAndLosesNothing) {
  moirai::Runtime rt(with_inline(GetParam()));
  StreamListener l = StreamListener::bind(SocketAddress::parse("127.0.0.1:0"));
  constexpr std::size_t kChunk = 64 * 1024;
  constexpr int kChunks = 128;  // 8 MiB: far more than loopback's socket buffers hold
  std::size_t received = 0;
  bool intact = true;
  rt.run([&]() -> Task<void> {
    Pair p = co_await connected_pair(l);
    auto sender = moirai::spawn([](StreamSocket& s) -> Task<void> {
      std::vector<std::byte> chunk(kChunk);
      for (int c = 0; c < kChunks; ++c) {
        for (std::size_t i = 0; i < kChunk; ++i)
          chunk[i] = static_cast<std::byte>((static_cast<std::size_t>(c) * kChunk + i) % 251);
        co_await s.send_all(chunk);
      }
    }(p.a));
    co_await moirai::sleep_for(20ms);  // the sender fills the socket and waits in the ring for room
    EXPECT_FALSE(sender.done()) << "8 MiB cannot fit loopback's buffers while nobody reads";
    std::vector<std::byte> buf(kChunk);
    while (received < kChunk * kChunks) {
      const std::size_t n = co_await p.b.recv_some(buf, 5s);
      if (n == 0) break;
      for (std::size_t i = 0; i < n; ++i)
        intact &= buf[i] == static_cast<std::byte>((received + i) % 251);
      received += n;
    }
    co_await sender.join();
  });
  EXPECT_EQ(received, kChunk * kChunks);
  EXPECT_TRUE(intact) << "every byte in its place";
}

TEST_P(InlineSends, ATaskThatOnlySendsStillLetsTheShardsOtherTasksRun) {
  moirai::Runtime rt(with_inline(GetParam()));
  int laps_while_sending = -1;
  rt.run([&]() -> Task<void> {
    DatagramSocket sink = DatagramSocket::bind(SocketAddress::parse("127.0.0.1:0"));
    DatagramSocket out = DatagramSocket::bind(SocketAddress::parse("127.0.0.1:0"));
    out.connect(sink.local_address());
    int laps = 0;
    bool done = false;
    auto counter = moirai::spawn([](int& n, bool& stop) -> Task<void> {
      while (!stop) {
        ++n;
        co_await moirai::yield();
      }
    }(laps, done));
    co_await moirai::yield();  // the counter is under way
    const int at_start = laps;
    for (int i = 0; i < 200; ++i)
      co_await out.send(bytes_of("tick"));  // the sink never reads; UDP drops what does not fit
    laps_while_sending = laps - at_start;
    done = true;
    co_await counter.join();
  });
  EXPECT_GT(laps_while_sending, 0) << "200 sends that all found room still suspended the sender now and then";
}

TEST_P(InlineSends, ASendToAClosedPortFailsAsTheRingsWould) {
  moirai::Runtime rt(with_inline(GetParam()));
  TransportErrc got{};
  rt.run([&]() -> Task<void> {
    SocketAddress gone;
    {
      DatagramSocket s = DatagramSocket::bind(SocketAddress::parse("127.0.0.1:0"));
      gone = s.local_address();
    }
    DatagramSocket out = DatagramSocket::bind(SocketAddress::parse("127.0.0.1:0"));
    out.connect(gone);
    // The first send draws the ICMP port unreachable; a later one reports it.
    for (int i = 0; i < 10 && got == TransportErrc{}; ++i) {
      try {
        co_await out.send(bytes_of("anyone?"));
        co_await moirai::sleep_for(1ms);
      } catch (const TransportError& e) {
        got = e.errc();
      }
    }
  });
  EXPECT_EQ(got, TransportErrc::connection_refused);
}

INSTANTIATE_TEST_SUITE_P(PerResumption, InlineSends, ::testing::Values(16u, 0u),
                         [](const ::testing::TestParamInfo<unsigned>& i) {
                           return i.param == 0 ? std::string("RingOnly") : "Inline" + std::to_string(i.param);
                         });

}  // namespace
