// `moirai echo`: the framed echo server (--listen) or its client (--connect).
#include <cstdio>
#include <iostream>
#include <memory>

#include "command.hpp"
#include "echo.hpp"

namespace moirai::cli {
namespace {

struct EchoArgs {
  EchoOptions options;
  std::string listen_at;
  std::string connect_to;
  std::string cpus;
};

int run_echo(EchoArgs& a) {
  parse_cpus_if_given(a.cpus, a.options.cpus);
  if (a.listen_at.empty() == a.connect_to.empty()) {
    std::fprintf(stderr, "moirai: error: echo needs --listen ADDRESS or --connect ADDRESS\n");
    return 2;
  }
  a.options.address = a.listen_at.empty() ? a.connect_to : a.listen_at;
  return a.listen_at.empty() ? echo_client(a.options, std::cout) : echo_server(a.options, std::cout);
}

}  // namespace

Command add_echo_command(CLI::App& moirai) {
  CLI::App* echo = moirai.add_subcommand("echo", "Framed echo server (--listen) or client (--connect)");
  auto args = std::make_shared<EchoArgs>();
  EchoOptions& eo = args->options;
  CLI::Option* listen_opt =
      echo->add_option("--listen", args->listen_at, "Serve echo at HOST:PORT (or a path for unix)");
  CLI::Option* connect_opt = echo->add_option("--connect", args->connect_to,
                                              "Send messages to HOST:PORT and print round-trip percentiles");
  listen_opt->excludes(connect_opt);
  echo->add_option("--transport", eo.transport, "tcp, udp or unix")
      ->check(CLI::IsMember({"tcp", "udp", "unix"}));
  echo->add_option("--count", eo.count, "Client: messages to send")->check(CLI::PositiveNumber);
  echo->add_option("--size", eo.size, "Client: bytes per message, 16-byte frame header included");
  echo->add_option("--timeout", eo.timeout_s, "Client: seconds to wait for each reply")
      ->check(CLI::PositiveNumber);
  echo->add_option("--cpus", args->cpus, "The CPU of the shard (give client and server different ones)");
  echo->add_option("--idle", eo.idle, "Idle strategy of the shard")
      ->check(CLI::IsMember(idle_strategy_names()));
  echo->add_flag("--poll-when-idle", eo.poll_when_idle,
                 "While the shard spins idle, it reads its waiting sockets itself with non-blocking recv "
                 "(RecvOptions::poll_when_idle: a syscall per waiting socket per idle lap)");
  echo->add_flag("--json", eo.json, "Client: print JSON instead of a table");
  add_caps_options(*echo, eo.caps);
  echo->add_option("--metrics", eo.metrics,
                   "Serve the runtime's metrics over HTTP at HOST:PORT (GET /metrics: Prometheus text; "
                   "/metrics.json: JSON)");
  return {echo, [args] { return run_echo(*args); }};
}

}  // namespace moirai::cli
