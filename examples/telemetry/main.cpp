// telemetry: the example telemetry collector as a program, and its load, for runs across hosts:
//   telemetry serve --listen 0.0.0.0:30003 --metrics 0.0.0.0:9102 --cpus 2,3 --seconds 60
//   telemetry load --to HOST:30003 --metrics HOST:9102 --rate 200000 --connections 16 --seconds 5 [--json]
// Global options before the subcommand: --policy fifo:50, --idle spin. `serve` runs a shard per CPU of
// --cpus; `load` runs on the one shard of --cpu. load prints throughput and sample-to-aggregate and
// sample-to-ack percentiles in ns, measured from each sample's intended send time; given --metrics it then
// scrapes the collector and checks that every sample it had acked is there (exit 1 if not; 2 for bad
// options or set-up errors). (`moirai demo telemetry` runs both on this host.)
#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>

#include "collector.hpp"
#include "moirai/core/cpu_set.hpp"
#include "moirai/core/runtime.hpp"
#include "moirai/core/spawn.hpp"
#include "telemetry_load.hpp"

using namespace moirai;
using namespace moirai::examples::telemetry;

namespace {

std::string g_policy;  // --policy, for every subcommand's shards
std::string g_idle;

RuntimeOptions shards_on(const std::string& cpus, bool one) {
  RuntimeOptions ro;
  if (!g_policy.empty()) ro.thread_policy = rt::ThreadPolicy::parse(g_policy);
  if (!g_idle.empty()) ro.idle = parse_idle_strategy(g_idle);
  if (!cpus.empty()) ro.cpus = parse_cpu_list(cpus);
  if (ro.cpus.empty()) ro.cpus = {current_thread_affinity().front()};
  if (one && ro.cpus.size() > 1) ro.cpus = {ro.cpus.front()};
  return ro;
}

Duration seconds(double s) {
  return std::chrono::nanoseconds(static_cast<std::int64_t>(s * 1e9));
}

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string percentiles_json(const LatencyHistogram& h) {
  return "{\"count\":" + std::to_string(h.count()) + ",\"p50\":" + std::to_string(h.percentile(50)) +
         ",\"p90\":" + std::to_string(h.percentile(90)) + ",\"p99\":" + std::to_string(h.percentile(99)) +
         ",\"p999\":" + std::to_string(h.percentile(99.9)) + ",\"max\":" + std::to_string(h.max()) + "}";
}

int serve(const CollectorOptions& co, double for_seconds, const std::string& cpus) {
  Runtime rt(shards_on(cpus, false));
  CollectorSnapshot snap;
  rt.run([&]() -> Task<void> {
    Collector c(co);
    auto serving = spawn(c.run());
    co_await c.ready();
    std::cout << "telemetry: ingest " << c.ingest_address().to_string() << " on "
              << this_shard().shard_count() << " shards";
    if (!co.metrics.empty())
      std::cout << ", metrics http://" << c.metrics_address().to_string() << "/metrics";
    std::cout << std::endl;
    co_await sleep_for(seconds(for_seconds));
    CollectorSnapshot got = co_await c.snapshot();  // named: g++ 12 mishandles assignment from co_await
    snap = std::move(got);
    c.stop();
    co_await serving.join();
  });
  const ShardCollectorStats t = snap.total();
  std::cout << "telemetry: connections " << t.server.accepted << " batches " << t.batches << " samples "
            << t.samples << " rejected " << t.rejected() << " malformed_batches " << t.malformed_batches
            << " keys " << snap.keys.size() << " sample_to_aggregate_ns p50 "
            << snap.sample_to_aggregate->percentile(50) << " p99 " << snap.sample_to_aggregate->percentile(99)
            << '\n';
  return 0;
}

int load(const LoadOptions& lo, const std::string& metrics, const std::string& cpu, bool json) {
  Runtime rt(shards_on(cpu, true));
  LoadResult r;
  std::string check = "not checked (no --metrics)";
  rt.run([&]() -> Task<void> {
    LoadResult got = co_await run_load(lo);  // named: g++ 12 mishandles assignment from co_await
    r = std::move(got);
    if (!metrics.empty()) {
      const transport::SocketAddress endpoint = transport::SocketAddress::parse(metrics);
      const std::string path = "/metrics";  // named: g++ 12 mishandles owning temporaries in a co_await
      const std::string text = co_await http_get(endpoint, path);
      check = check_scrape(r.expected, parse_scrape(text));
    }
  });
  const double per_sec = r.seconds() > 0 ? static_cast<double>(r.accepted) / r.seconds() : 0;
  if (json) {
    std::cout << "{\"samples\":" << r.samples << ",\"accepted\":" << r.accepted
              << ",\"rejected\":" << r.rejected << ",\"batches\":" << r.batches
              << ",\"acked_batches\":" << r.acked_batches << ",\"behind\":" << r.behind
              << ",\"window_full\":" << r.window_full << ",\"seconds\":" << r.seconds()
              << ",\"per_sec\":" << per_sec
              << ",\"sample_to_aggregate_ns\":" << percentiles_json(*r.sample_to_aggregate)
              << ",\"sample_to_ack_ns\":" << percentiles_json(*r.sample_to_ack)
              << ",\"scrape_check\":" << json_string(check.empty() ? "ok" : check)
              << ",\"failure\":" << json_string(r.failure) << "}\n";
  } else {
    std::cout << "telemetry: samples " << r.samples << " accepted " << r.accepted << " rejected "
              << r.rejected << " in " << r.seconds() << " s (" << per_sec << "/s), behind " << r.behind
              << " window_full " << r.window_full << "\ntelemetry: sample_to_aggregate_ns p50 "
              << r.sample_to_aggregate->percentile(50) << " p99 " << r.sample_to_aggregate->percentile(99)
              << " p99.9 " << r.sample_to_aggregate->percentile(99.9) << " max "
              << r.sample_to_aggregate->max() << "\ntelemetry: sample_to_ack_ns p50 "
              << r.sample_to_ack->percentile(50) << " p99 " << r.sample_to_ack->percentile(99) << " max "
              << r.sample_to_ack->max() << "\ntelemetry: scrape "
              << (check.empty() ? "ok: every acked sample is in the aggregates" : check)
              << (r.failure.empty() ? "" : "\ntelemetry: failure: ") << r.failure << '\n';
  }
  const bool ok =
      r.failure.empty() && r.rejected == 0 && r.accepted == r.samples && (metrics.empty() || check.empty());
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"telemetry: a Moirai telemetry collector and its load"};
  app.require_subcommand(1);
  app.add_option("--policy", g_policy,
                 "Kernel policy of the shards: other[:NICE], fifo:PRIO, rr:PRIO, deadline:R/D/P");
  app.add_option("--idle", g_idle, "Idle strategy: spin, sleep, spin-then-sleep or busy-poll");

