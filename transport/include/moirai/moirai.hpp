// Everything Moirai offers an application, in one include: the runtime (core), its transports, and the io,
// numa and rt modules beneath them. It lives with transport, the top layer, because it includes every layer.
// Each module's own umbrella (<moirai/core.hpp>, <moirai/transport.hpp>, ...) gives that module alone.
#pragma once

#include "moirai/core.hpp"
#include "moirai/io.hpp"
#include "moirai/numa.hpp"
#include "moirai/rt.hpp"
#include "moirai/transport.hpp"
