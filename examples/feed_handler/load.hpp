// The feed handler's load: a generator that sends quote packets at a fixed rate (steady, or in bursts), and
// the two consumers that measure it end to end, a TCP subscriber and an IPC strategy reader.
//
// Latency is measured from each quote's intended send time (its place in the generator's schedule), not from
// when it was actually sent: a generator that falls behind (its shard stalled, the socket pushed back) shows
// up as latency, so stalls are not hidden (coordinated omission).
#pragma once

#include <cstdint>
#include <string>

#include "moirai/core/histogram.hpp"
#include "moirai/core/task.hpp"
#include "moirai/core/timer.hpp"
#include "moirai/transport/ipc.hpp"
#include "moirai/transport/socket_address.hpp"

namespace moirai::examples::feed {

struct GeneratorOptions {
  std::string to = "239.255.0.1:30001";  // the feed's group (or a unicast address) and port
  std::string interface;                 // multicast sends leave by this interface (name or IPv4 address)
  double rate = 100'000;                 // quotes per second
  unsigned quotes_per_packet = 1;        // 1..kMaxQuotesPerPacket
  unsigned burst = 1;                    // packets sent back to back at each step of the schedule
  std::uint32_t symbols = 64;
  Duration duration = std::chrono::seconds(1);
  std::uint64_t first_seq = 1;
  // Leave out every n-th packet (its sequence numbers are used, its quotes never sent): a gap the handler
  // must report. 0: none.
  std::uint64_t skip_every = 0;
  std::uint64_t seed = 1;
};

struct GeneratorStats {
  std::uint64_t packets = 0;
  std::uint64_t quotes = 0;
  std::uint64_t skipped_packets = 0;
  std::uint64_t skipped_quotes = 0;
  std::uint64_t behind = 0;  // packets sent later than their intended time plus one packet interval
  std::int64_t started_ns = 0;
  std::int64_t ended_ns = 0;
};

// Sends for options.duration on the calling shard. Throws moirai::Error for bad options, TransportError for
// a socket that cannot be set up.
Task<GeneratorStats> generate(GeneratorOptions options);

struct ConsumerStats {
  std::uint64_t updates = 0;
  std::uint64_t malformed = 0;     // payloads that are not one update
  std::uint64_t out_of_order = 0;  // an update older than the last one seen for its symbol
  std::string ended_by;            // why the consumer stopped (closed, reset, ...)
};

// Connects to the handler's publish address (retrying while it is not up) and reads updates until the
// handler closes the connection or the task is cancelled, recording tick-to-publish latency in `latency`.
Task<void> subscribe(transport::SocketAddress handler, LatencyHistogram& latency, ConsumerStats& stats);

// Reads updates from an IPC channel another process created (opened as its peer) until the creator closes
// it or the task is cancelled, recording tick-to-strategy latency.
Task<void> read_strategy_channel(transport::IpcChannel& channel, LatencyHistogram& latency,
                                 ConsumerStats& stats);

// Opens the channel `name`, retrying for up to `wait` while it does not exist yet or its creator has not
// finished laying it out.
Task<transport::IpcChannel> open_channel(std::string name, Duration wait);

}  // namespace moirai::examples::feed
