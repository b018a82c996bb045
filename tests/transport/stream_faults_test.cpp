// Stream faults from the peer's side: a connect refused until the listener appears, then retried to success;
// a peer that resets the connection (SO_LINGER 0: the kernel sends RST) while a receive waits and while a
// send is under way. Each is a TransportError with its code as a std::error_code and a message naming the
// operation; the shard and every other connection go on.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <system_error>
#include <vector>

#include "../core/core_test_support.hpp"
#include "moirai/core/runtime.hpp"
#include "moirai/core/spawn.hpp"
#include "moirai/core/submit.hpp"
#include "moirai/core/timer.hpp"
#include "moirai/transport/stream_socket.hpp"
#include "transport_test_support.hpp"

namespace {

using moirai::Task;
using moirai_test::bytes_of;
using moirai_test::text_of;
using moirai_test::two_shards;
using namespace moirai::transport;
using namespace std::chrono_literals;

// A loopback port that was free a moment ago and where nobody listens now.
SocketAddress unused_port() {
  StreamListener l = StreamListener::bind(SocketAddress::parse("127.0.0.1:0"));
  return l.local_address();
}

// Closing with SO_LINGER {1, 0} makes the kernel send RST instead of FIN: the peer sees ECONNRESET.
void reset_and_close(StreamSocket& s) {
  const linger lg{1, 0};
  ASSERT_EQ(::setsockopt(s.fd(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0) << std::strerror(errno);
  StreamSocket gone = std::move(s);  // its destructor closes the fd without a shutdown: RST
}

// Echoes what arrives until the peer closes.
Task<void> echo_until_closed(StreamSocket s) {
  std::byte buf[256];
  for (;;) {
    const std::size_t n = co_await s.recv_some(buf);
    if (n == 0) break;
    co_await s.send_all(std::span<const std::byte>(buf, n));
  }
  co_await s.close();
}

Task<std::string> round_trip(StreamSocket& s, const std::string& text) {
  co_await s.send_all(bytes_of(text));
  std::string got;
  std::byte buf[256];
  while (got.size() < text.size()) {
    const std::size_t n = co_await s.recv_some(buf);
    if (n == 0) break;
    got += text_of(std::span<const std::byte>(buf, n));
  }
  co_return got;
}

// Nobody listens when the connects start: a connect allowed one attempt is refused. The retrying connect
// began in the same loop lap, against the same closed port, so its first attempt met the same refusal; the
// listener appears only once the single attempt has been refused, and the retries reach it. The stream then
// works both ways.
TEST(Tcp, ARefusedConnectIsRetriedUntilTheListenerAppears) {
  moirai::Runtime rt(two_shards());
  const SocketAddress at = unused_port();
  TransportErrc single{};
  std::string echoed;
  rt.run([&]() -> Task<void> {
    moirai_test::Signal refused;
    auto once = moirai::spawn([&]() -> Task<void> {
      try {
        co_await StreamSocket::connect(at, 1s, RetryPolicy{1});
      } catch (const TransportError& e) {
        single = e.errc();
      }
      refused.set();
    });
    auto retrying = moirai::spawn([&]() -> Task<StreamSocket> {
      co_return co_await StreamSocket::connect(at, 1s, RetryPolicy{10'000, 1ms, 2ms});
    });
    co_await moirai_test::wait_for(&refused);
    co_await moirai::sleep_for(10ms);  // a few more refused attempts
    StreamListener listener = StreamListener::bind(at);
    auto server =
        moirai::spawn([&]() -> Task<void> { co_await echo_until_closed(co_await listener.accept()); });
    StreamSocket client = co_await retrying.join();
    echoed = co_await round_trip(client, "after the refusals");
    co_await client.close();
    co_await server.join();
    co_await once.join();
  });
  EXPECT_EQ(single, TransportErrc::connection_refused);
  EXPECT_EQ(echoed, "after the refusals");
}

struct ResetSeen {
  std::error_code code;
  std::string what;
};

// Shard 1 accepts two connections, echoes on the second throughout, and resets the first once its client has
// sent `ready` (the client then waits in a receive). The client's receive fails with connection_reset; the
// other connection and a new one are served after it.
TEST(Tcp, APeerResetWhileAReceiveWaitsIsConnectionResetAndTheOthersGoOn) {
  moirai::Runtime rt(two_shards());
  StreamListener listener = StreamListener::bind(SocketAddress::parse("127.0.0.1:0"));
  const SocketAddress at = listener.local_address();
  ResetSeen seen;
  std::vector<std::string> answers;
  rt.run([&]() -> Task<void> {
    auto server = moirai::spawn([&]() -> Task<void> {
      co_await moirai::submit_to(1, [&]() -> Task<void> {
        StreamSocket victim = co_await listener.accept();
        auto other = moirai::spawn(echo_until_closed(co_await listener.accept()));
        std::byte b[8];
        (void)co_await victim.recv_some(b);  // "ready": the client's receive goes out next
        co_await moirai::sleep_for(5ms);     // let it wait in the kernel
        reset_and_close(victim);
        auto later = moirai::spawn(echo_until_closed(co_await listener.accept()));
        co_await other.join();
        co_await later.join();
      });
    });
    StreamSocket victim = co_await StreamSocket::connect(at);
    StreamSocket other = co_await StreamSocket::connect(at);
    answers.push_back(co_await round_trip(other, "before"));
    co_await victim.send_all(bytes_of("ready"));
    try {
      std::byte b[64];
      const std::size_t n = co_await victim.recv_some(b);
      seen.what = "received " + std::to_string(n) + " bytes instead of a reset";
    } catch (const TransportError& e) {
      seen.code = e.code();
      seen.what = e.what();
    }
    answers.push_back(co_await round_trip(other, "after"));
    StreamSocket later = co_await StreamSocket::connect(at);
    answers.push_back(co_await round_trip(later, "new"));
    co_await other.close();
    co_await later.close();
    co_await server.join();
  });
  EXPECT_EQ(seen.code, TransportErrc::connection_reset) << seen.what;
  EXPECT_EQ(seen.code.category(), transport_category());
  EXPECT_NE(seen.what.find("recv"), std::string::npos) << seen.what;
  EXPECT_NE(seen.what.find(std::strerror(ECONNRESET)), std::string::npos) << seen.what;
  EXPECT_EQ(answers, (std::vector<std::string>{"before", "after", "new"}));
}

// The client sends without pause; the server reads a little and resets. A send then fails with
// connection_reset (ECONNRESET, or EPIPE once the reset was seen), never with a signal; the shard goes on.
TEST(Tcp, APeerResetWhileSendingIsConnectionResetAndTheShardGoesOn) {
  moirai::Runtime rt(two_shards());
  StreamListener listener = StreamListener::bind(SocketAddress::parse("127.0.0.1:0"));
  const SocketAddress at = listener.local_address();
  ResetSeen seen;
  std::string after;
  std::size_t server_got = 0;
  rt.run([&]() -> Task<void> {
    auto server = moirai::spawn([&]() -> Task<void> {
      co_await moirai::submit_to(1, [&]() -> Task<void> {
        StreamSocket victim = co_await listener.accept();
        std::byte b[1024];
        server_got = co_await victim.recv_some(b);
        reset_and_close(victim);
        co_await echo_until_closed(co_await listener.accept());
      });
    });
    StreamSocket victim = co_await StreamSocket::connect(at);
    const std::vector<std::byte> chunk(64 * 1024, std::byte{'x'});
    try {
      for (int i = 0; i < 100'000; ++i) {  // about 6 GB: a reset comes long before
        co_await victim.send_all(chunk);
      }
      seen.what = "every send succeeded";
    } catch (const TransportError& e) {
      seen.code = e.code();
      seen.what = e.what();
    }
    StreamSocket next = co_await StreamSocket::connect(at);
    after = co_await round_trip(next, "still serving");
    co_await next.close();
    co_await server.join();
  });
  EXPECT_EQ(seen.code, TransportErrc::connection_reset) << seen.what;
  EXPECT_NE(seen.what.find("send"), std::string::npos) << seen.what;
  EXPECT_GT(server_got, 0u);  // the connection carried bytes before the reset
  EXPECT_EQ(after, "still serving");
}

}  // namespace
