#include "ipc_round_trip.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench_support.hpp"
#include "metrics_option.hpp"
#include "moirai/core/runtime.hpp"
#include "moirai/core/timer.hpp"
#include "moirai/transport/ipc.hpp"

namespace moirai::cli {

using namespace moirai::transport;

namespace {
constexpr int kWarmup = 1000;
}

void moirai_ipc_round_trip(const BenchOptions& o, int cpu_a, int cpu_b, IdleStrategy idle,
                           const RunBudget& budget, LatencyHistogram& hist, std::size_t payload_bytes) {
  static int serial = 0;
  const std::string name = "moirai-bench-ipc-" + std::to_string(::getpid()) + "-" + std::to_string(serial++);
  IpcOptions io;
  io.slot_size = static_cast<std::uint32_t>((payload_bytes + 16 + 63) / 64 * 64);
  io.sender = EndpointId{static_cast<std::uint32_t>(::getpid()), 0, 0};
  // Spinning shards that serve nothing but this channel: each receive watches the ring before it suspends.
  if (idle == IdleStrategy::spin) io.spin_before_wait = kIpcBenchSpinBeforeWait;
  IpcChannel ch = IpcChannel::create(name, io);
  std::fflush(nullptr);  // nothing buffered may be written twice, by both processes
  const pid_t child = ::fork();
  if (child < 0) throw std::runtime_error(std::string("ipc bench: fork failed: ") + std::strerror(errno));
  if (child == 0) {
    // The echo side: everything it sends, it received; it ends when the parent closes the channel.
    int rc = 0;
    try {
      RuntimeOptions ro = detail::bench_runtime(o, {cpu_b}, idle);
      ro.stall_budget = std::chrono::nanoseconds(0);
      Runtime rt(ro);
      rc = rt.run([&]() -> Task<int> {
        IpcChannel peer =
            IpcChannel::open(name, EndpointId{static_cast<std::uint32_t>(::getpid()), 0, 0}, io);
        try {
          for (;;) {
            IpcMessage m = co_await peer.recv();
            while (!peer.try_send(m.payload)) {
            }
          }
        } catch (const TransportError& e) {
          co_return e.errc() == TransportErrc::closed ? 0 : 2;
        }
      });
    } catch (const std::exception& e) {
      std::fprintf(stderr, "moirai bench: ipc echo child: %s\n", e.what());
      rc = 3;
    }
    ::_exit(rc);
  }
  std::string failure;
  try {
    RuntimeOptions ro = detail::bench_runtime(o, {cpu_a}, idle);
    ro.stall_budget = std::chrono::nanoseconds(0);  // the client spins between suspensions by design
    Runtime rt(ro);
    rt.run([&]() -> Task<void> {
      serve_metrics_if_asked(o.metrics);
      std::vector<std::byte> payload(payload_bytes);
      auto round_trip = [&]() -> Task<void> {
        while (!ch.try_send(payload)) {
        }
        (void)co_await ch.recv();
      };
      for (int i = 0; i < kWarmup; ++i)
        co_await round_trip();
      detail::TimedPasses passes(budget);
      for (std::uint64_t i = 0; passes.next(i); ++i) {
        while (!ch.try_send(payload)) {
        }
        (void)co_await ch.recv();
        passes.record(hist);
      }
      ch.close();
    });
  } catch (const std::exception& e) {
    failure = e.what();
  }
  ch.close();
  int status = 0;
  ::waitpid(child, &status, 0);
  if (!failure.empty()) throw std::runtime_error("ipc bench: " + failure);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    throw std::runtime_error("ipc bench: the echo child process failed (status " + std::to_string(status) +
                             ")");
  }
}

}  // namespace moirai::cli
