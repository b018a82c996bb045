#include "topo.hpp"

#include <cstdio>

#include "json_writer.hpp"
#include "moirai/core/cpu_set.hpp"

namespace moirai::cli {

std::string topo_json(const numa::Topology& t) {
  using namespace json;
  std::string out = "{";
  append_key(out, "nodes");
  out += '[';
  bool first = true;
  for (const numa::NodeInfo& n : t.nodes()) {
    if (!first) out += ',';
    first = false;
    out += '{';
    append_key(out, "id");
    append_number(out, static_cast<std::uint64_t>(n.id));
    out += ',';
    append_key(out, "cpus");
    append_array(out, n.cpus);
    out += ',';
    append_key(out, "memory_bytes");
    append_number(out, n.memory_bytes);
    out += ',';
    append_key(out, "distances");
    append_array(out, n.distances);
    out += '}';
  }
  out += "],";
  append_key(out, "isolated_cpus");
  append_array(out, t.isolated_cpus());
  out += ',';
  append_key(out, "nohz_full_cpus");
  append_array(out, t.nohz_full_cpus());
  out += ',';
  append_key(out, "numa_available");
  out += t.numa_available() ? "true" : "false";
  out += '}';
  return out;
}

namespace {

std::string gib(std::uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f GiB", static_cast<double>(bytes) / (1024.0 * 1024 * 1024));
  return buf;
}

std::string cpus_or_none(const std::vector<int>& cpus) {
  return cpus.empty() ? std::string("none") : format_cpu_list(cpus);
}

}  // namespace

void print_topo(std::ostream& out, const numa::Topology& t) {
  out << t.nodes().size() << (t.nodes().size() == 1 ? " NUMA node" : " NUMA nodes");
  if (!t.numa_available()) out << " (the kernel offers no NUMA support here: one node holds everything)";
  out << '\n';
  for (const numa::NodeInfo& n : t.nodes()) {
    out << "node " << n.id << ": cpus " << cpus_or_none(n.cpus) << ", memory " << gib(n.memory_bytes) << '\n';
  }
  if (t.nodes().size() > 1) {
    out << "distances:\n      ";
    for (const numa::NodeInfo& n : t.nodes()) {
      char cell[16];
      std::snprintf(cell, sizeof cell, "%6d", n.id);
      out << cell;
    }
    out << '\n';
    for (const numa::NodeInfo& n : t.nodes()) {
      char cell[16];
      std::snprintf(cell, sizeof cell, "%6d", n.id);
      out << cell;
      for (int d : n.distances) {
        std::snprintf(cell, sizeof cell, "%6d", d);
        out << cell;
      }
      out << '\n';
    }
  }
  out << "isolated cpus: " << cpus_or_none(t.isolated_cpus()) << '\n';
  out << "nohz_full cpus: " << cpus_or_none(t.nohz_full_cpus()) << '\n';
}

}  // namespace moirai::cli
