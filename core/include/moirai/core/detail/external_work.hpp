// Work handed to a shard by a thread that is not a shard (Runtime::submit from a service's main thread).
#pragma once

namespace moirai {
class Shard;
}

namespace moirai::detail {

struct ExternalWork {
  ExternalWork* next = nullptr;
  // Runs on `here`; with `refuse`, or when `here` is stopping, fails the work with Errc::stopped instead.
  virtual void run(Shard& here, bool refuse) noexcept = 0;
  virtual ~ExternalWork() = default;
};

}  // namespace moirai::detail
