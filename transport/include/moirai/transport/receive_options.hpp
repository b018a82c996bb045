// The former name of RecvOptions (recv_options.hpp), kept so that code written against it still compiles,
// with a warning that says what to write instead.
#pragma once

#include "moirai/transport/recv_options.hpp"

namespace moirai::transport {

using ReceiveOptions [[deprecated("use RecvOptions, from <moirai/transport/recv_options.hpp>")]] =
    RecvOptions;

}  // namespace moirai::transport
