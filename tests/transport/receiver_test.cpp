// The receive vocabulary, receiver by receiver: recv() and recv_from(sender) without a timeout wait as long
// as it takes (a message sent once the receive is already waiting still arrives, and the receive had not
// ended before it), and what they give names its bytes or value `payload` and, where messages have senders,
// its sender `sender`.
#include <gtest/gtest.h>

#include <string>
#include <type_traits>

#include "../core/core_test_support.hpp"
#include "moirai/core/runtime.hpp"
#include "moirai/core/spawn.hpp"
#include "moirai/core/timer.hpp"
#include "moirai/transport/broadcast.hpp"
#include "moirai/transport/channel.hpp"
#include "moirai/transport/datagram_socket.hpp"
#include "moirai/transport/framed_datagram.hpp"
#include "moirai/transport/framed_stream.hpp"
#include "moirai/transport/ipc.hpp"
#include "moirai/transport/receiver.hpp"
#include "moirai/transport/stream_receiver.hpp"
#include "transport_test_support.hpp"

namespace {

using moirai::Task;
using moirai_test::bytes_of;
using moirai_test::one_shard;
using moirai_test::text_of;
using namespace moirai::transport;
using namespace std::chrono_literals;

const SocketAddress kAny = SocketAddress::parse("127.0.0.1:0");
constexpr EndpointId kX{7, 0, 1};
constexpr EndpointId kY{7, 0, 2};

// Runs `receive`, lets the shard do other work for a while with nothing sent (the receive must still be
// waiting then), then runs `send`, and gives what the receive gave.
template <class T, class Send>
Task<T> sent_while_waiting(Task<T> receive, Send send) {
  moirai::TaskHandle<T> r = moirai::spawn(std::move(receive));
  co_await moirai::sleep_for(50ms);
  EXPECT_FALSE(r.done()) << "the receive ended with nothing sent";
  co_await send();
  co_return co_await r.join();
}

TEST(Receivers, RawSocketsReceiveAndFramedOnesAlsoBySender) {
  static_assert(Receiver<StreamReceiver>);
  static_assert(Receiver<DatagramSocket>);
  static_assert(!SelectiveReceiver<DatagramSocket>);  // raw UDP has addresses, not sender ids
  static_assert(SelectiveReceiver<FramedStream>);
  static_assert(SelectiveReceiver<FramedDatagramSocket>);
  static_assert(SelectiveReceiver<Channel<std::string>>);
  static_assert(SelectiveReceiver<Broadcast<std::string>>);
  static_assert(SelectiveReceiver<IpcChannel>);
  static_assert(std::is_same_v<received_t<Channel<std::string>>, Envelope<std::string>>);
}

TEST(Receivers, ChannelWaitsForAMessageSentLater) {
  moirai::Runtime rt(one_shard());
  Envelope<std::string> any, from_y;
  rt.run([&]() -> Task<void> {
    Channel<std::string> ch(0, 4);
    any = co_await sent_while_waiting(ch.recv(), [&]() { return ch.send("hello", 3); });
    from_y = co_await sent_while_waiting(ch.recv_from(EndpointId{0, 0, 5}), [&]() -> Task<void> {
      co_await ch.send("not this one", 4);
      co_await ch.send("this one", 5);
    });
    EXPECT_EQ((co_await ch.recv()).payload, "not this one");
  });
  EXPECT_EQ(any.payload, "hello");
  EXPECT_EQ(any.sender, (EndpointId{0, 0, 3}));
  EXPECT_EQ(from_y.payload, "this one");
  EXPECT_EQ(from_y.sender, (EndpointId{0, 0, 5}));
}

TEST(Receivers, BroadcastWaitsForAMessageSentLater) {
  moirai::Runtime rt(one_shard());
  Envelope<int> got;
  rt.run([&]() -> Task<void> {
    Broadcast<int> b(1, 4);
    // The send task runs later, inside sent_while_waiting, after the temporary 42 is gone: send() keeps its
    // own copy.
    got = co_await sent_while_waiting(b.recv(), [&]() { return b.send(42, 9); });
  });
  EXPECT_EQ(got.payload, 42);
  EXPECT_EQ(got.sender, (EndpointId{0, 0, 9}));
}

TEST(Receivers, StreamReceiverWaitsForBytesSentLater) {
  moirai::Runtime rt(one_shard());
  StreamListener l = StreamListener::bind(kAny);
  std::string got;
  rt.run([&]() -> Task<void> {
    moirai_test::StreamPair p = co_await moirai_test::connected_pair(l);
    StreamReceiver r(p.b);
    const Chunk c =
        co_await sent_while_waiting([&]() -> Task<Chunk> { co_return co_await r.recv(); }(),
                                    [&]() -> Task<void> { co_await p.a.send_all(bytes_of("hello")); });
    got = text_of(c.payload);
    r.recycle(c);
    while (got.size() < 5) {  // a stream may hand the bytes over in more than one chunk
      const Chunk more = co_await r.recv(5s);
      got += text_of(more.payload);
      r.recycle(more);
    }
  });
  EXPECT_EQ(got, "hello");
}

TEST(Receivers, DatagramSocketWaitsForADatagramSentLater) {
  moirai::Runtime rt(one_shard());
  std::string got, from, sent_from;
  rt.run([&]() -> Task<void> {
    DatagramSocket rx = DatagramSocket::bind(kAny);
    DatagramSocket tx = DatagramSocket::bind(kAny);
    const SocketAddress at = rx.local_address();
    const Datagram d =
        co_await sent_while_waiting([&]() -> Task<Datagram> { co_return co_await rx.recv(); }(),
                                    [&]() -> Task<void> { co_await tx.send_to(at, bytes_of("hello")); });
    got = text_of(d.payload);
    from = d.sender_address().to_string();
    sent_from = tx.local_address().to_string();
  });
  EXPECT_EQ(got, "hello");
  EXPECT_EQ(from, sent_from);
}

TEST(Receivers, FramedStreamWaitsForAFrameSentLater) {
  moirai::Runtime rt(one_shard());
  StreamListener l = StreamListener::bind(kAny);
  std::string any, from_y, kept;
  EndpointId any_sender, y_sender, header_sender;
  rt.run([&]() -> Task<void> {
    moirai_test::StreamPair p = co_await moirai_test::connected_pair(l);
    FramedStream w(std::move(p.a), kX);
    FramedStream r(std::move(p.b), EndpointId{});
    Frame f =
        co_await sent_while_waiting(r.recv(), [&]() -> Task<void> { co_await w.send(1, bytes_of("hello")); });
    any = text_of(f.payload);
    any_sender = f.sender;
    header_sender = f.header.sender;
    // Another writer's frames on the same connection, as a proxy would send them.
    f = co_await sent_while_waiting(r.recv_from(kY), [&]() -> Task<void> {
      co_await w.send(1, bytes_of("from x"));
      co_await w.stream().send_all(moirai_test::frame_bytes(6, 1, kY, "from y"));
    });
    from_y = text_of(f.payload);
    y_sender = f.sender;
    kept = text_of((co_await r.recv()).payload);
  });
  EXPECT_EQ(any, "hello");
  EXPECT_EQ(any_sender, kX);
  EXPECT_EQ(header_sender, kX);
  EXPECT_EQ(from_y, "from y");
  EXPECT_EQ(y_sender, kY);
  EXPECT_EQ(kept, "from x");
}

TEST(Receivers, FramedDatagramSocketWaitsForAFrameSentLater) {
  moirai::Runtime rt(one_shard());
  std::string any, from_y, kept;
  EndpointId any_sender, y_sender;
  rt.run([&]() -> Task<void> {
    FramedDatagramSocket r = FramedDatagramSocket::bind(kAny, EndpointId{});
    FramedDatagramSocket x = FramedDatagramSocket::bind(kAny, kX);
    FramedDatagramSocket y = FramedDatagramSocket::bind(kAny, kY);
    const SocketAddress at = r.local_address();
    DatagramFrame f = co_await sent_while_waiting(
        r.recv(), [&]() -> Task<void> { co_await x.send_to(at, 1, bytes_of("hello")); });
    any = text_of(f.payload);
    any_sender = f.sender;
    EXPECT_EQ(f.sender_address().to_string(), x.local_address().to_string());
    f = co_await sent_while_waiting(r.recv_from(kY), [&]() -> Task<void> {
      co_await x.send_to(at, 1, bytes_of("from x"));
      co_await y.send_to(at, 1, bytes_of("from y"));
    });
    from_y = text_of(f.payload);
    y_sender = f.sender;
    EXPECT_EQ(f.sender_address().to_string(), y.local_address().to_string());
    kept = text_of((co_await r.recv()).payload);
  });
  EXPECT_EQ(any, "hello");
  EXPECT_EQ(any_sender, kX);
  EXPECT_EQ(from_y, "from y");
  EXPECT_EQ(y_sender, kY);
  EXPECT_EQ(kept, "from x");
}

}  // namespace
