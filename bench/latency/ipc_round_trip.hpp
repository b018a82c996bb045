// `moirai bench echo`'s shared-memory IPC row: the round trip of one message between two processes on one
// host, through an IpcChannel, beside `baseline.cacheline` (two pinned threads bouncing one cache line).
#pragma once

#include <chrono>
#include <cstddef>

#include "bench.hpp"
#include "moirai/core/histogram.hpp"
#include "moirai/core/runtime_options.hpp"
#include "report.hpp"

namespace moirai::cli {

// How long each receive watches the ring before it suspends (IpcOptions::spin_before_wait) when the shards
// spin.
inline constexpr std::chrono::microseconds kIpcBenchSpinBeforeWait{20};

// Forks a child process that runs a one-shard runtime on cpu_b and echoes every message of an IpcChannel
// back; a one-shard runtime of this process on cpu_a sends `payload_bytes` bytes (64 by default: one 16-byte
// slot header + 64 bytes = two cache lines per message each way), waits for the echo, and records each round
// trip (monotonic clock, read on cpu_a) into `hist` after a warm-up of 1000, until `budget` is done. Both
// shards follow `idle` (spin for the figure; then receives spin for kIpcBenchSpinBeforeWait before they
// wait). Throws TransportError or Error naming the cause when the channel or a runtime cannot be set up,
// std::runtime_error when the child fails.
void moirai_ipc_round_trip(const BenchOptions& o, int cpu_a, int cpu_b, IdleStrategy idle,
                           const RunBudget& budget, LatencyHistogram& hist, std::size_t payload_bytes = 64);

}  // namespace moirai::cli
