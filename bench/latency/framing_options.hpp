// The framing `moirai echo` and `moirai bench echo` give their sockets: defaults, with the receive read by a
// spinning shard itself when asked (RecvOptions::poll_when_idle).
#pragma once

#include "moirai/transport/framed_datagram.hpp"
#include "moirai/transport/framed_stream.hpp"

namespace moirai::cli {

inline transport::FramedOptions stream_framing(bool poll_when_idle) {
  transport::FramedOptions f;
  f.recv.poll_when_idle = poll_when_idle;
  return f;
}

inline transport::FramedDatagramOptions datagram_framing(bool poll_when_idle) {
  transport::FramedDatagramOptions f;
  f.socket.recv.poll_when_idle = poll_when_idle;
  return f;
}

}  // namespace moirai::cli
