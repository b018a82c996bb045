// Multishot receive on TCP: echo over loopback between two shards with the bytes handed out as chunks of
// the ring's buffers, the one-shot fallback forced, a receiver that holds every buffer (nothing more arrives
// until it recycles, then every byte does, in order), the end of the stream, and a receive timeout.
#include "moirai/transport/stream_receiver.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "../core/core_test_support.hpp"
#include "moirai/core/runtime.hpp"
#include "moirai/core/spawn.hpp"
#include "moirai/core/submit.hpp"

namespace {

using moirai::Task;
using moirai_test::one_shard;
using moirai_test::two_shards;
using namespace moirai::transport;
using namespace std::chrono_literals;

std::span<const std::byte> bytes_of(const std::string& s) {
  return std::as_bytes(std::span<const char>(s.data(), s.size()));
}
void append(std::string& to, std::span<const std::byte> b) {
  to.append(reinterpret_cast<const char*>(b.data()), b.size());
}
std::string pattern(std::size_t n) {
  std::string s;
  for (std::size_t i = 0; i < n; ++i)
    s.push_back(static_cast<char>('a' + i % 26));
  return s;
}

// Echoes every chunk back until the client closes.
Task<void> echo_server(StreamListener& listener, RecvOptions options, bool& multishot) {
  StreamSocket s = co_await listener.accept();
  {
    StreamReceiver rx(s, options);
    multishot = rx.multishot();
    for (;;) {
      Chunk c = co_await rx.recv(5s);
      if (c.end()) break;
      co_await s.send_all(c.payload);
      rx.recycle(c);
    }
  }
  co_await s.close();
}

void tcp_echo(const RecvOptions& options, bool expect_multishot) {
  moirai::Runtime rt(two_shards());
  StreamListener listener = StreamListener::bind(SocketAddress::parse("127.0.0.1:0"));
  const SocketAddress at = listener.local_address();
  const std::string sent = pattern(100'000);
  std::string got;
  bool server_multishot = !expect_multishot;
  bool client_multishot = !expect_multishot;
  bool ended = false;
  rt.run([&]() -> Task<void> {
    auto server = moirai::spawn([&]() -> Task<void> {
      co_await moirai::submit_to(1, [&]() { return echo_server(listener, options, server_multishot); });
    });
    StreamSocket client = co_await StreamSocket::connect(at);
    {
      StreamReceiver rx(client, options);
      client_multishot = rx.multishot();
      // Messages of growing size, each echoed whole before the next goes.
      std::size_t offset = 0;
      for (std::size_t size = 1; offset < sent.size(); size = size * 2 + 1) {
        const std::size_t n = std::min(size, sent.size() - offset);
        co_await client.send_all(bytes_of(sent.substr(offset, n)));
        offset += n;
        while (got.size() < offset) {
          Chunk c = co_await rx.recv(5s);
          if (c.end()) break;
          append(got, c.payload);
          rx.recycle(c);
        }
      }
    }
    co_await client.close();
    co_await server.join();
    ended = true;
  });
  EXPECT_TRUE(ended);
  EXPECT_EQ(got.size(), sent.size());
  EXPECT_TRUE(got == sent);
  EXPECT_EQ(server_multishot, expect_multishot);
  EXPECT_EQ(client_multishot, expect_multishot);
}

TEST(StreamReceiver, TcpEchoBetweenTwoShardsInChunks) {
  tcp_echo(RecvOptions{}, true);
}

TEST(StreamReceiver, TcpEchoOnTheOneShotFallback) {
  RecvOptions o;
  o.force_fallback = true;
  tcp_echo(o, false);
}

TEST(StreamReceiver, HoldingEveryBufferPausesTheStreamWithoutLosingBytes) {
  for (bool fallback : {false, true}) {
    moirai::Runtime rt(one_shard());
    StreamListener listener = StreamListener::bind(SocketAddress::parse("127.0.0.1:0"));
    const SocketAddress at = listener.local_address();
    const std::string sent = pattern(20'000);
    std::string got;
    TransportErrc while_held{};
    bool saw_end = false;
    rt.run([&]() -> Task<void> {
      auto accepting = moirai::spawn([&]() -> Task<StreamSocket> { co_return co_await listener.accept(); });
      StreamSocket client = co_await StreamSocket::connect(at);
      StreamSocket server = co_await accepting.join();
      RecvOptions o;
      o.buffers = 2;
      o.buffer_size = 256;
      o.force_fallback = fallback;
      StreamReceiver rx(server, o);
      co_await client.send_all(bytes_of(sent));
      co_await client.close();
      Chunk a = co_await rx.recv(5s);
      Chunk b = co_await rx.recv(5s);
      append(got, a.payload);
      append(got, b.payload);
      try {
        co_await rx.recv(50ms);  // both buffers are held: nothing can arrive
      } catch (const TransportError& e) {
        while_held = e.errc();
      }
      rx.recycle(a);
      rx.recycle(b);
      for (;;) {
        Chunk c = co_await rx.recv(5s);
        if (c.end()) {
          saw_end = true;
          break;
        }
        append(got, c.payload);
        rx.recycle(c);
      }
      Chunk again = co_await rx.recv(5s);  // the end stays the end
      saw_end = saw_end && again.end();
    });
    EXPECT_EQ(while_held, TransportErrc::timeout) << (fallback ? "fallback" : "multishot");
    EXPECT_TRUE(got == sent) << got.size() << " of " << sent.size() << " bytes";
    EXPECT_TRUE(saw_end);
  }
}

}  // namespace
