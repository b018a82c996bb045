#include "feed_demo.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <future>
#include <thread>
#include <utility>

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
[[noreturn]] void strategy_main(const std::string& name, int cpu, IdleStrategy idle, int out) {
  StrategyReport r;
  r.status = 1;
  try {
    RuntimeOptions ro;
    ro.cpus = {cpu};
    ro.idle = idle;
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
  DemoResult result;

  // The baseline first, with the CPUs to itself (before the strategy process and the runtimes exist).
  if (o.baseline_seconds > 0) {
    UdpBaselineOptions bo;
    bo.sender_cpu = cpus[1];
    bo.receiver_cpu = cpus[0];
    bo.group = o.group;
    bo.interface = o.interface;
    bo.rate = o.rate;
    bo.quotes_per_packet = o.quotes_per_packet;
    bo.burst = o.burst;
    bo.symbols = o.symbols;
    bo.seconds = std::min(o.seconds, o.baseline_seconds);
    result.baseline = udp_multicast_baseline(bo, *result.udp_baseline);
    result.baseline_ran = true;
  }

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
      strategy_main(channel, cpus[1], o.strategy_idle, pipe_fds[1]);
    }
    ::close(pipe_fds[1]);
  }

  std::string failure;
  try {
    // What the tasks on both runtimes share; declared before the runtimes, which end first.
    std::promise<transport::SocketAddress> publish_promise, feed_promise;
    FeedHandler* handler = nullptr;
    LatencyHistogram& latency = *result.tick_to_publish;
    ConsumerStats& sub = result.subscriber;

    // Two runtimes, so that each role has its own idle strategy (it is a runtime's option).
    RuntimeOptions hro;
    hro.cpus = {cpus[0]};
    hro.idle = o.handler_idle;
    RuntimeOptions lro;
    lro.cpus = {cpus[1]};
    lro.idle = o.load_idle;
    Runtime handler_rt(hro);
    Runtime load_rt(lro);
    handler_rt.start();
    load_rt.start();

    std::future<void> serving = handler_rt.submit(0, [&]() -> Task<void> {
      FeedOptions fo;
      fo.feed = o.group + ":0";
      fo.interface = o.interface;
      fo.symbols = o.symbols;
      if (o.strategy) fo.ipc_name = channel;
      std::unique_ptr<FeedHandler> h;
      try {
        h = std::make_unique<FeedHandler>(fo);
      } catch (...) {
        publish_promise.set_exception(std::current_exception());
        throw;
      }
      handler = h.get();
      feed_promise.set_value(h->feed_address());
      publish_promise.set_value(h->publish_address());
      co_await h->run();
      result.feed = h->stats();
    });
    const transport::SocketAddress publish = publish_promise.get_future().get();
    const transport::SocketAddress feed_at = feed_promise.get_future().get();
    std::future<void> subscribing =
        load_rt.submit(0, [&]() -> Task<void> { return subscribe(publish, latency, sub); });
    // The load starts once its consumers are there, so that every change is seen by both.
    const std::int64_t give_up = deadline_after(std::chrono::seconds(10));
    while (handler_rt.submit(0, [&] { return handler->stats().subscribers_accepted; }).get() == 0 &&
           monotonic_ns() < give_up) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    GeneratorOptions go;
    go.to = o.group + ":" + std::to_string(feed_at.port());
    go.interface = o.interface;
    go.rate = o.rate;
    go.quotes_per_packet = o.quotes_per_packet;
    go.burst = o.burst;
    go.symbols = o.symbols;
    go.skip_every = o.skip_every;
    go.duration = std::chrono::nanoseconds(static_cast<std::int64_t>(o.seconds * 1e9));
    result.generator = load_rt.submit(0, [&go] { return generate(go); }).get();
    handler_rt.submit(0, [&] { return handler->settle(); }).get();  // what is still in flight arrives
    handler_rt.submit(0, [&] { handler->stop(); }).get();
    serving.get();
    subscribing.get();
    load_rt.stop();
    handler_rt.stop();
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
