// The demo's baseline: the feed's first hop, one quote packet over UDP multicast from the load's CPU to the
// handler's, with plain syscalls and no framework. A sender thread keeps the generator's schedule (same
// rate, packet size and pacing) and stamps each quote with its intended send time; a receiver thread spins on
// a non-blocking recv (as the handler's shard spins) and records, per packet, the time from that intended
// send time to its arrival. Moirai's tick-to-publish goes further (the handler's book, then a TCP hop back to
// the subscriber), so the ratio of the two says what the framework's whole path costs over one bare hop.
#pragma once

#include <cstdint>
#include <string>

#include "moirai/core/histogram.hpp"

namespace moirai::examples::feed {

struct UdpBaselineOptions {
  int sender_cpu = 1;
  int receiver_cpu = 0;
  std::string group = "239.255.0.1";  // IPv4 multicast group (the port is the kernel's pick)
  std::string interface = "127.0.0.1";
  double rate = 100'000;  // quotes per second
  unsigned quotes_per_packet = 8;
  unsigned burst = 1;
  std::uint32_t symbols = 64;
  double seconds = 1;
};

struct UdpBaselineStats {
  std::uint64_t sent = 0;      // packets
  std::uint64_t received = 0;  // packets (each recorded once in the histogram)
  std::uint64_t behind = 0;    // packets sent later than their intended time plus one packet interval
};

// Runs for options.seconds on two threads of its own, recording into `latency`. Throws moirai::Error naming
// the call that failed (a socket that cannot be set up, a CPU that cannot be used).
UdpBaselineStats udp_multicast_baseline(const UdpBaselineOptions& options, LatencyHistogram& latency);

}  // namespace moirai::examples::feed
