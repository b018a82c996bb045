// How a socket's receive path gets its buffers: a provided-buffer ring of its own (the default), or one the
// application shares between sockets of a shard. Read by DatagramSocket and StreamReceiver.
#pragma once

#include <cstdint>

#include "moirai/io/buffer_ring.hpp"

namespace moirai::transport {

struct RecvOptions {
  // Buffers of the socket's own ring (a power of two) and their size. A datagram longer than buffer_size
  // minus 72 bytes (the kernel's header, the sender's address and the drop counter share the buffer) arrives
  // truncated and is flagged so.
  unsigned buffers = 64;
  std::uint32_t buffer_size = 2048;
  // A ring to share instead (it must belong to this shard's ring and outlive the socket). Sockets sharing a
  // ring share its exhaustion too: one slow reader can starve the others of buffers.
  io::BufferRing* shared = nullptr;
  // Use one-shot receives into plain buffers even where the kernel has provided-buffer rings and multishot
  // receive (tests, or to compare).
  bool force_fallback = false;
  // While a task waits on this socket and the shard spins idle in user space (IdleStrategy::spin, or the
  // spinning part of spin_then_sleep and busy_poll), the shard reads the socket itself with a non-blocking
  // recv at each idle lap, as a hand-rolled spin loop does, instead of waiting for the ring's completion,
  // which a spinning shard only gets by entering the kernel again to run the receive as deferred work. The
  // ring's request stays armed, so a sleeping shard is still woken by it and nothing is lost or reordered.
  // It costs a syscall per polled socket per idle lap (at most RuntimeOptions::idle_polls_per_lap of them,
  // in turn): for a few latency-critical sockets. Counted in ShardStats::idle_poll_hits. Adds one buffer of
  // buffer_size to the socket. Only where the shard's ring defers its completions to the shard's own enters
  // (DEFER_TASKRUN, Linux 6.1+): on an older kernel the ring could complete a receive between the shard's
  // look at its completions and its own recv, and bytes could come out of order, so there the option does
  // nothing.
  bool poll_when_idle = false;
};

}  // namespace moirai::transport
