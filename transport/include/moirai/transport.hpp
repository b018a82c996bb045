// Everything of Moirai's transport: channels between shards, TCP/UDP/Unix sockets, framing, shared-memory
// IPC, the metrics endpoint.
#pragma once

#include "moirai/transport/broadcast.hpp"
#include "moirai/transport/byte_order.hpp"
#include "moirai/transport/channel.hpp"
#include "moirai/transport/datagram_socket.hpp"
#include "moirai/transport/endpoint.hpp"
#include "moirai/transport/error.hpp"
#include "moirai/transport/frame.hpp"
#include "moirai/transport/framed_datagram.hpp"
#include "moirai/transport/framed_server.hpp"
#include "moirai/transport/framed_stream.hpp"
#include "moirai/transport/ipc.hpp"
#include "moirai/transport/metrics_endpoint.hpp"
// The former name of RecvOptions, deprecated: it warns where it is used.
#include "moirai/transport/receive_options.hpp"
#include "moirai/transport/receiver.hpp"
#include "moirai/transport/recv_options.hpp"
#include "moirai/transport/send_buffers.hpp"
#include "moirai/transport/socket_address.hpp"
#include "moirai/transport/stream_receiver.hpp"
#include "moirai/transport/stream_socket.hpp"
