#include "moirai/rt/error.hpp"

namespace moirai::rt {

const std::error_category& rt_category() noexcept {
  static const detail::ErrnoCategory category("moirai.rt");
  return category;
}

}  // namespace moirai::rt
