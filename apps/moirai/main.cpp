// bin/moirai: the project's command line.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include "bench.hpp"
#include "demo_feed.hpp"
#include "demo_telemetry.hpp"
#include "doctor.hpp"
#include "echo.hpp"
#include "gate.hpp"
#include "moirai/core/cpu_set.hpp"
#include "moirai/core/error.hpp"
#include "moirai/rt/capabilities.hpp"
#include "report_files.hpp"
#include "soak.hpp"
#include "topo.hpp"

namespace {
// What --idle takes (moirai::parse_idle_strategy reads each).
const std::vector<std::string> kIdleStrategies = {"spin", "sleep", "spin-then-sleep", "busy-poll"};
}  // namespace

int main(int argc, char** argv) {
  using namespace moirai::cli;
  CLI::App app{"moirai: a thread-per-core runtime for services that answer in microseconds"};
  app.require_subcommand(1);

  CLI::App* bench = app.add_subcommand("bench", "Measure latency distributions against in-run baselines");
  std::uint64_t count = 0;
  double duration_s = 0;
  std::string cpus;
  std::string idle;
  unsigned interval_us = 100;
  bool json = false;
  CLI::Option* count_opt = bench->add_option("--count", count, "Iterations per measured row");
  CLI::Option* duration_opt =
      bench->add_option("--duration", duration_s, "Seconds per measured row (instead of --count)")
          ->check(CLI::PositiveNumber);
  count_opt->excludes(duration_opt);
  bench->add_option("--cpus", cpus, "CPUs to use, as A,B (shard 0 on A, shard 1 on B)");
  bench->add_option("--idle", idle, "Idle strategy of the shards")->check(CLI::IsMember(kIdleStrategies));
  auto busy_poll_after_ns = static_cast<std::uint64_t>(moirai::RuntimeOptions{}.busy_poll_after.count());
  bench
      ->add_option(
          "--busy-poll-after-ns", busy_poll_after_ns,
          "With --idle busy-poll: nanoseconds an idle shard spins in user space before it waits in the "
          "kernel")
      ->capture_default_str()
      ->check(CLI::Range(std::uint64_t{0}, std::uint64_t{1'000'000'000}));
  unsigned inline_io = moirai::RuntimeOptions{}.inline_io_per_resumption;
  bench
      ->add_option("--inline-io", inline_io,
                   "Sends a task may make per resumption as non-blocking syscalls (0: all through the ring)")
      ->capture_default_str()
      ->check(CLI::Range(0u, 1'000'000u));
  bool poll_when_idle = true;
  bench
      ->add_option(
          "--poll-when-idle", poll_when_idle,
          "bench echo: a shard spinning idle reads its waiting sockets itself with non-blocking recv "
          "(ReceiveOptions::poll_when_idle)")
      ->capture_default_str();
  bench->add_option("--interval-us", interval_us, "Sleep interval of the timer bench, in microseconds")
      ->check(CLI::Range(1u, 10'000'000u));
  bench->add_flag("--json", json, "Print JSON instead of tables");
  std::string policy;
  bench->add_option(
      "--policy", policy,
      "Kernel policy of the shards: other[:NICE], fifo:PRIO, rr:PRIO or deadline:RUNTIME/DEADLINE/PERIOD "
      "(microseconds, or with a unit: 200us)");
  ReportOutputs outputs;
  bench->add_option(
      "--hgrm", outputs.hgrm,
      "Write each row's distribution in HdrHistogram's percentile format, to FILE's stem + .ROW.hgrm");
  bench->add_option("--plot", outputs.plot, "Write an SVG of latency by percentile, 50% to 99.999%");
  bench->add_option("--report", outputs.report_dir,
                    "Write JSON, SVG plots, hgrm files and summary.md into DIR");
  std::string baseline;
  GateOptions gate_options;
  CLI::Option* baseline_opt = bench->add_option("--baseline", baseline,
                                                "Compare each row's ratio to its in-run baseline with a "
                                                "saved `moirai bench --json`; exit 3 on a regression");
  bench
      ->add_option("--tolerance", gate_options.tolerance_pct,
                   "Percent a ratio may grow before it is a regression")
      ->check(CLI::Range(0.0, 1000.0))
      ->capture_default_str()
      ->needs(baseline_opt);
  bench->add_option("--gate", gate_options.figures, "Ratios the gate compares: p50, p99 or p50,p99")
      ->delimiter(',')
      ->capture_default_str()
      ->needs(baseline_opt);
  CapsOptions bench_caps;
  bench
      ->add_option("--keep-caps", bench_caps.keep,
                   "Capabilities the runtime keeps once set up, as CAP_A,CAP_B (it drops the others)")
      ->delimiter(',');
  bench->add_flag("--no-drop-caps", bench_caps.no_drop, "Keep every capability the process has");
  std::string bench_metrics;
  bench->add_option("--metrics", bench_metrics,
                    "Serve each bench runtime's metrics over HTTP at HOST:PORT while it runs (GET /metrics)");
  for (const LatencyBench* b : latency_benches())
    bench->add_subcommand(std::string(b->name), std::string(b->summary))->fallthrough();
  bench->require_subcommand(0, 1);

  CLI::App* topo = app.add_subcommand("topo", "NUMA nodes, their CPUs, memory and distances; quiet CPUs");
  bool topo_json_out = false;
  std::string sysfs;
  topo->add_flag("--json", topo_json_out, "Print JSON instead of text");
  topo->add_option("--sysfs", sysfs,
                   "Read a topology from a directory laid out like /sys/devices/system instead of this host")
      ->check(CLI::ExistingDirectory);

  CLI::App* echo = app.add_subcommand("echo", "Framed echo server (--listen) or client (--connect)");
  EchoOptions eo;
  std::string listen_at, connect_to, echo_cpus;
  CLI::Option* listen_opt =
      echo->add_option("--listen", listen_at, "Serve echo at HOST:PORT (or a path for unix)");
  CLI::Option* connect_opt = echo->add_option("--connect", connect_to,
                                              "Send messages to HOST:PORT and print round-trip percentiles");
  listen_opt->excludes(connect_opt);
  echo->add_option("--transport", eo.transport, "tcp, udp or unix")
      ->check(CLI::IsMember({"tcp", "udp", "unix"}));
  echo->add_option("--count", eo.count, "Client: messages to send")->check(CLI::PositiveNumber);
  echo->add_option("--size", eo.size, "Client: bytes per message, 16-byte frame header included");
  echo->add_option("--timeout", eo.timeout_s, "Client: seconds to wait for each reply")
      ->check(CLI::PositiveNumber);
  echo->add_option("--cpus", echo_cpus, "The CPU of the shard (give client and server different ones)");
  echo->add_option("--idle", eo.idle, "Idle strategy of the shard")->check(CLI::IsMember(kIdleStrategies));
  echo->add_flag("--poll-when-idle", eo.poll_when_idle,
                 "While the shard spins idle, it reads its waiting sockets itself with non-blocking recv "
                 "(ReceiveOptions::poll_when_idle: a syscall per waiting socket per idle lap)");
  echo->add_flag("--json", eo.json, "Client: print JSON instead of a table");
  echo->add_option("--keep-caps", eo.caps.keep,
                   "Capabilities the runtime keeps once set up, as CAP_A,CAP_B (it drops the others)")
      ->delimiter(',');
  echo->add_flag("--no-drop-caps", eo.caps.no_drop, "Keep every capability the process has");
  echo->add_option("--metrics", eo.metrics,
                   "Serve the runtime's metrics over HTTP at HOST:PORT (GET /metrics: Prometheus text; "
                   "/metrics.json: JSON)");

  CLI::App* doctor =
      app.add_subcommand("doctor", "Check this host for low-latency readiness; changes nothing");
  DoctorOptions doctor_options;
  bool doctor_json_out = false;
  std::string doctor_cpus;
  doctor->add_flag("--json", doctor_json_out, "Print JSON instead of text");
  doctor->add_option("--cpus", doctor_cpus, "The CPUs the service will run on (default: this process's)");
  doctor->add_option("--root", doctor_options.root,
                     "Read proc/ and sys/ under DIR instead of / (fixture trees)");

  CLI::App* demo = app.add_subcommand("demo", "Run an example service end to end on this host");
  demo->require_subcommand(1);
  CLI::App* demo_feed_cmd =
      demo->add_subcommand("feed", "Feed handler: multicast quotes in, book changes to TCP and IPC out");
  moirai::examples::feed::DemoOptions feed_options;
  bool demo_json = false;
  std::string demo_cpus;
  demo_feed_cmd->add_option("--seconds", feed_options.seconds, "How long the generator sends")
      ->check(CLI::PositiveNumber);
  demo_feed_cmd->add_option("--rate", feed_options.rate, "Quotes per second")->check(CLI::PositiveNumber);
  demo_feed_cmd->add_option("--per-packet", feed_options.quotes_per_packet, "Quotes per packet");
  demo_feed_cmd->add_option("--burst", feed_options.burst, "Packets sent back to back at each step");
  demo_feed_cmd->add_option("--symbols", feed_options.symbols, "Symbols quoted");
  demo_feed_cmd->add_option("--skip-every", feed_options.skip_every,
                            "The generator leaves out every n-th packet: gaps the handler reports");
  demo_feed_cmd->add_option("--cpus", demo_cpus, "Two CPUs, A,B: the handler on A, the load on B");
  bool feed_no_strategy = false;
  demo_feed_cmd->add_flag("--no-strategy", feed_no_strategy,
                          "Leave out the IPC strategy process (on a two-CPU host it shares the load's CPU)");
  std::string feed_handler_idle, feed_load_idle, feed_strategy_idle;
  demo_feed_cmd->add_option("--handler-idle", feed_handler_idle,
                            "Idle strategy of the handler (default spin)");
  demo_feed_cmd->add_option("--load-idle", feed_load_idle,
                            "Idle strategy of the generator and subscriber (default sleep: they share a CPU "
                            "with the strategy process)");
  demo_feed_cmd->add_option("--strategy-idle", feed_strategy_idle,
                            "Idle strategy of the strategy process (default sleep)");
  demo_feed_cmd->add_flag("--json", demo_json, "Print JSON instead of a table");
  CLI::App* demo_telemetry_cmd = demo->add_subcommand(
      "telemetry", "Telemetry collector: TCP clients push samples, every shard aggregates, HTTP serves them");
  moirai::examples::telemetry::DemoOptions telemetry_options;
  demo_telemetry_cmd->add_option("--seconds", telemetry_options.seconds, "How long the load sends")
      ->check(CLI::PositiveNumber);
  demo_telemetry_cmd->add_option("--rate", telemetry_options.rate, "Samples per second")
      ->check(CLI::PositiveNumber);
  demo_telemetry_cmd->add_option("--connections", telemetry_options.connections, "Client connections")
      ->check(CLI::PositiveNumber);
  demo_telemetry_cmd->add_option("--batch", telemetry_options.batch, "Samples per batch");
  demo_telemetry_cmd->add_option("--keys", telemetry_options.keys, "Distinct keys")
      ->check(CLI::PositiveNumber);
  demo_telemetry_cmd->add_option("--cpus", demo_cpus,
                                 "The collector's CPUs, one shard each; the load runs on the last");
  std::string telemetry_idle;
  demo_telemetry_cmd->add_option(
      "--idle", telemetry_idle,
      "Idle strategy of the shards: spin (default), sleep, spin-then-sleep or busy-poll");
  demo_telemetry_cmd->add_flag("--json", demo_json, "Print JSON instead of a table");

  CLI::App* soak = app.add_subcommand(
      "soak",
      "Sequence-numbered, checksummed messages through each transport: none lost, none duplicated, "
      "order kept, memory flat");
  SoakOptions soak_options;
  std::string soak_transport = "all";
  std::string soak_cpus;
  bool soak_json_out = false;
  // The last of a repeated option counts: scripts/soak passes its own --messages before the caller's.
  soak->add_option("--transport", soak_transport, "channel, mpsc, tcp, udp, unix, ipc or all")
      ->capture_default_str()
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  soak->add_option("--messages", soak_options.messages, "Messages through each transport")
      ->capture_default_str()
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  soak->add_option("--senders", soak_options.senders, "Sender tasks of the mpsc channel")
      ->capture_default_str()
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  soak->add_option("--payload", soak_options.payload, "Bytes per message (at least 24)")
      ->capture_default_str()
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  soak->add_option("--cpus", soak_cpus,
                   "CPUs: the receiver on the first, senders on the others (default: all allowed)")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  soak->add_flag("--json", soak_json_out, "Print JSON instead of a table");

  CLI11_PARSE(app, argc, argv);

  try {
    if (demo_feed_cmd->parsed()) {
      if (!demo_cpus.empty()) feed_options.cpus = moirai::parse_cpu_list(demo_cpus);
      feed_options.strategy = !feed_no_strategy;
      if (!feed_handler_idle.empty())
        feed_options.handler_idle = moirai::parse_idle_strategy(feed_handler_idle);
      if (!feed_load_idle.empty()) feed_options.load_idle = moirai::parse_idle_strategy(feed_load_idle);
      if (!feed_strategy_idle.empty())
        feed_options.strategy_idle = moirai::parse_idle_strategy(feed_strategy_idle);
      return demo_feed(feed_options, demo_json, std::cout);
    }
    if (demo_telemetry_cmd->parsed()) {
      if (!demo_cpus.empty()) telemetry_options.cpus = moirai::parse_cpu_list(demo_cpus);
      if (!telemetry_idle.empty()) telemetry_options.idle = moirai::parse_idle_strategy(telemetry_idle);
      return demo_telemetry(telemetry_options, demo_json, std::cout);
    }
    if (doctor->parsed()) {
      if (!doctor_cpus.empty()) doctor_options.cpus = moirai::parse_cpu_list(doctor_cpus);
      const std::vector<DoctorCheck> checks = run_doctor(doctor_options);
      if (doctor_json_out) {
        std::cout << doctor_json(checks) << '\n';
      } else {
        print_doctor(std::cout, checks);
      }
      return doctor_exit_code(checks);
    }
    if (soak->parsed()) {
      if (!soak_cpus.empty()) soak_options.cpus = moirai::parse_cpu_list(soak_cpus);
      if (soak_transport != "all") soak_options.transports = {soak_transport};
      soak_options.progress = isatty(STDERR_FILENO) != 0;
      return soak_main(soak_options, std::cout, std::cerr, soak_json_out);
    }
    if (echo->parsed()) {
      if (!echo_cpus.empty()) eo.cpus = moirai::parse_cpu_list(echo_cpus);
      if (listen_at.empty() == connect_to.empty()) {
        std::fprintf(stderr, "moirai: error: echo needs --listen ADDRESS or --connect ADDRESS\n");
        return 2;
      }
      eo.address = listen_at.empty() ? connect_to : listen_at;
      return listen_at.empty() ? echo_client(eo, std::cout) : echo_server(eo, std::cout);
    }
    if (topo->parsed()) {
      const moirai::numa::Topology t =
          sysfs.empty() ? moirai::numa::Topology::load() : moirai::numa::Topology::from_sysfs(sysfs);
      if (topo_json_out) {
        std::cout << topo_json(t) << '\n';
      } else {
        print_topo(std::cout, t);
      }
      return 0;
    }
    BenchOptions o;
    o.budget.count = count;
    o.budget.duration = std::chrono::nanoseconds(static_cast<long long>(duration_s * 1e9));
    if (!cpus.empty()) o.cpus = moirai::parse_cpu_list(cpus);
    o.idle = idle;
    o.inline_io = inline_io;
    o.busy_poll_after = std::chrono::nanoseconds(busy_poll_after_ns);
    o.poll_when_idle = poll_when_idle;
    o.interval = std::chrono::microseconds(interval_us);
    o.policy = policy;
    o.metrics = bench_metrics;
    o.caps = bench_caps;
    o.progress = isatty(STDERR_FILENO) != 0;

    // Everything that can be refused is refused before minutes of benches.
    prepare_outputs(outputs);
    std::vector<SavedRatios> saved;
    if (!baseline.empty()) {
      check_gate_options(gate_options);
      saved = load_saved_run(baseline);
    }

    std::vector<std::string> names;
    for (CLI::App* sub : bench->get_subcommands())
      names.push_back(sub->get_name());
    const bool all = names.empty();
    if (all)
      for (const LatencyBench* b : latency_benches())
        names.emplace_back(b->name);

    std::vector<BenchReport> reports;
    for (const std::string& name : names) {
      reports.push_back(run_bench(name, o));
      if (!json) {
        print_table(std::cout, reports.back());
        std::cout << '\n' << std::flush;
      }
    }
    if (json) std::cout << (all ? to_json(reports) : to_json(reports.front())) << '\n';
    write_outputs(outputs, reports, std::cerr);
    if (baseline.empty()) return 0;
    const GateResult g = gate(reports, saved, gate_options);
    print_gate(json ? std::cerr : std::cout, g, gate_options, baseline);
    print_regressions(std::cerr, g, gate_options);
    return g.regressions() == 0 ? 0 : kRegressionExitCode;
  } catch (const moirai::Error& e) {
    std::fprintf(stderr, "moirai: error: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "moirai: error: %s\n", e.what());
    return 1;
  }
}
