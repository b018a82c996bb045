#include "moirai/core/error.hpp"

namespace moirai {
namespace {

class Category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "moirai"; }
  std::string message(int value) const override {
    switch (static_cast<Errc>(value)) {
      case Errc::invalid_cpu_set:
        return "invalid CPU set";
      case Errc::no_such_shard:
        return "no such shard";
      case Errc::not_running:
        return "runtime not running";
      case Errc::stopped:
        return "runtime stopped";
      case Errc::not_on_shard:
        return "not called on a shard thread";
      case Errc::cancelled:
        return "task cancelled";
      case Errc::timed_out:
        return "timed out";
      case Errc::setup_failed:
        return "shard set-up failed";
      case Errc::gate_closed:
        return "gate closed";
      case Errc::invalid_argument:
        return "invalid argument";
      case Errc::admission_refused:
        return "admission refused";
    }
    return "unknown moirai error";
  }
  // The table beside Errc (error.hpp).
  std::error_condition default_error_condition(int value) const noexcept override {
    switch (static_cast<Errc>(value)) {
      case Errc::invalid_cpu_set:
      case Errc::no_such_shard:
      case Errc::invalid_argument:
        return std::errc::invalid_argument;
      case Errc::cancelled:
        return std::errc::operation_canceled;
      case Errc::timed_out:
        return std::errc::timed_out;
      case Errc::admission_refused:
        return std::errc::device_or_resource_busy;
      case Errc::not_running:
      case Errc::stopped:
      case Errc::not_on_shard:
      case Errc::setup_failed:
      case Errc::gate_closed:
        break;
    }
    return {value, *this};
  }
};

}  // namespace

const std::error_category& error_category() noexcept {
  static const Category category;
  return category;
}

}  // namespace moirai
