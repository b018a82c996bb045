// Everything of Moirai's io module: the io_uring ring (moirai::io::Ring) and its provided-buffer rings, and
// the readiness loop on epoll (moirai::io::ReadinessLoop) for where io_uring is refused. Usable without the
// rest of Moirai.
#pragma once

#include "moirai/io/buffer_ring.hpp"
#include "moirai/io/completion.hpp"
#include "moirai/io/op.hpp"
#include "moirai/io/readiness_loop.hpp"
#include "moirai/io/ring.hpp"
#include "moirai/io/setup_mode.hpp"
