// The shared-memory baselines: two pinned threads bouncing one cache line, each writing a line of its own
// that the other watches, or passing messages through two rings of slots laid out as an IpcChannel's.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <limits>
#include <new>
#include <vector>

#include "baselines.hpp"
#include "moirai/core/cpu_relax.hpp"
#include "moirai/numa/node_memory.hpp"
#include "moirai/numa/topology.hpp"
#include "pinned_threads.hpp"

namespace moirai::cli {
namespace {

using namespace baselines;

// A writes its request on `request`, B waits for it and writes its reply on `reply`, A waits for that: one
// line bounced both ways when the two are one, else a line written by each thread and watched by the other.
// Odd values are A's requests, even values B's replies; kStop tells B to finish.
struct alignas(128) Line {  // 128: nor does the adjacent-line prefetcher pair it with another
  std::atomic<std::uint64_t> value{0};
};
void lines_pingpong(int cpu_a, int cpu_b, const RunBudget& budget, LatencyHistogram& hist, Line& request,
                    Line& reply, const char* what) {
  check_two_cpus(cpu_a, cpu_b, what);
  // Release/acquire is more than the counter needs (it carries no other data) and costs nothing extra on
  // x86, where every store is a release and every load an acquire.
  constexpr std::uint64_t kStop = std::numeric_limits<std::uint64_t>::max();
  PinnedThread responder(cpu_b, Policy::time_shared, [&request, &reply] {
    for (std::uint64_t expected = 1;; expected += 2) {
      std::uint64_t seen;
      while ((seen = request.value.load(std::memory_order_acquire)) != expected) {
        if (seen == kStop) return;
        cpu_relax();
      }
      reply.value.store(expected + 1, std::memory_order_release);
    }
  });

  PinnedThread initiator(cpu_a, Policy::time_shared, [&request, &reply, &budget, &hist] {
    std::uint64_t n = 0;
    time_round_trips(budget, hist, [&request, &reply, &n] {
      request.value.store(n + 1, std::memory_order_release);
      while (reply.value.load(std::memory_order_acquire) != n + 2)
        cpu_relax();
      n += 2;
      return true;
    });
    request.value.store(kStop, std::memory_order_release);
  });

  responder.start();
  initiator.start();
  initiator.join();
  responder.join();
}

}  // namespace

void cacheline_pingpong(int cpu_a, int cpu_b, const RunBudget& budget, LatencyHistogram& hist) {
  // The one line both threads touch, alone in its bytes so that nothing else on the caller's stack shares it
  // (false sharing would add traffic the baseline must not have).
  Line line;
  lines_pingpong(cpu_a, cpu_b, budget, hist, line, line, "cacheline ping-pong");
}

void two_lines_pingpong(int cpu_a, int cpu_b, const RunBudget& budget, LatencyHistogram& hist) {
  Line lines[2];
  lines_pingpong(cpu_a, cpu_b, budget, hist, lines[0], lines[1], "two-line ping-pong");
}

namespace {

// One direction of shm_ring_pingpong: `count` slots of `slot_bytes`, each a 16-byte header (the sequence,
// stored last, then the length and a sender word) and the payload, as an IpcChannel's ring lays them out.
class SlotRing {
 public:
  SlotRing(std::byte* base, std::uint32_t count, std::size_t slot_bytes) noexcept
      : base_(base), mask_(count - 1), slot_bytes_(slot_bytes) {}

  void put(std::uint64_t n, const std::byte* payload, std::uint32_t bytes) noexcept {
    std::byte* s = slot(n);
    std::memcpy(s + 16, payload, bytes);
    std::memcpy(s + 4, &bytes, sizeof bytes);
    seq(s).store(static_cast<std::uint32_t>(n + 1), std::memory_order_release);
  }
  // Spins until slot `n` holds message n, copies it out; false once `stop` is set.
  bool take(std::uint64_t n, std::byte* out, const std::atomic<bool>& stop) noexcept {
    std::byte* s = slot(n);
    while (seq(s).load(std::memory_order_acquire) != static_cast<std::uint32_t>(n + 1)) {
      if (stop.load(std::memory_order_relaxed)) return false;
      cpu_relax();
    }
    std::uint32_t bytes = 0;
    std::memcpy(&bytes, s + 4, sizeof bytes);
    std::memcpy(out, s + 16, bytes);
    return true;
  }

 private:
  std::byte* slot(std::uint64_t n) const noexcept { return base_ + (n & mask_) * slot_bytes_; }
  static std::atomic<std::uint32_t>& seq(std::byte* s) noexcept {
    return *std::launder(reinterpret_cast<std::atomic<std::uint32_t>*>(s));
  }
  std::byte* base_;
  std::uint64_t mask_;
  std::size_t slot_bytes_;
};

}  // namespace

void shm_ring_pingpong(int cpu_a, int cpu_b, std::size_t payload_bytes, const RunBudget& budget,
                       LatencyHistogram& hist) {
  check_two_cpus(cpu_a, cpu_b, "the slot-ring ping-pong");
  constexpr std::uint32_t kSlots = 1024;
  const std::size_t slot_bytes = (payload_bytes + 16 + 63) / 64 * 64;
  const std::size_t ring_bytes = kSlots * slot_bytes;
  // Both rings in one mapping on the initiator's node, faulted in now (unmapped however this returns), each
  // slot's sequence zero (empty).
  const numa::Topology& topo = numa::Topology::system();
  const numa::NodeMemory rings =
      numa::allocate_on_node(topo, std::max(0, topo.node_of_cpu(cpu_a)), 2 * ring_bytes);
  auto* base = static_cast<std::byte*>(rings.data());
  for (std::size_t off = 0; off < 2 * ring_bytes; off += slot_bytes)
    new (base + off) std::atomic<std::uint32_t>(0);
  SlotRing request(base, kSlots, slot_bytes);
  SlotRing reply(base + ring_bytes, kSlots, slot_bytes);
  std::atomic<bool> stop{false};
  const auto bytes = static_cast<std::uint32_t>(payload_bytes);

  PinnedThread responder(cpu_b, Policy::time_shared, [&, bytes] {
    std::vector<std::byte> buf(bytes);
    for (std::uint64_t n = 0; request.take(n, buf.data(), stop); ++n)
      reply.put(n, buf.data(), bytes);
  });
  PinnedThread initiator(cpu_a, Policy::time_shared, [&, bytes] {
    std::vector<std::byte> out(bytes, std::byte{0x5a});
    std::vector<std::byte> in(bytes);
    std::uint64_t n = 0;
    time_round_trips(budget, hist, [&] {
      request.put(n, out.data(), bytes);
      return reply.take(n++, in.data(), stop);
    });
    stop.store(true, std::memory_order_relaxed);
  });

  responder.start();
  initiator.start();
  initiator.join();
  responder.join();
}

}  // namespace moirai::cli
