// What the shards of one Runtime share: the options, the shards themselves (so each can reach its peers'
// rings) and the two atomics of the shutdown protocol.
#pragma once

#include <atomic>
#include <memory>
#include <vector>

#include "moirai/core/detail/shard_core.hpp"
#include "moirai/core/runtime_options.hpp"

namespace moirai::detail {

struct RuntimeState {
  RuntimeOptions options;
  std::vector<int> cpus;
  std::vector<std::unique_ptr<ShardCore>> shards;
  // Set once by stop() or by the end of run()'s main task; every shard polls it (relaxed) once per loop.
  std::atomic<bool> stopping{false};
  // Shards that have no live task left since they saw `stopping`; all exit when it reaches shards.size().
  std::atomic<unsigned> quiesced{0};
  // Set by the first shard whose thread policy was refused: the warning is printed once per runtime.
  std::atomic<bool> thread_policy_warned{false};
  // The same for lock_memory refused (RLIMIT_MEMLOCK, no CAP_IPC_LOCK): one line per runtime, not per shard.
  std::atomic<bool> memory_lock_warned{false};
  std::atomic<bool> busy_poll_warned{false};  // the kernel refused busy polling: said once per runtime
  // Capabilities the runtime's threads dropped (rt::CapabilityMask), and whether a refusal was reported.
  std::atomic<std::uint64_t> dropped_capabilities{0};
  std::atomic<bool> capability_drop_warned{false};

  void request_stop() noexcept {
    stopping.store(true, std::memory_order_seq_cst);
    for (auto& s : shards)
      s->wake_from_outside();
  }

  // Points each shard's outgoing ring to `dest` at dest's incoming ring from it.
  void wire() {
    const std::size_t n = shards.size();
    for (std::size_t i = 0; i < n; ++i) {
      for (std::size_t j = 0; j < n; ++j)
        shards[i]->outgoing_[j] = shards[j]->incoming_[i].get();
    }
  }
};

// The runtime the calling thread is a shard of (null elsewhere).
inline thread_local RuntimeState* t_runtime_state = nullptr;

}  // namespace moirai::detail
