// A framed-stream server on one shard: accepts connections on a listener and runs a handler for every frame
// each connection receives, one task per connection. It is where bad input meets the service, so it enforces
// the limits a hostile or broken peer would otherwise exhaust:
//
//   - a frame over the maximum, bytes that are not a frame, a sender id that lies: that connection is closed;
//   - a peer that connects and sends nothing: closed after `first_frame_timeout`; one silent between frames:
//     after `frame_timeout` (none by default);
//   - a peer that trickles a frame (slowloris, endless partial frames): closed when a frame begun is not
//   whole
//     within `frame_complete_timeout`, however often bytes come;
//   - many such peers at once: the bytes all connections hold in frames not yet whole are bounded by
//     `max_buffered_bytes`; past it the connection holding the most is closed (over_budget). A receive
//     buffer grows with the bytes that came, never with the length a header announces, up to the maximum
//     frame, so a header alone costs nothing;
//   - a peer that vanished without a FIN (half-open): TCP keepalive and TCP_USER_TIMEOUT (`liveness`) end it;
//   - a peer that floods valid frames: its connection yields to the shard's other tasks every
//     `frames_per_turn` frames, so it cannot starve the others;
//   - more connections than `max_connections`: the newest is closed at once;
//   - a handler that throws: that connection is closed, the others go on.
//
// Every close is counted by its reason (ServerStats), and a fault is logged on stderr as one line naming the
// peer and the cause, at most once per second per reason (with how many were not logged), so an attack does
// not flood the log. Memory per connection is bounded by the maximum frame and the stash (framed_stream.hpp),
// and across connections by max_buffered_bytes.
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
  // From a frame's first byte to its last (max: none).
  Duration frame_complete_timeout = std::chrono::seconds(10);
  // Bytes all connections together may hold received but not yet handled (partial frames, mostly).
  std::size_t max_buffered_bytes = 64u << 20;
  // Frames a connection handles before it lets the shard's other tasks run.
  unsigned frames_per_turn = 64;
  TcpLiveness liveness{};  // keepalive and TCP_USER_TIMEOUT of accepted TCP connections
  bool log_faults = true;  // one stderr line per fault close (rate-limited)
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
  over_budget,     // max_buffered_bytes were held, this connection the most of them
  server_stopped,  // closed by stop()
  kCount
};
const char* to_string(CloseReason r) noexcept;

struct ServerStats {
  std::uint64_t accepted = 0;
  std::uint64_t active = 0;
  std::uint64_t frames = 0;  // frames handed to the handler
  std::uint64_t accept_errors = 0;
  std::uint64_t buffered_bytes = 0;       // received and not yet handled, across connections, now
  std::uint64_t peak_buffered_bytes = 0;  // the most that ever was, after the budget's evictions
  std::array<std::uint64_t, static_cast<std::size_t>(CloseReason::kCount)> closed{};
  std::uint64_t closed_for(CloseReason r) const noexcept { return closed[static_cast<std::size_t>(r)]; }
};

class FramedServer {
 public:
  FramedServer(StreamListener listener, ServerOptions options)
      : listener_(std::move(listener)), options_(std::move(options)) {
    budget_.limit = options_.max_buffered_bytes;
    budget_.over = &FramedServer::over_budget;
    budget_.owner = this;
  }
  FramedServer(const FramedServer&) = delete;
  FramedServer& operator=(const FramedServer&) = delete;

