#include "moirai/numa/error.hpp"

namespace moirai::numa {

const std::error_category& numa_category() noexcept {
  static const detail::ErrnoCategory category("moirai.numa");
  return category;
}

}  // namespace moirai::numa
