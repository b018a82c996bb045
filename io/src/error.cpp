#include "moirai/io/error.hpp"

namespace moirai::io {

const std::error_category& io_category() noexcept {
  static const detail::ErrnoCategory category("moirai.io");
  return category;
}

}  // namespace moirai::io