  // Accepts and serves until stop(), then waits for every connection to end. `handler` is called as
  // co_await handler(FramedStream& connection, const Frame& frame) and may send on the connection, or
  // queue() replies, which the server flushes when no whole request is left in the receive buffer.
  template <class Handler>
  Task<void> serve(Handler handler) {
    bool accept_failed = false;
    while (!stopping_) {
      StreamSocket s;
      try {
        s = co_await listener_.accept();
      } catch (const TransportError& e) {
        if (stopping_) break;
        note_accept_error(e);  // EMFILE and the like: the listener stays, the next accept may succeed
        accept_failed = true;
      }
      if (accept_failed) {  // out of fds fails every accept at once: let connections end first
        accept_failed = false;
        co_await sleep_for(std::chrono::milliseconds(10));
        continue;
      }
      if (stopping_) break;
      ++stats_.accepted;
      try {
        s.set_liveness(options_.liveness);
      } catch (const TransportError& e) {
        note_accept_error(e);  // the connection is served without them
      }
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

  ServerStats stats() const noexcept {
    ServerStats s = stats_;
    s.buffered_bytes = budget_.held;
    s.peak_buffered_bytes = budget_.peak;
    return s;
  }
  SocketAddress local_address() const { return listener_.local_address(); }

 private:
  struct Conn {
    FramedServer* server;
    int fd;
    FramedStream* stream;
    bool evicted = false;  // closed by the budget
    Conn* prev = nullptr;
    Conn* next = nullptr;
  };

  template <class Handler>
  Task<void> connection(StreamSocket socket, Handler& handler, Gate::Holder holder) {
    FramedOptions framing = options_.framing;
    framing.frame_complete_timeout = options_.frame_complete_timeout;
    FramedStream stream(std::move(socket), options_.self, framing);
    Conn me{this, stream.stream().fd(), &stream};
    link(&me);
    stream.join_budget(&budget_);
    CloseReason reason = CloseReason::peer_closed;
    std::string why;
    Duration timeout = options_.first_frame_timeout;
    unsigned this_turn = 0;
    try {
      for (;;) {
        Frame f = co_await stream.recv(timeout);
        timeout = options_.frame_timeout;
        ++stats_.frames;
        co_await handler(stream, f);
        // Replies the handler queued go out once no request is left to answer: a burst, one send.
        if (stream.queued_bytes() != 0 && !stream.has_buffered_frame()) co_await stream.flush();
        // A peer whose frames are always there already would keep this loop from ever suspending.
        if (++this_turn >= options_.frames_per_turn) {
          this_turn = 0;
          co_await yield();
        }
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
    if (me.evicted) {
      reason = CloseReason::over_budget;
      why = "the connections held max_buffered_bytes (" + std::to_string(options_.max_buffered_bytes) +
            ") in frames not yet whole, this one the most; raise it, or lower max_connections";
    }
    // Replies to the frames handled before the fault still go out (the peer may be reading them), within a
    // bound: a peer that does not read cannot hold the connection open.
    if (stream.queued_bytes() != 0 && reason != CloseReason::reset) {
      try {
        co_await with_timeout(options_.final_flush_timeout, stream.flush());
      } catch (const std::exception&) {  // TimedOut or the stream's error: the connection ends either way
      }
    }
    stream.leave_budget();
    unlink(&me);
    count_close(reason, me.fd, why);
    holder.release();
    // The socket closes with `stream`: abruptly for a fault (the peer sees a reset at worst), which is right
    // for a peer that broke the protocol; a graceful shutdown costs two more requests per connection.
  }

  static CloseReason reason_for(TransportErrc e) noexcept;
  static void over_budget(void* self) noexcept;
  void link(Conn* c) noexcept;
  void unlink(Conn* c) noexcept;
  void count_close(CloseReason r, int fd, const std::string& why);
  void note_accept_error(const TransportError& e);
  static constexpr std::size_t kAcceptLogSlot = static_cast<std::size_t>(CloseReason::kCount);
  bool may_log(std::size_t slot, std::uint64_t& suppressed) noexcept;
  static void end_log_line(std::uint64_t suppressed, const char* what);
  int listener_fd() const noexcept { return listener_.fd(); }
  std::string local_name() const;

  StreamListener listener_;
  ServerOptions options_;
  ServerStats stats_;
  Gate gate_;
  Conn* conns_ = nullptr;
  detail::ReceiveBudget budget_;
  bool stopping_ = false;
  // Rate limit of the log: one slot per close reason, and one for accept errors.
  std::array<std::int64_t, kAcceptLogSlot + 1> last_log_ns_{};
  std::array<std::uint64_t, kAcceptLogSlot + 1> unlogged_{};
};

}  // namespace moirai::transport
