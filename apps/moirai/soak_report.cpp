// What `moirai soak` says of a run: whether a row passed and why not, as a table or as JSON.
#include <cstdio>
#include <iomanip>

#include "json_writer.hpp"
#include "soak.hpp"

namespace moirai::cli {
namespace {

std::string format_fixed(double v, int decimals) {
  char text[64];
  std::snprintf(text, sizeof text, "%.*f", decimals, v);
  return text;
}

}  // namespace

bool SoakRow::rss_grew() const noexcept {
  return rss_end_kb > rss_start_kb + rss_bound_kb || peer_rss_end_kb > peer_rss_start_kb + rss_bound_kb;
}

std::string SoakRow::violations() const {
  std::string out = counts.violations();
  auto add = [&out](const std::string& what) {
    if (!out.empty()) out += "; ";
    out += what;
  };
  if (counts.received + counts.lost != counts.expected) add("counts disagree");
  if (rss_end_kb > rss_start_kb + rss_bound_kb) {
    add("resident memory grew " + std::to_string(rss_end_kb - rss_start_kb) + " KiB (bound " +
        std::to_string(rss_bound_kb) + ")");
  }
  if (peer_rss_end_kb > peer_rss_start_kb + rss_bound_kb) {
    add("the sending process's resident memory grew " + std::to_string(peer_rss_end_kb - peer_rss_start_kb) +
        " KiB (bound " + std::to_string(rss_bound_kb) + ")");
  }
  if (!failure.empty()) add("stopped: " + failure);
  return out;
}

void print_soak(std::ostream& out, const std::vector<SoakRow>& rows) {
  out << std::left << std::setw(9) << "transport" << std::right << std::setw(11) << "messages" << std::setw(9)
      << "seconds" << std::setw(12) << "msgs/s" << std::setw(8) << "lost" << std::setw(8) << "dup"
      << std::setw(8) << "reorder" << std::setw(8) << "corrupt" << std::setw(11) << "rss_start"
      << std::setw(10) << "rss_end"
      << "  result\n";
  for (const SoakRow& r : rows) {
    out << std::left << std::setw(9) << r.transport << std::right << std::setw(11) << r.messages
        << std::setw(9) << format_fixed(r.seconds, 2) << std::setw(12) << format_fixed(r.per_sec, 0)
        << std::setw(8) << r.counts.lost << std::setw(8) << r.counts.duplicated << std::setw(8)
        << r.counts.reordered << std::setw(8) << r.counts.corrupt << std::setw(8) << r.rss_start_kb << " KiB"
        << std::setw(7) << r.rss_end_kb << " KiB"
        << "  " << (r.passed() ? "pass" : "FAIL: " + r.violations()) << '\n';
    if (r.peer_rss_start_kb != 0 || r.peer_rss_end_kb != 0) {
      out << std::left << std::setw(9) << ""
          << "  sending process: rss_start " << r.peer_rss_start_kb << " KiB, rss_end " << r.peer_rss_end_kb
          << " KiB\n";
    }
  }
  if (!rows.empty()) {
    out << "payload " << rows.front().payload
        << " bytes; resident memory from a tenth of the messages to the end may grow by at most 1 MiB or 2%, "
           "whichever is more\n";
  }
}

std::string soak_json(const std::vector<SoakRow>& rows) {
  std::string out = "{\"soak\":[";
  bool all = true;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const SoakRow& r = rows[i];
    all = all && r.passed();
    if (i != 0) out += ',';
    out += '{';
    auto num = [&out](const char* key, auto v, bool comma = true) {
      json::append_key(out, key);
      json::append_number(out, v);
      if (comma) out += ',';
    };
    json::append_key(out, "transport");
    json::append_string(out, r.transport);
    out += ',';
    num("messages", r.messages);
    num("senders", std::uint64_t{r.senders});
    num("payload", std::uint64_t{r.payload});
    num("seconds", r.seconds);
    num("msgs_per_sec", r.per_sec);
    num("received", r.counts.received);
    num("lost", r.counts.lost);
    num("duplicated", r.counts.duplicated);
    num("reordered", r.counts.reordered);
    num("corrupt", r.counts.corrupt);
    num("rss_start_kb", r.rss_start_kb);
    num("rss_end_kb", r.rss_end_kb);
    num("peer_rss_start_kb", r.peer_rss_start_kb);
    num("peer_rss_end_kb", r.peer_rss_end_kb);
    num("rss_bound_kb", r.rss_bound_kb);
    json::append_key(out, "pass");
    out += r.passed() ? "true," : "false,";
    json::append_key(out, "violations");
    json::append_string(out, r.violations());
    out += '}';
  }
  out += "],";
  json::append_key(out, "pass");
  out += all ? "true}" : "false}";
  return out;
}

}  // namespace moirai::cli