  CollectorOptions co;
  std::string cpus;
  double for_seconds = 60;
  CLI::App* serve_cmd = app.add_subcommand("serve", "Aggregate pushed samples and serve them over HTTP");
  serve_cmd->add_option("--listen", co.listen, "Where clients push (TCP; default loopback)");
  serve_cmd->add_option("--metrics", co.metrics, "The metrics endpoint (GET /metrics, /metrics.json)");
  serve_cmd->add_option("--cpus", cpus, "CPUs, one shard each (default: the first this process may use)");
  serve_cmd->add_option("--max-keys", co.max_keys, "Distinct keys per shard")->check(CLI::PositiveNumber);
  serve_cmd->add_option("--seconds", for_seconds, "How long to serve")->check(CLI::PositiveNumber);

  LoadOptions lo;
  std::string metrics, cpu;
  double load_seconds = 5;
  bool json = false;
  CLI::App* load_cmd = app.add_subcommand("load", "Push samples at a fixed rate and measure");
  load_cmd->add_option("--to", lo.to, "The collector's ingest address")->required();
  load_cmd->add_option("--metrics", metrics, "The collector's metrics endpoint, to check the aggregates");
  load_cmd->add_option("--rate", lo.rate, "Samples per second")->check(CLI::PositiveNumber);
  load_cmd->add_option("--connections", lo.connections, "Client connections")->check(CLI::PositiveNumber);
  load_cmd->add_option("--batch", lo.batch, "Samples per batch");
  load_cmd->add_option("--keys", lo.keys, "Distinct keys")->check(CLI::PositiveNumber);
  load_cmd->add_option("--prefix", lo.prefix, "Key prefix (keys are PREFIX.kN)");
  load_cmd->add_option("--window", lo.window, "Batches in flight per connection")->check(CLI::PositiveNumber);
  load_cmd->add_option("--seconds", load_seconds, "How long to send")->check(CLI::PositiveNumber);
  load_cmd->add_option("--cpu", cpu, "CPU of the load's shard");
  load_cmd->add_flag("--json", json, "Print one JSON object");

  CLI11_PARSE(app, argc, argv);
  try {
    if (serve_cmd->parsed()) return serve(co, for_seconds, cpus);
    lo.duration = seconds(load_seconds);
    return load(lo, metrics, cpu, json);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "telemetry: error: %s\n", e.what());
    return 2;
  }
}
