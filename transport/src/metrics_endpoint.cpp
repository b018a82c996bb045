#include "moirai/transport/metrics_endpoint.hpp"

#include <optional>
#include <span>

#include "moirai/core/clock.hpp"
#include "moirai/core/metrics.hpp"
#include "moirai/core/spawn.hpp"
#include "moirai/transport/error.hpp"

namespace moirai::transport {

namespace {

const char* reason_phrase(int status) noexcept {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    default:
      return "Error";
  }
}

HttpAnswer plain(int status, std::string body) {
  return {status, "text/plain; charset=utf-8", std::move(body)};
}

std::string render(const HttpAnswer& a) {
  std::string out = "HTTP/1.1 " + std::to_string(a.status) + " " + reason_phrase(a.status) +
                    "\r\nContent-Type: " + a.content_type +
                    "\r\nContent-Length: " + std::to_string(a.body.size()) + "\r\nConnection: close\r\n\r\n";
  out += a.body;
  return out;
}

// A request for metrics: which path and method, or the answer that refuses it.
struct MetricsRequest {
  bool json = false;
  bool head_only = false;
  std::optional<HttpAnswer> refused;
};

MetricsRequest parse_request(std::string_view head) {
  MetricsRequest r;
  const std::size_t eol = head.find("\r\n");
  const std::string_view line = head.substr(0, eol);
  const std::size_t sp1 = line.find(' ');
  const std::size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.substr(sp2 + 1).substr(0, 5) != "HTTP/") {
    r.refused = plain(400, "not an HTTP request line: expected 'GET /metrics HTTP/1.1'\n");
    return r;
  }
  const std::string_view method = line.substr(0, sp1);
  std::string_view path = line.substr(sp1 + 1, sp2 - sp1 - 1);
  path = path.substr(0, path.find('?'));  // Prometheus may add query parameters
  if (path != "/metrics" && path != "/metrics.json") {
    r.refused = plain(404, "no such path; try /metrics (Prometheus text) or /metrics.json\n");
  } else if (method != "GET" && method != "HEAD") {
    r.refused = plain(405, "only GET and HEAD are served\n");
  }
  r.json = path == "/metrics.json";
  r.head_only = method == "HEAD";
  return r;
}

HttpAnswer metrics_answer(const MetricsRequest& r, const MetricsSection* extra) {
  HttpAnswer a;
  if (!r.json) {
    a.content_type = "text/plain; version=0.0.4; charset=utf-8";
    a.body = to_prometheus(runtime_metrics());
    if (extra != nullptr) a.body += extra->prometheus;
  } else {
    a.content_type = "application/json";
    a.body = to_json(runtime_metrics());
    if (extra != nullptr && !extra->json_name.empty() && !a.body.empty() && a.body.back() == '}') {
      a.body.pop_back();
      a.body += ",\"" + extra->json_name + "\":" + extra->json + "}";
    }
    a.body += "\n";
  }
  if (r.head_only) a.body.clear();  // Content-Length then says 0, which HEAD allows
  return a;
}

}  // namespace

HttpAnswer answer_metrics_request(std::string_view head, const MetricsSection* extra) {
  MetricsRequest r = parse_request(head);
  if (r.refused) return std::move(*r.refused);
  return metrics_answer(r, extra);
}

Task<HttpAnswer> MetricsEndpoint::answer(std::string_view head) {
  // Every co_await here initialises a named local and every co_return is outside a try block: g++ 12
  // destroys a coroutine's temporaries twice in some other forms (assignment from co_await, co_return
  // inside try).
  if (head.empty())
    co_return plain(431, "request over " + std::to_string(options_.max_request_bytes) + " bytes\n");
  MetricsRequest r = parse_request(head);
  if (r.refused) co_return std::move(*r.refused);
  if (!collector_) co_return metrics_answer(r, nullptr);
  HttpAnswer a;
  try {
    const MetricsSection extra = co_await collector_();
    a = metrics_answer(r, &extra);
  } catch (const TaskCancelled&) {
    throw;
  } catch (const std::exception& e) {
    ++stats_.collector_failed;
    a = plain(500, std::string("the service's metrics collector failed: ") + e.what() + "\n");
  }
  co_return a;
}

Task<void> MetricsEndpoint::serve() {
  try {
    for (;;) {
      StreamSocket s = co_await listener_.accept();
      if (active_ >= options_.max_connections) {
        ++stats_.over_limit;
        continue;  // closes `s`
      }
      spawn_detached(connection(std::move(s), gate_.enter()));
    }
  } catch (const TaskCancelled&) {
  }
  co_await gate_.close();
}

Task<void> MetricsEndpoint::connection(StreamSocket s, Gate::Holder holder) {
  ++active_;
  std::string head;
  std::byte buf[1024];
  const std::int64_t deadline = deadline_after(options_.request_timeout);
  try {
    for (;;) {
      const std::size_t end = head.find("\r\n\r\n");
      if (end != std::string::npos) {
        head.resize(end);
        break;
      }
      if (head.size() > options_.max_request_bytes) {
        head.clear();
        break;
      }
      const std::int64_t left = deadline - monotonic_ns();
      if (left <= 0) throw TransportError(TransportErrc::timeout, "metrics request");
      const std::size_t n = co_await s.recv_some(std::span(buf), Duration(left));
      if (n == 0) throw TransportError(TransportErrc::closed, "metrics request: peer closed");
      head.append(reinterpret_cast<const char*>(buf), n);
    }
    const HttpAnswer a = co_await answer(head);
    if (a.status == 200) {
      ++stats_.served;
    } else if (a.status < 500) {
      ++stats_.rejected;
    }
    const std::string out = render(a);
    co_await s.send_all(std::as_bytes(std::span(out)));
    co_await s.close();
  } catch (const TransportError& e) {
    ++(e.errc() == TransportErrc::timeout ? stats_.timed_out : stats_.failed);
  } catch (const TaskCancelled&) {
  }
  --active_;
  holder.release();
}

}  // namespace moirai::transport
