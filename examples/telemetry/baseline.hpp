// The demo's baseline: the collector's ingest path hand-rolled with plain syscalls and no framework. A sender
// thread on the load's CPU keeps the load's schedule (same rate, batch size, keys and pacing: a kernel sleep
// woken early by a learned margin, then a spin to the intended time) and writes each batch, in the same
// frames and wire format, with a blocking send on loopback TCP; a receiver thread on the collector's first
// CPU spins on non-blocking recv, parses whole frames and batches, folds every sample into an Aggregator as
// a shard does, and records per sample the time from its intended send time to when its batch was folded in:
// what sample_to_aggregate measures, without acks, the runtime or the ring. No ack comes back, so the sender
// never waits for a window (a blocking send can only wait for the socket's buffer).
#pragma once

#include <cstdint>

#include "moirai/core/histogram.hpp"

namespace moirai::examples::telemetry {

struct TcpBaselineOptions {
  int sender_cpu = 1;
  int receiver_cpu = 0;
  double rate = 200'000;     // samples per second, all connections together
  unsigned connections = 1;  // loopback TCP connections, used in turn one batch each
  unsigned batch = 20;       // samples per batch, 1..kMaxSamplesPerBatch
  unsigned keys = 256;       // distinct keys "load.k<i>"; even i counters, odd i gauges (as the load's)
  double seconds = 1;
};

struct TcpBaselineStats {
  unsigned connections = 0;  // as given
  std::uint64_t sent_batches = 0;
  std::uint64_t sent_samples = 0;
  std::uint64_t received_batches = 0;  // whole batches parsed
  std::uint64_t folded = 0;            // samples the Aggregator took (each recorded once in the histogram)
  std::uint64_t refused = 0;           // samples that did not parse or that the Aggregator refused
  std::uint64_t malformed = 0;         // frames that were not a batch
  std::uint64_t keys = 0;              // distinct keys in the receiver's Aggregator at the end
  std::uint64_t behind = 0;            // batches sent later than their intended time plus one batch interval
};

// Runs for options.seconds on two threads of its own, recording into `latency`. Throws moirai::Error for
// options out of range and naming the call that failed (a socket that cannot be set up, a CPU that cannot be
// used, a connection that broke).
TcpBaselineStats tcp_syscall_baseline(const TcpBaselineOptions& options, LatencyHistogram& latency);

}  // namespace moirai::examples::telemetry
