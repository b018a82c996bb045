// `moirai bench [NAME]`: runs one latency bench of bench/latency, or all of them in order, prints each report
// (a table, or JSON), writes the files asked for and, with --baseline, gates this run's ratios against a
// saved one.
#include <unistd.h>

#include <iostream>
#include <memory>

#include "bench.hpp"
#include "command.hpp"
#include "gate.hpp"
#include "report_files.hpp"

namespace moirai::cli {
namespace {

// The options as given, before they are turned into BenchOptions.
struct BenchArgs {
  std::uint64_t count = 0;
  double duration_s = 0;
  std::string cpus;
  std::string idle;
  std::uint64_t busy_poll_after_ns = static_cast<std::uint64_t>(RuntimeOptions{}.busy_poll_after.count());
  unsigned inline_io = RuntimeOptions{}.inline_io_per_resumption;
  bool poll_when_idle = true;
  unsigned interval_us = 100;
  bool json = false;
  std::string policy;
  ReportOutputs outputs;
  std::string baseline;
  GateOptions gate_options;
  CapsOptions caps;
  std::string metrics;
};

// How long, where and how the benches run.
void add_run_options(CLI::App& bench, BenchArgs& a) {
  CLI::Option* count_opt = bench.add_option("--count", a.count, "Iterations per measured row");
  CLI::Option* duration_opt =
      bench.add_option("--duration", a.duration_s, "Seconds per measured row (instead of --count)")
          ->check(CLI::PositiveNumber);
  count_opt->excludes(duration_opt);
  bench.add_option("--cpus", a.cpus, "CPUs to use, as A,B (shard 0 on A, shard 1 on B)");
  bench.add_option("--idle", a.idle, "Idle strategy of the shards")
      ->check(CLI::IsMember(idle_strategy_names()));
  bench
      .add_option(
          "--busy-poll-after-ns", a.busy_poll_after_ns,
          "With --idle busy-poll: nanoseconds an idle shard spins in user space before it waits in the "
          "kernel")
      ->capture_default_str()
      ->check(CLI::Range(std::uint64_t{0}, std::uint64_t{1'000'000'000}));
  bench
      .add_option("--inline-io", a.inline_io,
                  "Sends a task may make per resumption as non-blocking syscalls (0: all through the ring)")
      ->capture_default_str()
      ->check(CLI::Range(0u, 1'000'000u));
  bench
      .add_option("--poll-when-idle", a.poll_when_idle,
                  "bench echo: a shard spinning idle reads its waiting sockets itself with non-blocking recv "
                  "(RecvOptions::poll_when_idle)")
      ->capture_default_str();
  bench.add_option("--interval-us", a.interval_us, "Sleep interval of the timer bench, in microseconds")
      ->check(CLI::Range(1u, 10'000'000u));
  bench.add_flag("--json", a.json, "Print JSON instead of tables");
  bench.add_option(
      "--policy", a.policy,
      "Kernel policy of the shards: other[:NICE], fifo:PRIO, rr:PRIO or deadline:RUNTIME/DEADLINE/PERIOD "
      "(microseconds, or with a unit: 200us)");
}

// The files a run writes, and the gate against a saved run.
void add_output_options(CLI::App& bench, BenchArgs& a) {
  bench.add_option(
      "--hgrm", a.outputs.hgrm,
      "Write each row's distribution in HdrHistogram's percentile format, to FILE's stem + .ROW.hgrm");
  bench.add_option("--plot", a.outputs.plot, "Write an SVG of latency by percentile, 50% to 99.999%");
  bench.add_option("--report", a.outputs.report_dir,
                   "Write JSON, SVG plots, hgrm files and summary.md into DIR");
  CLI::Option* baseline_opt = bench.add_option("--baseline", a.baseline,
                                               "Compare each row's ratio to its in-run baseline with a "
                                               "saved `moirai bench --json`; exit 3 on a regression");
  bench
      .add_option("--tolerance", a.gate_options.tolerance_pct,
                  "Percent a ratio may grow before it is a regression")
      ->check(CLI::Range(0.0, 1000.0))
      ->capture_default_str()
      ->needs(baseline_opt);
  bench.add_option("--gate", a.gate_options.figures, "Ratios the gate compares: p50, p99 or p50,p99")
      ->delimiter(',')
      ->capture_default_str()
      ->needs(baseline_opt);
}

BenchOptions bench_options(const BenchArgs& a) {
  BenchOptions o;
  o.budget.count = a.count;
  o.budget.duration = std::chrono::nanoseconds(static_cast<long long>(a.duration_s * 1e9));
  parse_cpus_if_given(a.cpus, o.cpus);
  o.idle = a.idle;
  o.inline_io = a.inline_io;
  o.busy_poll_after = std::chrono::nanoseconds(a.busy_poll_after_ns);
  o.poll_when_idle = a.poll_when_idle;
  o.interval = std::chrono::microseconds(a.interval_us);
  o.policy = a.policy;
  o.metrics = a.metrics;
  o.caps = a.caps;
  o.progress = isatty(STDERR_FILENO) != 0;
  return o;
}

int run_benches(const BenchArgs& a, const CLI::App& bench) {
  const BenchOptions o = bench_options(a);
  // Everything that can be refused is refused before minutes of benches.
  prepare_outputs(a.outputs);
  std::vector<SavedRatios> saved;
  if (!a.baseline.empty()) {
    check_gate_options(a.gate_options);
    saved = load_saved_run(a.baseline);
  }

  std::vector<std::string> names;
  for (const CLI::App* sub : bench.get_subcommands())
    names.push_back(sub->get_name());
  const bool all = names.empty();
  if (all)
    for (const LatencyBench* b : latency_benches())
      names.emplace_back(b->name);

  std::vector<BenchReport> reports;
  for (const std::string& name : names) {
    reports.push_back(run_bench(name, o));
    if (!a.json) {
      print_table(std::cout, reports.back());
      std::cout << '\n' << std::flush;
    }
  }
  if (a.json) std::cout << (all ? to_json(reports) : to_json(reports.front())) << '\n';
  write_outputs(a.outputs, reports, std::cerr);
  if (a.baseline.empty()) return 0;
  const GateResult g = gate(reports, saved, a.gate_options);
  print_gate(a.json ? std::cerr : std::cout, g, a.gate_options, a.baseline);
  print_regressions(std::cerr, g, a.gate_options);
  return g.regressions() == 0 ? 0 : kRegressionExitCode;
}

}  // namespace

Command add_bench_command(CLI::App& moirai) {
  CLI::App* bench = moirai.add_subcommand("bench", "Measure latency distributions against in-run baselines");
  auto args = std::make_shared<BenchArgs>();
  add_run_options(*bench, *args);
  add_output_options(*bench, *args);
  add_caps_options(*bench, args->caps);
  bench->add_option("--metrics", args->metrics,
                    "Serve each bench runtime's metrics over HTTP at HOST:PORT while it runs (GET /metrics)");
  // Every option is the bench command's, so that it may stand before or after the bench's name.
  for (const LatencyBench* b : latency_benches())
    bench->add_subcommand(std::string(b->name), std::string(b->summary))->fallthrough();
  bench->require_subcommand(0, 1);
  return {bench, [args, bench] { return run_benches(*args, *bench); }};
}

}  // namespace moirai::cli
