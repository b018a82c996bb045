// Private: the report a checked pool makes before aborting, in the manner of glibc's "double free detected".
#pragma once

namespace moirai::numa::detail {

// Prints "moirai::numa: <what>" and a newline to stderr with one write(2) (no allocation: the heap may be the
// thing that is broken), then aborts.
[[noreturn]] void pool_abort(const char* what, const void* p) noexcept;

}  // namespace moirai::numa::detail
