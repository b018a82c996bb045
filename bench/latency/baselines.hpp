// The baselines `moirai bench` measures in the same run as Moirai's own figures, which are reported as ratios
// to them: on a shared or virtual machine a cross-core round trip changes from one hour to the next (the host
// may move vCPUs), so an absolute figure from another run means little.
#pragma once

#include <chrono>
#include <cstddef>

#include "moirai/core/histogram.hpp"
#include "moirai/rt/thread_policy.hpp"
#include "report.hpp"

namespace moirai::cli {

// The physical limit of a cross-core round trip. Two threads, pinned to cpu_a and cpu_b and running
// SCHED_OTHER, bounce one cache line: A writes n, B waits to see n and writes n + 1, A waits for n + 1. After
// a warm-up of 1000 round trips, records the time of each round trip (steady clock, read on A) into
// `hist` until `budget` is done. Both threads spin with a pause instruction, so each needs a CPU of its own.
// Throws std::invalid_argument when cpu_a == cpu_b, std::runtime_error naming the CPU and the reason when a
// thread cannot be pinned.
void cacheline_pingpong(int cpu_a, int cpu_b, const RunBudget& budget, LatencyHistogram& hist);

// The same two threads, each writing a line of its own that the other watches: A writes n on its line, B
// waits to see it and writes n + 1 on its own, A waits for that. Two lines move per round trip, as between
// any pair of single-writer rings (an IpcChannel's two), where the cache-line baseline moves one line both
// ways: what the second line costs. Throws as cacheline_pingpong does.
void two_lines_pingpong(int cpu_a, int cpu_b, const RunBudget& budget, LatencyHistogram& hist);

// The same two threads passing `payload_bytes`-byte messages through two rings of 1024 sequenced slots, one
// each way, laid out as an IpcChannel's (a 16-byte header whose sequence is stored last, then the payload; a
// multiple of 64 bytes per slot), with no framework around them: what moving a message through a slot
// ring costs beside one cache line. Each message moves to the next slot, so it touches a new
// line each time, where the cache-line baseline reuses one. Throws as cacheline_pingpong does, and
// std::runtime_error when the rings cannot be mapped.
void shm_ring_pingpong(int cpu_a, int cpu_b, std::size_t payload_bytes, const RunBudget& budget,
                       LatencyHistogram& hist);

// cyclictest's method: one thread pinned to `cpu` sleeps with clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME)
// until next = previous target + interval and records its lateness (wake time - target, in ns; 0 if early)
// for each iteration until `budget` is done. The thread inherits the caller's scheduling policy, so the
// figure is the timer latency Moirai's own sleeping shards would see under the same policy; under SCHED_OTHER
// that includes the thread's timer slack (50 µs by default, see prctl(PR_SET_TIMERSLACK)), which real-time
// threads do not have.
// With `policy` other than the default, the thread runs under it instead (the bench's --policy, so that the
// baseline and Moirai's shards sleep under the same policy); if it is refused, under the caller's.
// Throws std::invalid_argument when interval <= 0, std::runtime_error naming the CPU and the reason when the
// thread cannot be pinned.
void clock_nanosleep_lateness(int cpu, std::chrono::nanoseconds interval, const RunBudget& budget,
                              LatencyHistogram& hist, const rt::ThreadPolicy& policy = {});

// The kernel's own limit for a socket round trip: two threads pinned to cpu_a and cpu_b (SCHED_OTHER), each
// with one end of a connected pair of non-blocking sockets of `kind` over loopback (TCP with TCP_NODELAY,
// UDP, or a Unix stream socket pair). A sends `bytes` bytes; B spins on recv(MSG_DONTWAIT) until it has them
// all and sends them back; A spins on recv the same way. After a warm-up of 1000 round trips, records each
// round trip (steady clock, read on A) into `hist` until `budget` is done. Throws std::runtime_error naming
// the call and errno when a socket cannot be set up, std::invalid_argument when cpu_a == cpu_b.
enum class SocketKind { tcp, udp, unix_stream };
void socket_syscall_spin(SocketKind kind, int cpu_a, int cpu_b, std::size_t bytes, const RunBudget& budget,
                         LatencyHistogram& hist);
// The same round trip with each thread doing its io through a raw io_uring of its own (set up with Moirai's
// flags, one request at a time, spinning on the completion queue): what io_uring itself costs over the
// syscalls, before any framework. Moirai's socket rows cannot beat it by much, only match it.
void socket_raw_ring_spin(SocketKind kind, int cpu_a, int cpu_b, std::size_t bytes, const RunBudget& budget,
                          LatencyHistogram& hist);

}  // namespace moirai::cli
