#include "pool_abort.hpp"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>

namespace moirai::numa::detail {

void pool_abort(const char* what, const void* p) noexcept {
  char line[512];
  const int n = std::snprintf(line, sizeof line, "moirai::numa: %s (pointer %p); aborting\n", what, p);
  if (n > 0) {
    const auto len =
        static_cast<std::size_t>(n) < sizeof line ? static_cast<std::size_t>(n) : sizeof line - 1;
    [[maybe_unused]] const ssize_t written = ::write(STDERR_FILENO, line, len);
  }
  std::abort();
}

}  // namespace moirai::numa::detail
