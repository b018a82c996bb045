// Does sending from registered send buffers (transport/send_buffers.hpp) pay? Batches of large TCP messages
// over loopback from shard 0 to a reader on shard 1, which answers one byte when it has the whole batch.
// Each iteration times one batch sent plainly with send_all() from the application's own memory (the
// baseline), then one batch sent the benchmark's way, on the same connection; the iteration's time is the
// second, and vs_send_all is the mean of their ratios: the figure to read, as the host is shared.
//
//   BM_SendAll         the baseline against itself (vs_send_all near 1: the noise)
//   BM_PoolZeroCopy    written into a registered buffer, IORING_OP_SEND_ZC with IORING_RECVSEND_FIXED_BUF
//   BM_PoolPlain       written into a pool buffer, plain IORING_OP_SEND (the pool's fallback)
//
// Over loopback the kernel copies a zero-copy send's bytes when it hands them to the receiving socket, so
// this measures the cost of zero copy's bookkeeping there, not its gain on a NIC.
#include <benchmark/benchmark.h>

#include <cstring>
#include <optional>
#include <vector>

#include "moirai/core/clock.hpp"
#include "moirai/core/runtime.hpp"
#include "moirai/core/spawn.hpp"
#include "moirai/core/submit.hpp"
#include "moirai/core/timer.hpp"
#include "moirai/transport/send_buffers.hpp"
#include "moirai/transport/stream_socket.hpp"

namespace {

using namespace moirai::transport;
using moirai::Task;

constexpr int kBatch = 256;

enum class Way { send_all, pool_zero_copy, pool_plain };

// Reads batches of kBatch messages of `size` bytes and answers one byte after each, until the end.
Task<void> reader(StreamListener& listener, std::size_t size) {
  StreamSocket s = co_await listener.accept();
  std::vector<std::byte> buf(256 * 1024);
  const std::size_t batch = size * kBatch;
  std::size_t got = 0;
  for (;;) {
    const std::size_t n = co_await s.recv_some(buf);
    if (n == 0) break;
    got += n;
    while (got >= batch) {
      got -= batch;
      const std::byte ack{1};
      co_await s.send_all(std::span<const std::byte>(&ack, 1));
    }
  }
  co_await s.close();
}

// One batch the given way; ns from the first send to the reader's answer.
Task<std::int64_t> one_batch(StreamSocket& c, SendBufferPool* pool, std::vector<std::byte>& own, Way way,
                             std::size_t size, int salt) {
  const std::int64_t t0 = moirai::monotonic_ns();
  for (int m = 0; m < kBatch; ++m) {
    if (way == Way::send_all) {
      std::memset(own.data(), m + salt, 64);  // the application writes its message, then sends it
      co_await c.send_all(std::span<const std::byte>(own.data(), size));
    } else {
      SendBuffer b = co_await pool->acquire();
      std::memset(b.bytes().data(), m + salt, 64);
      co_await c.send(std::move(b), size);
    }
  }
  std::byte ack[1];
  const std::size_t n = co_await c.recv_some(ack);
  benchmark::DoNotOptimize(n);
  co_return moirai::monotonic_ns() - t0;
}

void run(benchmark::State& state, Way way) {
  const auto size = static_cast<std::size_t>(state.range(0));
  moirai::RuntimeOptions o;
  o.cpus = {0, 1};
  o.stall_budget = std::chrono::nanoseconds(0);
  moirai::Runtime rt(o);
  StreamListener listener = StreamListener::bind(SocketAddress::parse("127.0.0.1:0"));
  const SocketAddress at = listener.local_address();
  rt.run([&]() -> Task<void> {
    auto served = moirai::spawn(
        [&]() -> Task<void> { co_await moirai::submit_to(1, [&] { return reader(listener, size); }); });
    std::optional<SendBufferPool> pool;
    if (way != Way::send_all) pool.emplace(SendBufferOptions{size, 8, way == Way::pool_zero_copy});
    std::vector<std::byte> own(size);
    StreamSocket c = co_await StreamSocket::connect(at);
    const Way measured = way;
    (void)co_await one_batch(c, pool ? &*pool : nullptr, own, measured, size, 0);  // warm-up
    double ratio_sum = 0;
    int salt = 0;
    for (auto _ : state) {
      const std::int64_t base = co_await one_batch(c, nullptr, own, Way::send_all, size, ++salt);
      const std::int64_t mine = co_await one_batch(c, pool ? &*pool : nullptr, own, measured, size, ++salt);
      state.SetIterationTime(static_cast<double>(mine) * 1e-9);
      ratio_sum += static_cast<double>(mine) / static_cast<double>(base);
    }
    co_await c.close();
    co_await served.join();
    state.counters["vs_send_all"] = benchmark::Counter(ratio_sum, benchmark::Counter::kAvgIterations);
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * kBatch *
                            static_cast<std::int64_t>(size));
    if (pool) {
      state.counters["zero_copy_sends"] = static_cast<double>(pool->stats().zero_copy_sends);
      state.counters["copied"] = static_cast<double>(pool->stats().copied_sends);
    }
    // The pool goes here, on its shard, once the kernel gave every buffer back.
    if (pool) co_await pool->drained();
    pool.reset();
  });
}

void BM_SendAll(benchmark::State& state) {
  run(state, Way::send_all);
}
void BM_PoolZeroCopy(benchmark::State& state) {
  run(state, Way::pool_zero_copy);
}
void BM_PoolPlain(benchmark::State& state) {
  run(state, Way::pool_plain);
}

}  // namespace

BENCHMARK(BM_SendAll)->Arg(4096)->Arg(65536)->UseManualTime()->MinTime(0.3);
BENCHMARK(BM_PoolZeroCopy)->Arg(4096)->Arg(65536)->UseManualTime()->MinTime(0.3);
BENCHMARK(BM_PoolPlain)->Arg(4096)->Arg(65536)->UseManualTime()->MinTime(0.3);
