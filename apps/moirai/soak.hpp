// `moirai soak`: many sequence-numbered, checksummed messages through each transport (cross-core channels
// one sender and many, TCP, UDP, Unix stream sockets, shared-memory IPC between two processes), every one
// checked on arrival (soak_check.hpp): none lost, none duplicated, each sender's order kept, none corrupt;
// and resident memory flat from the end of a warm-up to the end of the run.
#pragma once

#include <cstddef>
#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "soak_check.hpp"

namespace moirai::cli {

struct SoakOptions {
  std::vector<std::string> transports;  // of soak_transports(); empty: all
  std::uint64_t messages = 1'000'000;   // per transport
  std::uint32_t senders = 4;            // mpsc: sender tasks (the other transports have one sender)
  std::size_t payload = 48;             // bytes per message (a 16-byte frame header comes on top)
  std::vector<int> cpus;                // receiver on the first, senders on the others; empty: all allowed
  bool progress = false;                // a line on stderr as each transport starts
};

struct SoakRow {
  std::string transport;
  std::uint64_t messages = 0;
  std::uint32_t senders = 1;
  std::size_t payload = 0;
  double seconds = 0;
  double per_sec = 0;
  soak::Counts counts;
  // Resident memory (KiB) once a tenth of the messages had arrived, and once the last had; of the receiving
  // process and, for ipc, of the sending one (0 otherwise).
  std::uint64_t rss_start_kb = 0, rss_end_kb = 0;
  std::uint64_t peer_rss_start_kb = 0, peer_rss_end_kb = 0;
  std::uint64_t rss_bound_kb = 0;  // how much either may grow
  std::string failure;             // why the run could not finish ("" when it did)
  bool rss_grew() const noexcept;
  bool passed() const noexcept { return failure.empty() && counts.clean() && !rss_grew(); }
  // What failed, in words ("" when passed).
  std::string violations() const;
};

// The transports `moirai soak` knows, in the order `--transport all` runs them.
const std::vector<std::string>& soak_transports();
// The largest payload `transport` carries in one message.
std::size_t soak_max_payload(const std::string& transport);
// Throws Error(invalid_argument) naming the option and the fix: 0 messages, an unknown transport, a payload
// too small for the check or too large for a transport, more senders than messages or than a channel can
// tell apart.
void check_soak_options(const SoakOptions& o);

// Runs one transport. Setup failures throw (Error, TransportError); a run that breaks off midway gives a row
// with `failure` set.
SoakRow run_soak(const std::string& transport, const SoakOptions& o);

void print_soak(std::ostream& out, const std::vector<SoakRow>& rows);
std::string soak_json(const std::vector<SoakRow>& rows);

// Runs every transport of `o`, prints the rows (a table, or JSON), names each failure on `err`; returns 0
// when every transport passed, 1 when one did not.
int soak_main(const SoakOptions& o, std::ostream& out, std::ostream& err, bool json_out);

}  // namespace moirai::cli
