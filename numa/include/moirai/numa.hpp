// Everything of Moirai's numa module: topology, memory policies, node-local memory and pools. Usable without
// the rest of Moirai.
#pragma once

#include "moirai/numa/cpu_list.hpp"
#include "moirai/numa/current_node.hpp"
#include "moirai/numa/error.hpp"
#include "moirai/numa/memory_policy.hpp"
#include "moirai/numa/node_memory.hpp"
#include "moirai/numa/node_pool.hpp"
#include "moirai/numa/numa_aware_pool.hpp"
#include "moirai/numa/topology.hpp"
