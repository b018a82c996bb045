// feed_handler: the example feed handler as a program, and its load, for runs across hosts:
//   feed_handler serve --feed 239.255.0.1:30001 --interface eth0 --publish 0.0.0.0:30002 [--ipc NAME]
//   feed_handler generate --to 239.255.0.1:30001 --interface eth0 --rate 100000 --seconds 5
//   feed_handler subscribe --connect HOST:30002 --seconds 6 [--json]
// Global options before the subcommand: --cpu N, --policy fifo:50, --idle spin.
// (`moirai demo feed` runs all three on this host.) Each prints its counts; subscribe prints tick-to-publish
// percentiles in ns, measured from each quote's intended send time. Exit 2 for bad options or set-up errors.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>

#include "feed_handler.hpp"
#include "load.hpp"
#include "moirai/core/cpu_set.hpp"
#include "moirai/core/runtime.hpp"
#include "moirai/core/spawn.hpp"

using namespace moirai;
using namespace moirai::examples::feed;

namespace {

std::string g_policy;  // --policy, for every subcommand's shard
std::string g_idle;

RuntimeOptions one_shard(const std::string& cpu) {
  RuntimeOptions ro;
  if (!g_policy.empty()) ro.thread_policy = rt::ThreadPolicy::parse(g_policy);
  if (!g_idle.empty()) ro.idle = parse_idle_strategy(g_idle);
  if (!cpu.empty()) ro.cpus = parse_cpu_list(cpu);
  if (ro.cpus.size() > 1) ro.cpus = {ro.cpus.front()};
  if (ro.cpus.empty()) ro.cpus = {current_thread_affinity().front()};
  return ro;
}

Duration seconds(double s) {
  return std::chrono::nanoseconds(static_cast<std::int64_t>(s * 1e9));
}

int serve(const FeedOptions& fo, double for_seconds, const std::string& cpu) {
  Runtime rt(one_shard(cpu));
  FeedStats st;
  rt.run([&]() -> Task<void> {
    FeedHandler h(fo);
    std::cout << "feed_handler: feed " << h.feed_address().to_string() << ", subscribers at "
              << h.publish_address().to_string() << std::endl;
    auto serving = spawn(h.run());
    co_await sleep_for(seconds(for_seconds));
    h.stop();
    co_await serving.join();
    st = h.stats();
  });
  std::cout << "feed_handler: datagrams " << st.datagrams << " malformed " << st.malformed << " quotes "
            << st.quotes << " changes " << st.changes << " published_tcp " << st.published_tcp
            << " published_ipc " << st.published_ipc << " ipc_dropped " << st.ipc_dropped << " gaps "
            << st.sequence.gaps << " missing " << st.sequence.missing << " duplicates "
            << st.sequence.duplicates << " subscribers " << st.subscribers_accepted << " cut "
            << st.subscribers_cut << " kernel_drops " << st.kernel_drops << '\n';
  return 0;
}

int run_generator(const GeneratorOptions& go, const std::string& cpu) {
  Runtime rt(one_shard(cpu));
  const GeneratorStats st = rt.run([&]() -> Task<GeneratorStats> { co_return co_await generate(go); });
  std::cout << "feed_handler: sent packets " << st.packets << " quotes " << st.quotes << " skipped_packets "
            << st.skipped_packets << " skipped_quotes " << st.skipped_quotes << " behind " << st.behind
            << " seconds " << static_cast<double>(st.ended_ns - st.started_ns) / 1e9 << '\n';
  return 0;
}

int run_subscriber(const std::string& to, double for_seconds, const std::string& cpu, bool json) {
  Runtime rt(one_shard(cpu));
  auto latency = std::make_unique<LatencyHistogram>();
  ConsumerStats st;
  rt.run([&]() -> Task<void> {
    auto reading = spawn(subscribe(transport::SocketAddress::parse(to), *latency, st));
    bool timed_out = false;
    try {
      co_await reading.join_for(seconds(for_seconds));
    } catch (const TimedOut&) {
      timed_out = true;
    }
    if (timed_out) {
      reading.cancel();
      try {
        co_await reading.join();
      } catch (const TaskCancelled&) {
      }
    }
  });
  const double per_sec = for_seconds > 0 ? static_cast<double>(st.updates) / for_seconds : 0;
  if (json) {
    std::cout << "{\"updates\":" << st.updates << ",\"malformed\":" << st.malformed
              << ",\"out_of_order\":" << st.out_of_order << ",\"per_sec\":" << per_sec
              << ",\"tick_to_publish_ns\":{\"count\":" << latency->count()
              << ",\"p50\":" << latency->percentile(50) << ",\"p90\":" << latency->percentile(90)
              << ",\"p99\":" << latency->percentile(99) << ",\"p999\":" << latency->percentile(99.9)
              << ",\"max\":" << latency->max() << "}}\n";
    return st.updates != 0 && st.malformed == 0 && st.out_of_order == 0 ? 0 : 1;
  }
  std::cout << "feed_handler: updates " << st.updates << " malformed " << st.malformed << " out_of_order "
            << st.out_of_order << " tick_to_publish_ns p50 " << latency->percentile(50) << " p99 "
            << latency->percentile(99) << " p99.9 " << latency->percentile(99.9) << " max " << latency->max()
            << (st.ended_by.empty() ? "" : " ended_by ") << st.ended_by << '\n';
  return st.updates != 0 && st.malformed == 0 && st.out_of_order == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"feed_handler: a Moirai market-data feed handler and its load"};
  app.require_subcommand(1);
  std::string cpu;
  app.add_option("--cpu", cpu, "CPU of the one shard (default: the first this process may use)");
  app.add_option("--policy", g_policy,
                 "Kernel policy of the shard: other[:NICE], fifo:PRIO, rr:PRIO, deadline:R/D/P");
  app.add_option("--idle", g_idle, "Idle strategy: spin, sleep, spin-then-sleep or busy-poll");
  double for_seconds = 5;

