// FramedStream's receive side: filtered receive over one connection carrying several senders of one node,
// the bounded stash, a receive timeout that loses nothing, frames larger than the first buffer, and large
// payloads sent from where they are.
#include "moirai/transport/framed_stream.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "../core/core_test_support.hpp"
#include "moirai/core/runtime.hpp"
#include "moirai/core/spawn.hpp"
#include "moirai/core/timer.hpp"
#include "transport_test_support.hpp"

namespace {

using moirai::Task;
using moirai_test::one_shard;
using namespace moirai::transport;
using namespace std::chrono_literals;

using moirai_test::bytes_of;
using moirai_test::text_of;

// A connected pair on one shard: `a` is the writing side, `b` the framed reader.
using Pair = moirai_test::StreamPair;
using moirai_test::connected_pair;

Task<void> send_from(StreamSocket& s, EndpointId sender, const std::string& text) {
  co_await s.send_all(moirai_test::frame_bytes(static_cast<std::uint32_t>(text.size()), 1, sender, text));
}

template <class Body>
void on_one_shard(Body body) {
  moirai::Runtime rt(one_shard());
  StreamListener l = StreamListener::bind(SocketAddress::parse("127.0.0.1:0"));
  rt.run([&]() -> Task<void> {
    Pair p = co_await connected_pair(l);
    co_await body(p);
  });
}

TEST(FramedStream, RecvFromTakesOneSendersFramesAndKeepsTheOthersInOrder) {
  const EndpointId x{9, 0, 1};
  const EndpointId y{9, 1, 1};
  std::vector<std::string> from_y, rest;
  on_one_shard([&](Pair& p) -> Task<void> {
    for (int i = 0; i < 4; ++i) {
      co_await send_from(p.a, x, "x" + std::to_string(i));
      co_await send_from(p.a, y, "y" + std::to_string(i));
    }
    FramedStream r(std::move(p.b), EndpointId{}, 1024);
    for (int i = 0; i < 4; ++i) {
      Frame f = co_await r.recv_from(y, 2s);
      EXPECT_EQ(f.header.sender, y);
      from_y.push_back(text_of(f.payload));
    }
    for (int i = 0; i < 4; ++i)
      rest.push_back(text_of((co_await r.recv(2s)).payload));
    EXPECT_EQ(r.stashed_bytes(), 0u);
  });
  EXPECT_EQ(from_y, (std::vector<std::string>{"y0", "y1", "y2", "y3"}));
  EXPECT_EQ(rest, (std::vector<std::string>{"x0", "x1", "x2", "x3"}));
}

TEST(FramedStream, AFullStashIsAnErrorThatLosesNoFrame) {
  const EndpointId x{9, 0, 1};
  const EndpointId y{9, 1, 1};
  TransportErrc seen{};
  std::vector<std::string> all;
  on_one_shard([&](Pair& p) -> Task<void> {
    for (int i = 0; i < 5; ++i)
      co_await send_from(p.a, x, "x" + std::to_string(i));
    co_await send_from(p.a, y, "y");
    FramedOptions o;
    o.max_payload = 64;
    o.stash_bytes = 3 * (kFrameHeaderSize + 2);  // room for three of x's frames
    FramedStream r(std::move(p.b), EndpointId{}, o);
    try {
      (void)co_await r.recv_from(y, 2s);
    } catch (const TransportError& e) {
      seen = e.errc();
    }
    for (int i = 0; i < 6; ++i)
      all.push_back(text_of((co_await r.recv(2s)).payload));
  });
  EXPECT_EQ(seen, TransportErrc::message_too_large);
  EXPECT_EQ(all, (std::vector<std::string>{"x0", "x1", "x2", "x3", "x4", "y"}));
}

TEST(FramedStream, ATimeoutMidFrameKeepsWhatArrived) {
  TransportErrc first{}, second{};
  std::string got;
  on_one_shard([&](Pair& p) -> Task<void> {
    FramedStream r(std::move(p.b), EndpointId{}, 1024);
    try {
      (void)co_await r.recv(5ms);
    } catch (const TransportError& e) {
      first = e.errc();
    }
    // Half a frame, a timeout, then the rest: the frame arrives whole.
    const std::vector<std::byte> out = moirai_test::frame_bytes(5, 1, EndpointId{1, 2, 3}, "hello");
    co_await p.a.send_all(std::span<const std::byte>(out.data(), 10));
    try {
      (void)co_await r.recv(5ms);
    } catch (const TransportError& e) {
      second = e.errc();
    }
    co_await p.a.send_all(std::span<const std::byte>(out.data() + 10, out.size() - 10));
    got = text_of((co_await r.recv(2s)).payload);
  });
  EXPECT_EQ(first, TransportErrc::timeout);
  EXPECT_EQ(second, TransportErrc::timeout);
  EXPECT_EQ(got, "hello");
}

TEST(FramedStream, FramesLargerThanTheFirstBufferArriveWhole) {
  std::vector<std::size_t> sizes;
  bool intact = true;
  on_one_shard([&](Pair& p) -> Task<void> {
    FramedStream w(std::move(p.a), EndpointId{1, 0, 0});
    FramedStream r(std::move(p.b), EndpointId{});
    for (std::size_t n : {std::size_t{10}, std::size_t{100'000}, std::size_t{1} << 20, std::size_t{7}}) {
      std::string payload(n, '\0');
      for (std::size_t i = 0; i < n; ++i)
        payload[i] = static_cast<char>('a' + i % 26);
      auto sending = moirai::spawn(w.send(2, bytes_of(payload)));
      Frame f = co_await r.recv(5s);
      co_await sending.join();
      sizes.push_back(f.payload.size());
      intact = intact && text_of(f.payload) == payload;
    }
  });
  EXPECT_EQ(sizes, (std::vector<std::size_t>{10, 100'000, 1u << 20, 7}));
  EXPECT_TRUE(intact);
}

}  // namespace

namespace {

TEST(FramedStream, QueuedFramesGoOutInOrderWhenFlushedOrWhenTheBufferFills) {
  std::vector<std::string> got;
  bool buffered_after_first = false;
  std::size_t queued_before_flush = 0;
  on_one_shard([&](Pair& p) -> Task<void> {
    FramedOptions small;
    small.send_buffer_bytes = 256;  // a few frames: queueing 100 flushes on its own several times
    FramedStream w(std::move(p.a), EndpointId{1, 0, 0}, small);
    FramedStream r(std::move(p.b), EndpointId{});
    for (int i = 0; i < 100; ++i)
      co_await w.queue(1, bytes_of(std::string("m").append(std::to_string(i))));
    co_await w.queue(1, bytes_of(std::string(1000, 'L')));  // larger than the whole buffer
    co_await w.queue(1, bytes_of("last"));
    queued_before_flush = w.queued_bytes();
    co_await w.flush();
    got.push_back(text_of((co_await r.recv(2s)).payload));
    buffered_after_first = r.has_buffered_frame();
    for (int i = 1; i < 102; ++i)
      got.push_back(text_of((co_await r.recv(2s)).payload));
  });
  ASSERT_EQ(got.size(), 102u);
  for (int i = 0; i < 100; ++i)
    EXPECT_EQ(got[static_cast<std::size_t>(i)], std::string("m").append(std::to_string(i)));
  EXPECT_EQ(got[100], std::string(1000, 'L'));
  EXPECT_EQ(got[101], "last");
  EXPECT_EQ(queued_before_flush, kFrameHeaderSize + 4);
  EXPECT_TRUE(buffered_after_first);  // the burst arrived together: the next frames need no syscall
}

}  // namespace
