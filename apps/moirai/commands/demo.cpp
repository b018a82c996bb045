// `moirai demo feed|telemetry`: the example services of examples/, run end to end on this host.
#include <iostream>
#include <memory>

#include "command.hpp"
#include "demo_feed.hpp"
#include "demo_telemetry.hpp"

namespace moirai::cli {
namespace {

struct FeedArgs {
  examples::feed::DemoOptions options;
  std::string cpus;
  bool no_strategy = false;
  std::string handler_idle;
  std::string load_idle;
  std::string strategy_idle;
  bool json = false;
};

int run_feed(FeedArgs& a) {
  examples::feed::DemoOptions& o = a.options;
  parse_cpus_if_given(a.cpus, o.cpus);
  o.strategy = !a.no_strategy;
  if (!a.handler_idle.empty()) o.handler_idle = parse_idle_strategy(a.handler_idle);
  if (!a.load_idle.empty()) o.load_idle = parse_idle_strategy(a.load_idle);
  if (!a.strategy_idle.empty()) o.strategy_idle = parse_idle_strategy(a.strategy_idle);
  return demo_feed(o, a.json, std::cout);
}

CLI::App* add_feed(CLI::App& demo, FeedArgs& a) {
  CLI::App* feed =
      demo.add_subcommand("feed", "Feed handler: multicast quotes in, book changes to TCP and IPC out");
  examples::feed::DemoOptions& o = a.options;
  feed->add_option("--seconds", o.seconds, "How long the generator sends")->check(CLI::PositiveNumber);
  feed->add_option("--rate", o.rate, "Quotes per second")->check(CLI::PositiveNumber);
  feed->add_option("--per-packet", o.quotes_per_packet, "Quotes per packet");
  feed->add_option("--burst", o.burst, "Packets sent back to back at each step");
  feed->add_option("--symbols", o.symbols, "Symbols quoted");
  feed->add_option("--skip-every", o.skip_every,
                   "The generator leaves out every n-th packet: gaps the handler reports");
  feed->add_option("--cpus", a.cpus, "Two CPUs, A,B: the handler on A, the load on B");
  feed->add_flag("--no-strategy", a.no_strategy,
                 "Leave out the IPC strategy process (on a two-CPU host it shares the load's CPU)");
  feed->add_option("--handler-idle", a.handler_idle, "Idle strategy of the handler (default spin)");
  feed->add_option("--load-idle", a.load_idle,
                   "Idle strategy of the generator and subscriber (default sleep: they share a CPU "
                   "with the strategy process)");
  feed->add_option("--strategy-idle", a.strategy_idle,
                   "Idle strategy of the strategy process (default sleep)");
  feed->add_flag("--json", a.json, "Print JSON instead of a table");
  return feed;
}

struct TelemetryArgs {
  examples::telemetry::DemoOptions options;
  std::string cpus;
  std::string idle;
  bool json = false;
};

int run_telemetry(TelemetryArgs& a) {
  parse_cpus_if_given(a.cpus, a.options.cpus);
  if (!a.idle.empty()) a.options.idle = parse_idle_strategy(a.idle);
  return demo_telemetry(a.options, a.json, std::cout);
}

CLI::App* add_telemetry(CLI::App& demo, TelemetryArgs& a) {
  CLI::App* telemetry = demo.add_subcommand(
      "telemetry", "Telemetry collector: TCP clients push samples, every shard aggregates, HTTP serves them");
  examples::telemetry::DemoOptions& o = a.options;
  telemetry->add_option("--seconds", o.seconds, "How long the load sends")->check(CLI::PositiveNumber);
  telemetry->add_option("--rate", o.rate, "Samples per second")->check(CLI::PositiveNumber);
  telemetry->add_option("--connections", o.connections, "Client connections")->check(CLI::PositiveNumber);
  telemetry->add_option("--batch", o.batch, "Samples per batch");
  telemetry->add_option("--keys", o.keys, "Distinct keys")->check(CLI::PositiveNumber);
  telemetry->add_option("--cpus", a.cpus, "The collector's CPUs, one shard each; the load runs on the last");
  telemetry->add_option("--idle", a.idle,
                        "Idle strategy of the shards: spin (default), sleep, spin-then-sleep or busy-poll");
  telemetry->add_flag("--json", a.json, "Print JSON instead of a table");
  return telemetry;
}

}  // namespace

Command add_demo_command(CLI::App& moirai) {
  CLI::App* demo = moirai.add_subcommand("demo", "Run an example service end to end on this host");
  demo->require_subcommand(1);
  auto feed_args = std::make_shared<FeedArgs>();
  auto telemetry_args = std::make_shared<TelemetryArgs>();
  CLI::App* feed = add_feed(*demo, *feed_args);
  add_telemetry(*demo, *telemetry_args);
  return {demo, [feed, feed_args, telemetry_args] {
            return feed->parsed() ? run_feed(*feed_args) : run_telemetry(*telemetry_args);
          }};
}

}  // namespace moirai::cli