  FeedOptions fo;
  CLI::App* serve_cmd = app.add_subcommand("serve", "Receive the feed and publish book changes");
  serve_cmd->add_option("--feed", fo.feed, "Multicast group (or unicast address) and port")->required();
  serve_cmd->add_option("--interface", fo.interface, "Interface to join the group on (name or IPv4 address)");
  serve_cmd->add_option("--publish", fo.publish, "Where TCP subscribers connect (default loopback)");
  serve_cmd->add_option("--ipc", fo.ipc_name, "Shared-memory channel for a strategy process");
  serve_cmd->add_option("--symbols", fo.symbols, "Symbol ids the book holds");
  serve_cmd->add_option("--seconds", for_seconds, "How long to serve")->check(CLI::PositiveNumber);

  GeneratorOptions go;
  double gen_seconds = 1;
  CLI::App* gen_cmd = app.add_subcommand("generate", "Send quote packets at a fixed rate");
  gen_cmd->add_option("--to", go.to, "Multicast group (or unicast address) and port")->required();
  gen_cmd->add_option("--interface", go.interface, "Interface multicast leaves by");
  gen_cmd->add_option("--rate", go.rate, "Quotes per second")->check(CLI::PositiveNumber);
  gen_cmd->add_option("--per-packet", go.quotes_per_packet, "Quotes per packet");
  gen_cmd->add_option("--burst", go.burst, "Packets sent back to back at each step");
  gen_cmd->add_option("--symbols", go.symbols, "Symbols quoted");
  gen_cmd->add_option("--skip-every", go.skip_every, "Leave out every n-th packet (a gap)");
  gen_cmd->add_option("--seconds", gen_seconds, "How long to send")->check(CLI::PositiveNumber);

  std::string connect;
  CLI::App* sub_cmd = app.add_subcommand("subscribe", "Read book changes and measure tick to publish");
  sub_cmd->add_option("--connect", connect, "The handler's publish address")->required();
  sub_cmd->add_option("--seconds", for_seconds, "How long to read")->check(CLI::PositiveNumber);
  bool json = false;
  sub_cmd->add_flag("--json", json, "Print one JSON object (updates per second over --seconds, percentiles)");

  CLI11_PARSE(app, argc, argv);
  try {
    if (serve_cmd->parsed()) return serve(fo, for_seconds, cpu);
    if (gen_cmd->parsed()) {
      go.duration = seconds(gen_seconds);
      return run_generator(go, cpu);
    }
    return run_subscriber(connect, for_seconds, cpu, json);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "feed_handler: error: %s\n", e.what());
    return 2;
  }
}
