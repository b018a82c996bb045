// transport's errors: each TransportErrc and the std::errc it compares equal to, so that a transport timeout
// and core's are one condition; bad arguments to real calls are invalid_argument; and an io failure under a
// socket stays nested in the TransportError, code and all.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <exception>
#include <string>
#include <system_error>

#include "../core/core_test_support.hpp"
#include "../support/error_checks.hpp"
#include "moirai/base/error.hpp"
#include "moirai/core/error.hpp"
#include "moirai/core/runtime.hpp"
#include "moirai/io/error.hpp"
#include "moirai/transport/broadcast.hpp"
#include "moirai/transport/channel.hpp"
#include "moirai/transport/datagram_socket.hpp"
#include "moirai/transport/error.hpp"
#include "moirai/transport/ipc.hpp"
#include "moirai/transport/send_buffers.hpp"
#include "moirai/transport/socket_address.hpp"
#include "moirai/transport/stream_socket.hpp"

namespace {

using moirai::Error;
using moirai::Task;
using moirai::transport::TransportErrc;
using moirai::transport::TransportError;
using moirai_test::expect_invalid_argument;
using moirai_test::one_shard;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

TEST(TransportErrors, EachCodeMapsToItsStdErrc) {
  EXPECT_EQ(make_error_code(TransportErrc::timeout), std::errc::timed_out);
  EXPECT_EQ(make_error_code(TransportErrc::connection_refused), std::errc::connection_refused);
  EXPECT_EQ(make_error_code(TransportErrc::connection_reset), std::errc::connection_reset);
  EXPECT_EQ(make_error_code(TransportErrc::message_too_large), std::errc::message_size);
  EXPECT_EQ(make_error_code(TransportErrc::malformed), std::errc::bad_message);
  EXPECT_EQ(make_error_code(TransportErrc::not_supported), std::errc::not_supported);
  EXPECT_EQ(make_error_code(TransportErrc::unreachable), std::errc::network_unreachable);
  EXPECT_EQ(make_error_code(TransportErrc::invalid_argument), std::errc::invalid_argument);
  // closed: no std::errc says it; it stays in the transport's category.
  const std::error_condition closed = make_error_code(TransportErrc::closed).default_error_condition();
  EXPECT_EQ(&closed.category(), &moirai::transport::transport_category());
  EXPECT_STREQ(moirai::transport::transport_category().name(), "moirai.transport");
}

// The point of the mapping: one question finds every timeout, whichever module raised it.
TEST(TransportErrors, ATransportTimeoutAndCoresAreTheSameCondition) {
  const std::error_code transport = make_error_code(TransportErrc::timeout);
  const std::error_code core = make_error_code(moirai::Errc::timed_out);
  EXPECT_NE(transport, core) << "two codes, each in its module's category";
  EXPECT_EQ(transport.default_error_condition(), core.default_error_condition());
  moirai::Runtime rt(one_shard());
  std::error_code on_recv;
  rt.run([&]() -> Task<void> {
    moirai::transport::Channel<int> ch(0, 1);
    try {
      (void)co_await ch.recv(1ms);
    } catch (const Error& e) {
      on_recv = e.code();
    }
  });
  EXPECT_EQ(on_recv, TransportErrc::timeout);
  EXPECT_EQ(on_recv, std::errc::timed_out);
}

TEST(TransportErrors, ATransportErrorIsCaughtAsAnError) {
  try {
    throw TransportError(TransportErrc::connection_reset, "recv: Connection reset by peer");
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), std::errc::connection_reset);
  }
  try {
    (void)moirai::transport::SocketAddress::parse("not an address");
    ADD_FAILURE() << "parsed";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), std::errc::bad_message) << e.what();
  }
}

TEST(TransportErrors, BadArgumentsToRealCallsAreInvalidArgument) {
  expect_invalid_argument([] { (void)moirai::transport::IpcChannel::create("no/slash"); }, "no/slash");
  expect_invalid_argument([] { moirai::transport::Broadcast<int>(2, 4).on(2); }, "Broadcast::on(2)");
  moirai::Runtime rt(one_shard());
  rt.run([&]() -> Task<void> {
    expect_invalid_argument(
        [] {
          moirai::transport::SendBufferPool pool(moirai::transport::SendBufferOptions{4096, 0, true});
        },
        "1 to 1024");
    moirai::transport::DatagramSocket s =
        moirai::transport::DatagramSocket::bind(moirai::transport::SocketAddress::parse("127.0.0.1:0"));
    expect_invalid_argument([&] { s.join("10.1.2.3"); }, "not a multicast address");
    co_return;
  });
}

// A DatagramSocket's receive buffers come from io: io's refusal (a count that is not a power of two) is the
// transport's invalid_argument, with io's RingError nested, its code intact.
TEST(TransportErrors, AnIoRefusalUnderASocketStaysNested) {
  moirai::Runtime rt(one_shard());
  std::string what;
  std::error_code outer, cause;
  rt.run([&]() -> Task<void> {
    moirai::transport::DatagramOptions o;
    o.recv.buffers = 3;
    try {
      (void)moirai::transport::DatagramSocket::bind(moirai::transport::SocketAddress::parse("127.0.0.1:0"),
                                                    o);
    } catch (const TransportError& e) {
      what = e.what();
      outer = e.code();
      try {
        std::rethrow_if_nested(e);
      } catch (const Error& nested) {
        cause = nested.code();
      }
    }
    co_return;
  });
  EXPECT_EQ(outer, TransportErrc::invalid_argument) << what;
  EXPECT_THAT(what, HasSubstr("power of two"));
  EXPECT_EQ(&cause.category(), &moirai::io::io_category()) << cause.message();
  EXPECT_EQ(cause, std::errc::invalid_argument);
}

}  // namespace

// A socket call the kernel refuses for a reason the transport has no code of its own for keeps the kernel's
// errno beside the code: a second listener on a taken address without SO_REUSEPORT is EADDRINUSE.
TEST(TransportErrors, ARefusedSocketCallKeepsTheKernelsErrno) {
  using moirai::transport::SocketAddress;
  using moirai::transport::StreamListener;
  StreamListener first = StreamListener::bind(SocketAddress::parse("127.0.0.1:0"));
  const SocketAddress taken = first.local_address();
  try {
    (void)StreamListener::bind(taken);
    ADD_FAILURE() << "a second listener bound " << taken.to_string();
  } catch (const TransportError& e) {
    EXPECT_EQ(e.errc(), TransportErrc::closed) << e.what();
    EXPECT_EQ(e.kernel_code(), std::errc::address_in_use) << e.what();
    EXPECT_THAT(e.what(), HasSubstr(taken.to_string()));
  }
  // A failure that is no refused call has no kernel code.
  const TransportError own(TransportErrc::malformed, "a frame with reserved bits set");
  EXPECT_FALSE(own.kernel_code());
}
