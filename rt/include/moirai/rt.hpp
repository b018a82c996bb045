// Everything of Moirai's rt module: real-time task constraints and their analysis, thread scheduling
// policies, capabilities. Usable without the rest of Moirai.
#pragma once

#include "moirai/rt/analysis.hpp"
#include "moirai/rt/capabilities.hpp"
#include "moirai/rt/capability_drop.hpp"
#include "moirai/rt/constraints.hpp"
#include "moirai/rt/error.hpp"
#include "moirai/rt/exclusive_cpuset.hpp"
#include "moirai/rt/memory_lock.hpp"
#include "moirai/rt/policy.hpp"
#include "moirai/rt/thread_policy.hpp"
