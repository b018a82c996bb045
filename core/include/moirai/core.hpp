// Everything of Moirai's core: the Runtime and its shards, tasks, spawning, cross-core calls, timers,
// synchronization, io awaitables on the shard's ring, metrics.
#pragma once

#include "moirai/core/clock.hpp"
#include "moirai/core/cpu_relax.hpp"
#include "moirai/core/cpu_set.hpp"
#include "moirai/core/error.hpp"
#include "moirai/core/histogram.hpp"
#include "moirai/core/io.hpp"
#include "moirai/core/metrics.hpp"
#include "moirai/core/pacer.hpp"
#include "moirai/core/periodic.hpp"
#include "moirai/core/runtime.hpp"
#include "moirai/core/runtime_options.hpp"
#include "moirai/core/shard.hpp"
#include "moirai/core/shard_memory.hpp"
#include "moirai/core/spawn.hpp"
#include "moirai/core/submit.hpp"
#include "moirai/core/sync.hpp"
#include "moirai/core/task.hpp"
#include "moirai/core/task_context.hpp"
#include "moirai/core/timer.hpp"
