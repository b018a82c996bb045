// FramedStream: filtered receive over one connection carrying several senders of one node, the bounded
// stash, a receive timeout that loses nothing, frames larger than the first buffer, large payloads sent from
// where they are, several tasks sending at once, and a second receiver refused.
#include "moirai/transport/framed_stream.hpp"

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>
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

// Payload of frame `i` of sender task `t`: its sequence number, then bytes that depend on both, over sizes
// from 4 bytes to beyond the send buffer (16 KiB), so frames are queued, flushed, sent alone or in pieces.
std::vector<std::byte> payload_of(int t, int i) {
  const std::size_t n = 4 + static_cast<std::size_t>((t * 7919 + i * 104729) % 40000);
  std::vector<std::byte> p(n);
  std::memcpy(p.data(), &i, sizeof i);
  for (std::size_t k = sizeof i; k < n; ++k)
    p[k] = static_cast<std::byte>((t * 31 + i + static_cast<int>(k)) & 0xff);
  return p;
}

// Four tasks send on one stream at once, through send(), queue() and flush(), with a send buffer so small
// that sends wait in the ring for room: every frame arrives whole, each task's in the order it sent them.
// (Only the sender's buffer shrinks: a receive buffer shrunk on an established connection makes TCP drip
// its bytes at the zero-window probe's pace.)
constexpr int kTasks = 4;
constexpr int kFrames = 150;

TEST(FramedStream, SeveralTasksSendingAtOnceEachFrameArrivesWholeAndInOrder) {
  int received = 0;
  int intact = 0;
  std::vector<int> next(kTasks, 0);
  on_one_shard([&](Pair& p) -> Task<void> {
    const int small = 4096;
    EXPECT_EQ(::setsockopt(p.a.fd(), SOL_SOCKET, SO_SNDBUF, &small, sizeof small), 0);
    FramedStream w(std::move(p.a), EndpointId{1, 0, 0});
    FramedStream r(std::move(p.b), EndpointId{}, 64 * 1024);
    auto reader = moirai::spawn([&]() -> Task<void> {
      while (received < kTasks * kFrames) {
        Frame f = co_await r.recv(5s);
        ++received;
        const int t = f.header.type;
        if (t < 0 || t >= kTasks) continue;
        const int i = next[static_cast<std::size_t>(t)]++;
        const std::vector<std::byte> want = payload_of(t, i);
        if (f.payload.size() == want.size() && std::equal(want.begin(), want.end(), f.payload.begin()))
          ++intact;
      }
    });
    std::vector<moirai::TaskHandle<void>> senders;
    for (int t = 0; t < kTasks; ++t) {
      senders.push_back(moirai::spawn([&w, t]() -> Task<void> {
        for (int i = 0; i < kFrames; ++i) {
          const std::vector<std::byte> payload = payload_of(t, i);
          const auto type = static_cast<std::uint16_t>(t);
          if (i % 3 == 0) {
            co_await w.send(type, payload);
          } else {
            co_await w.queue(type, payload);
            if (i % 3 == 1) co_await w.flush();
          }
          if (i % 5 == 0) co_await moirai::yield();
        }
        co_await w.flush();
      }));
    }
    for (auto& h : senders)
      co_await h.join();
    co_await reader.join();
  });
  EXPECT_EQ(received, kTasks * kFrames);
  EXPECT_EQ(intact, kTasks * kFrames) << "frames whose bytes were overwritten or interleaved";
  EXPECT_EQ(next, std::vector<int>(kTasks, kFrames));
}

// A second task that receives while another waits on the same stream is refused, naming the fix; the one
// waiting keeps its place and gets the next frame.
TEST(FramedStream, ASecondReceiverWhileOneWaitsIsRefusedAndTheFirstGetsTheFrame) {
  std::string first;
  std::string refusal;
  on_one_shard([&](Pair& p) -> Task<void> {
    FramedStream r(std::move(p.b), EndpointId{});
    auto waiting = moirai::spawn([&]() -> Task<void> { first = text_of((co_await r.recv(5s)).payload); });
    co_await moirai::yield();
    try {
      (void)co_await r.recv(1s);
    } catch (const TransportError& e) {
      EXPECT_EQ(e.errc(), TransportErrc::not_supported);
      refusal = e.what();
    }
    co_await send_from(p.a, EndpointId{1, 0, 0}, "for the first");
    co_await waiting.join();
  });
  EXPECT_EQ(first, "for the first");
  EXPECT_NE(refusal.find("one task at a time"), std::string::npos) << refusal;
}

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
