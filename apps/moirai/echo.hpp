// `moirai echo`: a framed echo service and its client, over TCP, Unix stream sockets or UDP. The server runs
// until SIGINT or SIGTERM (read through the shard's ring from a signalfd) and then stops cleanly, closing its
// connections and printing what it served. The client sends numbered messages, checks every reply, prints
// round-trip percentiles, and fails (exit 1) if any reply is missing or wrong.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "caps_option.hpp"

namespace moirai::cli {

struct EchoOptions {
  std::string address;            // HOST:PORT, [V6]:PORT, or a path (or unix:PATH) for --transport unix
  std::string transport = "tcp";  // tcp, udp or unix
  std::uint64_t count = 10'000;   // client: messages to send
  std::size_t size = 64;          // client: bytes per message on the wire (frame header included)
  double timeout_s = 1.0;         // client: how long to wait for each reply
  std::vector<int> cpus;          // the shard's CPU; empty: the first allowed
  std::string idle;               // idle strategy of the shard; empty: spin-then-sleep
  bool poll_when_idle = false;    // the shard reads its waiting sockets itself while it spins idle
  bool json = false;              // client: print JSON instead of a table
  std::string metrics;  // HOST:PORT to serve GET /metrics (Prometheus) and /metrics.json at; empty: off
  CapsOptions caps;     // --keep-caps, --no-drop-caps
};

// Serves until SIGINT or SIGTERM; returns the exit code (0 after a clean stop).
int echo_server(const EchoOptions& o, std::ostream& out);
// Returns 0 when every reply came back intact, 1 otherwise.
int echo_client(const EchoOptions& o, std::ostream& out);

// The socket address of `o.address` for `o.transport` (a bare path becomes unix:PATH). Throws
// TransportError(malformed) naming what is wrong.
std::string echo_address(const EchoOptions& o);

}  // namespace moirai::cli
