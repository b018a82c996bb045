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
      case TransportErrc::invalid_argument:
        return "invalid argument";
    }
    return "unknown transport error";
  }
  // The table beside TransportErrc (error.hpp).
  std::error_condition default_error_condition(int value) const noexcept override {
    switch (static_cast<TransportErrc>(value)) {
      case TransportErrc::timeout:
        return std::errc::timed_out;
      case TransportErrc::connection_refused:
        return std::errc::connection_refused;
      case TransportErrc::connection_reset:
        return std::errc::connection_reset;
      case TransportErrc::message_too_large:
        return std::errc::message_size;
      case TransportErrc::malformed:
        return std::errc::bad_message;
      case TransportErrc::not_supported:
        return std::errc::not_supported;
      case TransportErrc::unreachable:
        return std::errc::network_unreachable;
      case TransportErrc::invalid_argument:
        return std::errc::invalid_argument;
      case TransportErrc::closed:
        break;
    }
    return {value, *this};
  }
};

}  // namespace

const std::error_category& transport_category() noexcept {
  static const Category category;
  return category;
}

}  // namespace moirai::transport
