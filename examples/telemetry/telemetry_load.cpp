#include "telemetry_load.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdlib>

#include "moirai/core/clock.hpp"
#include "moirai/core/error.hpp"
#include "moirai/core/pacer.hpp"
#include "moirai/core/spawn.hpp"
#include "moirai/core/sync.hpp"
#include "moirai/transport/error.hpp"
#include "moirai/transport/framed_stream.hpp"
#include "sample.hpp"

namespace moirai::examples::telemetry {

using transport::SocketAddress;
using transport::TransportErrc;
using transport::TransportError;

namespace {}  // namespace

void validate(const LoadOptions& o) {
  auto bad = [](const std::string& what) { throw Error(Errc::invalid_argument, "telemetry load: " + what); };
  if (!(o.rate > 0) || !std::isfinite(o.rate)) bad("rate " + std::to_string(o.rate) + " must be above 0");
  if (o.connections == 0) bad("connections 0: give at least 1");
  if (o.batch == 0 || o.batch > kMaxSamplesPerBatch)
    bad("batch " + std::to_string(o.batch) + ": give 1 to " + std::to_string(kMaxSamplesPerBatch) +
        " samples");
  if (o.keys == 0) bad("keys 0: give at least 1");
  if (o.window == 0) bad("window 0: give at least 1 batch");
  if (o.duration <= Duration::zero()) bad("duration must be above 0");
  if (!valid_key(o.prefix + ".k" + std::to_string(o.keys - 1))) {
    bad("prefix '" + o.prefix + "' makes keys that are not valid: up to " + std::to_string(kMaxKeySize) +
        " letters, digits and _.:/- in all");
  }
}

namespace {

// One client connection: batches sent and not yet acked, oldest first, with their intended send times.
struct Client {
  explicit Client(transport::FramedStream s, unsigned window)
      : stream(std::move(s)), in_flight(window), room(window) {}
  transport::FramedStream stream;
  std::vector<std::pair<std::uint64_t, std::int64_t>> in_flight;  // ring: batch id, intended_ns
  std::size_t head = 0, size = 0;
  Semaphore room;  // free places in the window
};

// Reads acks until the stream ends: each must be for the oldest batch in flight.
Task<void> read_acks(Client& c, LoadResult& r, std::uint32_t batch) {
  try {
    for (;;) {
      transport::Frame f = co_await c.stream.recv();
      Ack a;
      if (f.header.type != kAckFrameType || !read_ack(f.payload, a) || c.size == 0 ||
          c.in_flight[c.head].first != a.batch || a.accepted + a.rejected != batch) {
        throw TransportError(TransportErrc::malformed, "telemetry load: an ack for no batch in flight");
      }
      const std::int64_t intended = c.in_flight[c.head].second;
      c.head = (c.head + 1) % c.in_flight.size();
      --c.size;
      c.room.release();
      const std::int64_t now = monotonic_ns();
      r.sample_to_aggregate->record_n(
          static_cast<std::uint64_t>(std::max<std::int64_t>(a.aggregated_ns - intended, 0)), batch);
      r.sample_to_ack->record_n(static_cast<std::uint64_t>(std::max<std::int64_t>(now - intended, 0)), batch);
      ++r.acked_batches;
      r.accepted += a.accepted;
      r.rejected += a.rejected;
    }
  } catch (const TransportError& e) {
    if (e.errc() != TransportErrc::closed && r.failure.empty()) r.failure = e.what();
  }
}

}  // namespace

std::vector<std::string> load_keys(const std::string& prefix, unsigned keys) {
  std::vector<std::string> out;
  for (unsigned k = 0; k < keys; ++k)
    out.push_back(prefix + ".k" + std::to_string(k));
  return out;
}

Task<LoadResult> run_load(LoadOptions o) {
  validate(o);
  const SocketAddress to = SocketAddress::parse(o.to);
  LoadResult r;
  std::vector<std::unique_ptr<Client>> clients;
  for (unsigned i = 0; i < o.connections; ++i) {
    transport::StreamSocket s =
        co_await transport::StreamSocket::connect(to, std::chrono::seconds(1), transport::RetryPolicy{20});
    clients.push_back(std::make_unique<Client>(
        transport::FramedStream(std::move(s), transport::EndpointId{0, 0, static_cast<std::uint16_t>(i)}),
        o.window));
  }
  std::vector<TaskHandle<void>> readers;
  for (auto& c : clients)
    readers.push_back(spawn(read_acks(*c, r, o.batch)));

  const std::vector<std::string> keys = load_keys(o.prefix, o.keys);
  std::vector<Aggregate> expected(o.keys);
  for (unsigned k = 0; k < o.keys; ++k)
    expected[k].kind = load_kind(k);

  std::vector<Sample> samples(o.batch);
  std::vector<std::byte> out(batch_size(o.batch));
  const double step_ns = 1e9 * o.batch / o.rate;
  r.started_ns = monotonic_ns();
  const std::int64_t end_ns =
      r.started_ns + std::chrono::duration_cast<std::chrono::nanoseconds>(o.duration).count();
  WakeMargin margin;
  std::uint64_t n = 0;  // samples made so far: sample n is for key n % keys
  for (std::uint64_t step = 0; r.failure.empty(); ++step) {
    const auto intended = r.started_ns + static_cast<std::int64_t>(static_cast<double>(step) * step_ns);
    if (intended >= end_ns) break;
    co_await pace_until(intended, margin);
    Client& c = *clients[step % clients.size()];
    if (!c.room.try_acquire()) {
      ++r.window_full;
      co_await c.room.acquire();
    }
    if (monotonic_ns() > intended + static_cast<std::int64_t>(step_ns)) ++r.behind;
    for (unsigned i = 0; i < o.batch; ++i, ++n) {
      const std::size_t k = n % o.keys;
      const double v = load_value(n, expected[k].kind);
      make_sample(keys[k], expected[k].kind, v, intended, samples[i]);
      expected[k].add(v, intended);
    }
    const std::uint64_t id = step;
    c.in_flight[(c.head + c.size) % c.in_flight.size()] = {id, intended};
    ++c.size;
    write_batch(id, samples, out);
    try {
      co_await c.stream.send(kBatchFrameType, out);
    } catch (const TransportError& e) {
      r.failure = e.what();
    }
    ++r.batches;
    r.samples += o.batch;
  }
  r.ended_ns = monotonic_ns();
  // The last acks, then a clean close.
  const std::int64_t give_up = deadline_after(o.ack_wait);
  while (r.acked_batches < r.batches && r.failure.empty() && monotonic_ns() < give_up)
    co_await sleep_for(std::chrono::milliseconds(1));
  if (r.acked_batches < r.batches && r.failure.empty()) {
    r.failure = std::to_string(r.batches - r.acked_batches) + " of " + std::to_string(r.batches) +
                " batches were not acked within the ack wait";
  }
  for (auto& t : readers) {
    t.cancel();
    try {
      co_await t.join();
    } catch (const TaskCancelled&) {
    }
  }
  for (auto& c : clients) {
    try {
      co_await c->stream.close();
    } catch (const TransportError&) {
    }
  }
  for (unsigned k = 0; k < o.keys; ++k) {
    if (expected[k].count != 0) r.expected.push_back({keys[k], expected[k]});
  }
  std::sort(r.expected.begin(), r.expected.end(),
            [](const KeyAggregate& a, const KeyAggregate& b) { return a.key < b.key; });
  co_return r;
}

Task<std::string> http_get(SocketAddress at, std::string path) {
  transport::StreamSocket s = co_await transport::StreamSocket::connect(at, std::chrono::seconds(2));
  const std::string request = "GET " + path + " HTTP/1.1\r\nHost: moirai\r\nConnection: close\r\n\r\n";
  co_await s.send_all(std::as_bytes(std::span(request)));
  std::string got;
  std::array<std::byte, 16384> buf;
  for (;;) {
    const std::size_t k = co_await s.recv_some(std::span(buf), std::chrono::seconds(5));
    if (k == 0) break;
    got.append(reinterpret_cast<const char*>(buf.data()), k);
  }
  const std::size_t end = got.find("\r\n\r\n");
  const std::string status = got.substr(0, got.find("\r\n"));
  if (end == std::string::npos || status.rfind("HTTP/1.1 200", 0) != 0) {
    throw TransportError(TransportErrc::malformed, "GET " + path + " from " + at.to_string() + ": '" +
                                                       status + "'" +
                                                       got.substr(end == std::string::npos ? 0 : end));
  }
  co_return got.substr(end + 4);
}

std::vector<KeyAggregate> parse_scrape(const std::string& text) {
  std::vector<KeyAggregate> out;
  auto find = [&](const std::string& key, Kind kind) -> Aggregate& {
    for (KeyAggregate& k : out) {
      if (k.key == key && k.value.kind == kind) return k.value;
    }
    out.push_back({key, {}});
    out.back().value.kind = kind;
    return out.back().value;
  };
  std::size_t pos = 0;
  while (pos < text.size()) {
    const std::size_t eol = std::min(text.find('\n', pos), text.size());
    const std::string line = text.substr(pos, eol - pos);
    pos = eol + 1;
    const bool count = line.rfind("moirai_telemetry_samples_total{key=\"", 0) == 0;
    const bool sum = line.rfind("moirai_telemetry_sum{key=\"", 0) == 0;
    if (!count && !sum) continue;
    auto bad = [&] {
      throw Error(Errc::invalid_argument, "telemetry scrape: cannot read line '" + line + "'");
    };
    const std::size_t k0 = line.find('"') + 1;
    const std::size_t k1 = line.find('"', k0);
    const std::size_t kind0 = line.find("kind=\"", k1);
    const std::size_t close = line.find("} ", k1);
    if (k1 == std::string::npos || kind0 == std::string::npos || close == std::string::npos) bad();
    const std::string kind = line.substr(kind0 + 6, line.find('"', kind0 + 6) - kind0 - 6);
    if (kind != "counter" && kind != "gauge") bad();
    const char* v = line.c_str() + close + 2;
    char* v_end = nullptr;
    const double value = std::strtod(v, &v_end);
    if (v_end == v || *v_end != '\0') bad();
    Aggregate& a = find(line.substr(k0, k1 - k0), kind == "counter" ? Kind::counter : Kind::gauge);
    if (count) {
      a.count = static_cast<std::uint64_t>(value);
    } else {
      a.sum = value;
    }
  }
  std::sort(out.begin(), out.end(),
            [](const KeyAggregate& a, const KeyAggregate& b) { return a.key < b.key; });
  return out;
}

std::string check_scrape(const std::vector<KeyAggregate>& expected,
                         const std::vector<KeyAggregate>& scraped) {
  std::string diff;
  unsigned shown = 0;
  for (const KeyAggregate& e : expected) {
    const auto it = std::find_if(scraped.begin(), scraped.end(), [&](const KeyAggregate& s) {
      return s.key == e.key && s.value.kind == e.value.kind;
    });
    std::string what;
    if (it == scraped.end()) {
      what = e.key + ": missing";
    } else if (it->value.count != e.value.count || it->value.sum != e.value.sum) {
      what = e.key + ": count " + std::to_string(it->value.count) + " sum " + std::to_string(it->value.sum) +
             ", expected " + std::to_string(e.value.count) + " and " + std::to_string(e.value.sum);
    }
    if (what.empty()) continue;
    if (shown++ < 3) diff += (diff.empty() ? "" : "; ") + what;
  }
  if (shown > 3) diff += "; and " + std::to_string(shown - 3) + " more keys";
  return diff;
}

}  // namespace moirai::examples::telemetry
