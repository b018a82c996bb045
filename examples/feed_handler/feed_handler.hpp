// A market-data feed handler, embedded the way Moirai's users embed it: on one shard, it receives a UDP
// (multicast) feed of quote packets (quote.hpp), decodes each packet on the shard that received it, keeps the
// top of book per symbol, checks the feed's sequence numbers (gaps are counted and reported), and publishes
// each change of the book to TCP subscribers and, for a strategy process on the same host, over a
// shared-memory IPC channel.
//
// The receive path allocates nothing: the datagram is read in place from the socket's buffer ring, the book
// is a table sized at start, and updates are written into each subscriber's fixed send buffer, flushed by
// that subscriber's own writer task once per packet. A subscriber that cannot keep up (its buffer fills while
// the previous send is still in the kernel) is disconnected and counted, as feeds do: it must never slow the
// feed for the others. An IPC ring that is full drops the update and counts it, for the same reason.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "book.hpp"
#include "moirai/core/spawn.hpp"
#include "moirai/core/sync.hpp"
#include "moirai/core/task.hpp"
#include "moirai/transport/datagram_socket.hpp"
#include "moirai/transport/ipc.hpp"
#include "moirai/transport/socket_address.hpp"
#include "moirai/transport/stream_socket.hpp"

namespace moirai::examples::feed {

struct FeedOptions {
  // Where the feed arrives: a multicast group and port ("239.1.1.1:30001"), joined on `interface`, or a
  // unicast address to bind.
  std::string feed = "239.255.0.1:30001";
  std::string interface;  // for the join: a name ("lo", "eth0"), an IPv4 address, or empty (kernel's choice)
  // Where TCP subscribers connect (port 0: the kernel picks; see publish_address()). Loopback unless told.
  std::string publish = "127.0.0.1:0";
  // The shared-memory channel (/dev/shm/<name>) a strategy process opens; empty: none.
  std::string ipc_name;
  std::uint32_t symbols = 4096;                // symbol ids 0..symbols-1; others are counted and ignored
  std::size_t subscriber_buffer = 256 * 1024;  // bytes of updates queued per subscriber before it is cut
  std::size_t max_subscribers = 256;
  unsigned receive_buffers = 256;  // datagrams the socket's buffer ring holds
  // The socket's kernel receive buffer (SO_RCVBUF), which absorbs a burst while the shard is busy; past
  // net.core.rmem_max only with CAP_NET_ADMIN. 0: the system's default. FeedStats::socket_buffer has what the
  // kernel granted (it doubles the request for its bookkeeping).
  std::size_t socket_buffer = 8u << 20;
  bool log = true;  // gaps, malformed packets and cut subscribers on stderr, rate-limited
};

struct FeedStats {
  std::uint64_t datagrams = 0;
  std::uint64_t malformed = 0;       // datagrams that are not one whole packet of ours
  std::uint64_t quotes = 0;          // quotes applied to the book
  std::uint64_t unknown_symbol = 0;  // quotes for symbols past FeedOptions::symbols
  std::uint64_t changes = 0;         // quotes that changed the book (each is published)
  std::uint64_t published_tcp = 0;   // updates written for subscribers (one per change per subscriber)
  std::uint64_t published_ipc = 0;
  std::uint64_t ipc_dropped = 0;  // updates the IPC ring had no room for
  std::uint64_t subscribers = 0;  // connected now
  std::uint64_t subscribers_accepted = 0;
  std::uint64_t subscribers_cut = 0;   // disconnected for falling behind
  std::uint64_t subscribers_lost = 0;  // ended by the subscriber (closed, reset)
  std::uint32_t kernel_drops = 0;      // datagrams the kernel dropped for want of socket buffer
  std::size_t socket_buffer = 0;       // SO_RCVBUF as the kernel reports it
  SequenceStats sequence;
};

class FeedHandler {
 public:
  // On a shard: binds the feed socket (and joins its group), the subscribers' listener and, if asked, creates
  // the IPC channel. Throws transport::TransportError or moirai::Error naming what could not be set up.
  explicit FeedHandler(FeedOptions options);
  ~FeedHandler();
  FeedHandler(const FeedHandler&) = delete;
  FeedHandler& operator=(const FeedHandler&) = delete;

  // Receives, decodes and publishes until stop(); then closes every subscriber.
  Task<void> run();
  // From the handler's shard.
  void stop() noexcept;
  // From the handler's shard, once the feed's sender is done: returns when no datagram has come for `quiet`
  // (what was in flight has arrived, however far behind a loaded host held the handler), or after `limit`.
  Task<void> settle(Duration quiet = std::chrono::milliseconds(100),
                    Duration limit = std::chrono::seconds(10));

  const FeedStats& stats() const noexcept;
  const Book& book() const noexcept { return book_; }
  transport::SocketAddress feed_address() const { return socket_.local_address(); }
  transport::SocketAddress publish_address() const { return listener_.local_address(); }

 private:
  struct Subscriber;
  Task<void> receive_loop();
  Task<void> accept_loop();
  Task<void> write_loop(Subscriber* s);
  void handle(std::span<const std::byte> datagram);
  void publish(const Update& u) noexcept;
  void flush_subscribers() noexcept;
  void reap_subscribers() noexcept;
  void cut(Subscriber* s) noexcept;
  // At most one line a second per kind of event (the string is built only when it will be written).
  bool may_log(std::int64_t& last_ns) const noexcept;
  static void log(const std::string& line);

  FeedOptions options_;
  transport::DatagramSocket socket_;
  transport::StreamListener listener_;
  std::optional<transport::IpcChannel> ipc_;
  Book book_;
  SequenceTracker sequence_;
  mutable FeedStats stats_;
  std::vector<std::unique_ptr<Subscriber>> subscribers_;
  bool dirty_ = false;     // some subscriber has updates not yet handed to its writer
  bool pressure_ = false;  // some subscriber's buffer is more than half full
  bool stopping_ = false;
  Event stopped_;
  std::int64_t last_gap_log_ns_ = 0, last_malformed_log_ns_ = 0, last_cut_log_ns_ = 0;
};

// Whether `address` ("239.1.1.1:30001") names an IPv4 or IPv6 multicast group.
bool is_multicast(const transport::SocketAddress& address) noexcept;
// The numeric host of an address, without its port ("239.1.1.1").
std::string host_of(const transport::SocketAddress& address);

}  // namespace moirai::examples::feed
