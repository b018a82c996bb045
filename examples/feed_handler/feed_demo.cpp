#include "feed_demo.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "moirai/core/cpu_set.hpp"
#include "moirai/core/error.hpp"
#include "moirai/core/runtime.hpp"
#include "moirai/core/spawn.hpp"
#include "moirai/core/submit.hpp"

namespace moirai::examples::feed {

Figures figures_of(const LatencyHistogram& h) noexcept {
  return Figures{h.count(),          h.percentile(50),    h.percentile(90), h.percentile(99),
                 h.percentile(99.9), h.percentile(99.99), h.max()};
}

namespace {

// What the strategy process sends back through its pipe.
struct StrategyReport {
  Figures figures;
  std::uint64_t updates = 0, malformed = 0, out_of_order = 0;
  int status = 0;  // 0: read until the handler closed the channel
};

std::vector<int> demo_cpus(const DemoOptions& o) {
  if (!o.cpus.empty()) {
    if (o.cpus.size() != 2)
      throw Error(Errc::invalid_argument, "demo feed: give two CPUs (the handler's, then the load's)");
    return o.cpus;
  }
  std::vector<int> allowed = current_thread_affinity();
  if (allowed.size() < 2) {
    throw Error(Errc::invalid_argument,
                "demo feed needs two CPUs (handler, load) and this process may use only one; run it on a "
                "host with two or give --cpus A,B");
  }
  return {allowed[0], allowed[1]};
}

// The strategy process: its own one-shard runtime, reading the channel until the handler closes it.
[[noreturn]] void strategy_main(const std::string& name, int cpu, int out) {
  StrategyReport r;
  r.status = 1;
  try {
    RuntimeOptions ro;
    ro.cpus = {cpu};
    Runtime rt(ro);
    auto latency = std::make_unique<LatencyHistogram>();
    ConsumerStats st;
    rt.run([&]() -> Task<void> {
      transport::IpcChannel ch = co_await open_channel(name, std::chrono::seconds(10));
      co_await read_strategy_channel(ch, *latency, st);
      ch.close();
    });
    r.figures = figures_of(*latency);
    r.updates = st.updates;
    r.malformed = st.malformed;
    r.out_of_order = st.out_of_order;
    r.status = 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "feed strategy: %s\n", e.what());
  }
  const ssize_t n = ::write(out, &r, sizeof r);
  ::_exit(n == static_cast<ssize_t>(sizeof r) && r.status == 0 ? 0 : 1);
}

}  // namespace

DemoResult run_demo(const DemoOptions& o) {
  if (!(o.seconds > 0)) throw Error(Errc::invalid_argument, "demo feed: --seconds must be above 0");
  const std::vector<int> cpus = demo_cpus(o);
  const std::string channel = "moirai-feed-" + std::to_string(::getpid());

  int pipe_fds[2] = {-1, -1};
  pid_t child = -1;
  if (o.strategy) {
    if (::pipe2(pipe_fds, O_CLOEXEC) != 0)
      throw Error(Errc::invalid_argument, std::string("demo feed: pipe: ") + std::strerror(errno));
    child = ::fork();
    if (child < 0)
      throw Error(Errc::invalid_argument, std::string("demo feed: fork: ") + std::strerror(errno));
    if (child == 0) {
      ::close(pipe_fds[0]);
      strategy_main(channel, cpus[1], pipe_fds[1]);
    }
    ::close(pipe_fds[1]);
  }

  DemoResult result;
  std::string failure;
  try {
    RuntimeOptions ro;
    ro.cpus = cpus;
    Runtime rt(ro);
    rt.run([&]() -> Task<void> {
      FeedOptions fo;
      fo.feed = o.group + ":0";
      fo.interface = o.interface;
      fo.symbols = o.symbols;
      if (o.strategy) fo.ipc_name = channel;
      FeedHandler handler(fo);
      auto serving = spawn(handler.run());
      const transport::SocketAddress publish = handler.publish_address();
      LatencyHistogram& latency = *result.tick_to_publish;
      ConsumerStats& sub = result.subscriber;
      auto subscriber = spawn(
          [&]() -> Task<void> { co_await submit_to(1, [&] { return subscribe(publish, latency, sub); }); });
      // The load starts once its consumers are there, so that every change is seen by both.
      const std::int64_t give_up = deadline_after(std::chrono::seconds(10));
      while (handler.stats().subscribers_accepted == 0 && monotonic_ns() < give_up)
        co_await sleep_for(std::chrono::milliseconds(1));
      GeneratorOptions go;
      go.to = o.group + ":" + std::to_string(handler.feed_address().port());
      go.interface = o.interface;
      go.rate = o.rate;
      go.quotes_per_packet = o.quotes_per_packet;
      go.burst = o.burst;
      go.symbols = o.symbols;
      go.skip_every = o.skip_every;
      go.duration = std::chrono::nanoseconds(static_cast<std::int64_t>(o.seconds * 1e9));
      result.generator = co_await submit_to(1, [&go] { return generate(go); });
      co_await sleep_for(std::chrono::milliseconds(50));  // what is still in flight arrives
      handler.stop();
      co_await serving.join();
      result.feed = handler.stats();
      co_await subscriber.join();
    });
  } catch (const std::exception& e) {
    failure = e.what();
  }

  if (o.strategy) {
    StrategyReport r;
    r.status = 1;
    const ssize_t n = ::read(pipe_fds[0], &r, sizeof r);
    ::close(pipe_fds[0]);
    if (!failure.empty()) ::kill(child, SIGKILL);
    int status = 0;
    ::waitpid(child, &status, 0);
    if (failure.empty() && (n != static_cast<ssize_t>(sizeof r) || r.status != 0)) {
      failure = "the strategy process failed (see its message above)";
    }
    result.tick_to_strategy = r.figures;
    result.strategy.updates = r.updates;
    result.strategy.malformed = r.malformed;
    result.strategy.out_of_order = r.out_of_order;
    result.strategy_ran = n == static_cast<ssize_t>(sizeof r) && r.status == 0;
  }
  if (!failure.empty()) throw Error(Errc::invalid_argument, "demo feed: " + failure);
  return result;
}

}  // namespace moirai::examples::feed
