// Every public transport header, included together in one translation unit in name order. ipc.hpp named
// core's detail types as `detail::`, which inside moirai::transport meant moirai::transport::detail once
// another transport header (framed_datagram.hpp, say) had opened that namespace: ipc.hpp did not compile
// after them.
#include <gtest/gtest.h>

#include <type_traits>

#include "moirai/transport/broadcast.hpp"
#include "moirai/transport/channel.hpp"
#include "moirai/transport/datagram_socket.hpp"
#include "moirai/transport/framed_datagram.hpp"
#include "moirai/transport/framed_server.hpp"
#include "moirai/transport/framed_stream.hpp"
#include "moirai/transport/ipc.hpp"
#include "moirai/transport/metrics_endpoint.hpp"
#include "moirai/transport/receive_options.hpp"
#include "moirai/transport/stream_receiver.hpp"
#include "moirai/transport/stream_socket.hpp"

namespace {

TEST(TransportHeaders, IpcCompilesAfterTheOtherTransportHeaders) {
  static_assert(std::is_move_constructible_v<moirai::transport::IpcChannel>);
  static_assert(std::is_move_constructible_v<moirai::transport::FramedDatagramSocket>);
  const moirai::transport::IpcOptions o;
  EXPECT_EQ(o.slot_size % 64, 0u);
}

// The former name of RecvOptions still names it, for code not yet migrated (which gets a deprecation warning,
// silenced here).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
static_assert(std::is_same_v<moirai::transport::ReceiveOptions, moirai::transport::RecvOptions>);
#pragma GCC diagnostic pop

}  // namespace
