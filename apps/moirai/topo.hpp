// `moirai topo`: the host's NUMA nodes, the CPUs and memory of each, the distances between them, and the CPUs
// the kernel keeps quiet (isolcpus, nohz_full): what a user needs to choose the CPUs of a runtime.
#pragma once

#include <ostream>
#include <string>

#include "moirai/numa/topology.hpp"

namespace moirai::cli {

// {"nodes": [{"id", "cpus": [...], "memory_bytes", "distances": [...]}], "isolated_cpus": [...],
//  "nohz_full_cpus": [...], "numa_available": bool}. One line, no trailing newline.
std::string topo_json(const numa::Topology& t);

// The same for a person: one line per node, then the distance matrix and the quiet CPUs.
void print_topo(std::ostream& out, const numa::Topology& t);

}  // namespace moirai::cli
