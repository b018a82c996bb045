#include "moirai/transport/metrics_endpoint.hpp"

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

}  // namespace

HttpAnswer answer_metrics_request(std::string_view head) {
  const std::size_t eol = head.find("\r\n");
  const std::string_view line = head.substr(0, eol);
  const std::size_t sp1 = line.find(' ');
  const std::size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.substr(sp2 + 1).substr(0, 5) != "HTTP/")
    return plain(400, "not an HTTP request line: expected 'GET /metrics HTTP/1.1'\n");
  const std::string_view method = line.substr(0, sp1);
  std::string_view path = line.substr(sp1 + 1, sp2 - sp1 - 1);
  path = path.substr(0, path.find('?'));  // Prometheus may add query parameters
  if (path != "/metrics" && path != "/metrics.json")
    return plain(404, "no such path; try /metrics (Prometheus text) or /metrics.json\n");
  if (method != "GET" && method != "HEAD") return plain(405, "only GET and HEAD are served\n");
  HttpAnswer a;
  if (path == "/metrics") {
    a.content_type = "text/plain; version=0.0.4; charset=utf-8";
    a.body = to_prometheus(runtime_metrics());
  } else {
    a.content_type = "application/json";
    a.body = to_json(runtime_metrics()) + "\n";
  }
  if (method == "HEAD") a.body.clear();  // Content-Length then says 0, which HEAD allows
  return a;
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
    const HttpAnswer a =
        head.empty() ? plain(431, "request over " + std::to_string(options_.max_request_bytes) + " bytes\n")
                     : answer_metrics_request(head);
    ++(a.status == 200 ? stats_.served : stats_.rejected);
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
