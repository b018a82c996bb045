#include "moirai/transport/error.hpp"

namespace moirai::transport {
namespace {

class Category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "moirai.transport"; }
  std::string message(int value) const override {
    switch (static_cast<TransportErrc>(value)) {
      case TransportErrc::closed:
        return "closed";
      case TransportErrc::timeout:
        return "timed out";
      case TransportErrc::connection_refused:
        return "connection refused";
      case TransportErrc::connection_reset:
        return "connection reset";
      case TransportErrc::message_too_large:
        return "message too large";
      case TransportErrc::malformed:
        return "malformed frame";
      case TransportErrc::not_supported:
        return "not supported by this transport";
      case TransportErrc::unreachable:
        return "peer unreachable";
    }
    return "unknown transport error";
  }
};

}  // namespace

const std::error_category& transport_category() noexcept {
  static const Category category;
  return category;
}

}  // namespace moirai::transport
