// A framed-stream server on one shard: accepts connections on a listener and runs a handler for every frame
// each connection receives, one task per connection. It is where bad input meets the service, so it enforces
// the limits a hostile or broken peer would otherwise exhaust:
//
//   - a frame over the maximum, bytes that are not a frame, a sender id that lies: that connection is closed;
//   - a peer that connects and sends nothing, or trickles a frame byte by byte: closed when its frame does
//     not arrive whole within `first_frame_timeout` (the first) or `frame_timeout` (later ones);
//   - more connections than `max_connections`: the newest is closed at once;
//   - a handler that throws: that connection is closed, the others go on.
//
// Every close is counted by its reason (ServerStats), and a fault is logged on stderr as one line naming the
// peer and the cause, at most once per second per reason (with how many were not logged), so an attack does
// not flood the log. Memory per connection is bounded by the maximum frame and the stash (framed_stream.hpp).
// Frames already received are handled before a connection closes for a later fault: nothing accepted is lost.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <string>
#include <utility>

#include "moirai/core/spawn.hpp"
#include "moirai/core/sync.hpp"
#include "moirai/core/timer.hpp"
#include "moirai/transport/error.hpp"
#include "moirai/transport/framed_stream.hpp"
#include "moirai/transport/stream_socket.hpp"

namespace moirai::transport {

struct ServerOptions {
  EndpointId self;        // the sender id of the frames the server sends
  FramedOptions framing;  // maximum frame, expected peer node, stash
  std::size_t max_connections = 4096;
  Duration first_frame_timeout = std::chrono::seconds(10);  // a peer that connects and sends nothing
  Duration frame_timeout = Duration::max();  // between later frames (max: a peer may stay quiet)
  bool log_faults = true;                    // one stderr line per fault close (rate-limited)
  // How long replies queued before a fault may take to go out before the connection closes anyway.
  Duration final_flush_timeout = std::chrono::seconds(1);
};

// Why a connection ended.
enum class CloseReason : std::uint8_t {
  peer_closed,     // the peer closed between frames
  reset,           // the peer reset or vanished, possibly mid-frame
  malformed,       // bytes that are not a frame, or a sender id that lies
  too_large,       // a frame over the maximum
  timed_out,       // no whole frame within the timeout (includes connect-and-send-nothing)
  handler_failed,  // the handler threw
  over_limit,      // refused: max_connections were open
  server_stopped,  // closed by stop()
  kCount
};
const char* to_string(CloseReason r) noexcept;

struct ServerStats {
  std::uint64_t accepted = 0;
  std::uint64_t active = 0;
  std::uint64_t frames = 0;  // frames handed to the handler
  std::uint64_t accept_errors = 0;
  std::array<std::uint64_t, static_cast<std::size_t>(CloseReason::kCount)> closed{};
  std::uint64_t closed_for(CloseReason r) const noexcept { return closed[static_cast<std::size_t>(r)]; }
};

class FramedServer {
 public:
  FramedServer(StreamListener listener, ServerOptions options)
      : listener_(std::move(listener)), options_(std::move(options)) {}
  FramedServer(const FramedServer&) = delete;
  FramedServer& operator=(const FramedServer&) = delete;

  // Accepts and serves until stop(), then waits for every connection to end. `handler` is called as
  // co_await handler(FramedStream& connection, const Frame& frame) and may send on the connection, or
  // queue() replies, which the server flushes when no whole request is left in the receive buffer.
  template <class Handler>
  Task<void> serve(Handler handler) {
    while (!stopping_) {
      StreamSocket s;
      try {
        s = co_await listener_.accept();
      } catch (const TransportError& e) {
        if (stopping_) break;
        note_accept_error(e);  // EMFILE and the like: the listener stays, the next accept may succeed
        continue;
      }
      if (stopping_) break;
      ++stats_.accepted;
      if (stats_.active >= options_.max_connections) {
        count_close(CloseReason::over_limit, s.fd(),
                    "max_connections (" + std::to_string(options_.max_connections) +
                        ") are open; raise it or close idle ones");
        continue;  // `s` closes here
      }
      spawn_detached(connection(std::move(s), handler, gate_.enter()));
    }
    co_await gate_.close();
  }

  // From the server's shard: stops accepting and closes every connection (their handlers finish the frame
  // they are in); serve() returns once all have ended.
  void stop() noexcept;

  const ServerStats& stats() const noexcept { return stats_; }
  SocketAddress local_address() const { return listener_.local_address(); }

 private:
  struct Conn {
    FramedServer* server;
    int fd;
    Conn* prev = nullptr;
    Conn* next = nullptr;
  };

  template <class Handler>
  Task<void> connection(StreamSocket socket, Handler& handler, Gate::Holder holder) {
    FramedStream stream(std::move(socket), options_.self, options_.framing);
    Conn me{this, stream.stream().fd()};
    link(&me);
    CloseReason reason = CloseReason::peer_closed;
    std::string why;
    Duration timeout = options_.first_frame_timeout;
    try {
      for (;;) {
        Frame f = co_await stream.recv(timeout);
        timeout = options_.frame_timeout;
        ++stats_.frames;
        co_await handler(stream, f);
        // Replies the handler queued go out once no request is left to answer: a burst, one send.
        if (stream.queued_bytes() != 0 && !stream.has_buffered_frame()) co_await stream.flush();
      }
    } catch (const TransportError& e) {
      reason = reason_for(e.errc());
      why = e.what();
    } catch (const TaskCancelled&) {
      reason = CloseReason::server_stopped;
    } catch (const std::exception& e) {
      reason = CloseReason::handler_failed;
      why = e.what();
    }
    if (stopping_ && (reason == CloseReason::peer_closed || reason == CloseReason::reset))
      reason = CloseReason::server_stopped;
    // Replies to the frames handled before the fault still go out (the peer may be reading them), within a
    // bound: a peer that does not read cannot hold the connection open.
    if (stream.queued_bytes() != 0 && reason != CloseReason::reset) {
      try {
        co_await with_timeout(options_.final_flush_timeout, stream.flush());
      } catch (const std::exception&) {  // TimedOut or the stream's error: the connection ends either way
      }
    }
    unlink(&me);
    count_close(reason, me.fd, why);
    holder.release();
    // The socket closes with `stream`: abruptly for a fault (the peer sees a reset at worst), which is right
    // for a peer that broke the protocol; a graceful shutdown costs two more requests per connection.
  }

  static CloseReason reason_for(TransportErrc e) noexcept;
  void link(Conn* c) noexcept;
  void unlink(Conn* c) noexcept;
  void count_close(CloseReason r, int fd, const std::string& why);
  void note_accept_error(const TransportError& e);
  int listener_fd() const noexcept { return listener_.fd(); }
  std::string local_name() const;

  StreamListener listener_;
  ServerOptions options_;
  ServerStats stats_;
  Gate gate_;
  Conn* conns_ = nullptr;
  bool stopping_ = false;
  std::array<std::int64_t, static_cast<std::size_t>(CloseReason::kCount)> last_log_ns_{};
  std::array<std::uint64_t, static_cast<std::size_t>(CloseReason::kCount)> unlogged_{};
};

}  // namespace moirai::transport
