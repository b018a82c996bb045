// Helpers shared by the tests of moirai::core: runtime options for this 2-CPU machine, an object that counts
// its live instances (to prove frames were destroyed), and error-checking helpers. Header-only, test-only.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "moirai/core/error.hpp"
#include "moirai/core/runtime_options.hpp"
#include "moirai/core/task.hpp"
#include "moirai/core/timer.hpp"

namespace moirai_test {

// Two shards on CPUs 0 and 1 (the whole machine). Shards sleep when idle, so no test leaves a CPU spinning.
inline moirai::RuntimeOptions two_shards(moirai::IdleStrategy idle = moirai::IdleStrategy::spin_then_sleep) {
  moirai::RuntimeOptions o;
  o.cpus = {0, 1};
  o.idle = idle;
  o.shutdown_timeout = std::chrono::seconds(3);
  // A test binary run alone runs every test in one process: a runtime that dropped the main thread's
  // capabilities would leave the tests after it without root. The drop has its own tests, in forked children.
  o.drop_capabilities = moirai::CapabilityDrop::off;
  return o;
}

inline moirai::RuntimeOptions one_shard(moirai::IdleStrategy idle = moirai::IdleStrategy::spin_then_sleep) {
  moirai::RuntimeOptions o = two_shards(idle);
  o.cpus = {0};
  return o;
}

// Counts live instances; a frame that holds one and is never destroyed shows up as a non-zero count.
struct Tracked {
  static inline std::atomic<int> live{0};
  Tracked() noexcept { live.fetch_add(1); }
  Tracked(const Tracked&) noexcept { live.fetch_add(1); }
  Tracked(Tracked&&) noexcept { live.fetch_add(1); }
  Tracked& operator=(const Tracked&) = default;
  ~Tracked() { live.fetch_sub(1); }
};

// Runs `f`, expects moirai::Error with `code`, and returns its message for further checks.
template <class F>
std::string error_message(F&& f, moirai::Errc code) {
  try {
    std::forward<F>(f)();
  } catch (const moirai::Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected moirai::Error, got another exception: " << e.what();
    return {};
  }
  ADD_FAILURE() << "no moirai::Error was thrown";
  return {};
}

// Lets every other ready task on this shard run `n` times.
inline moirai::Task<void> yield_n(int n) {
  for (int i = 0; i < n; ++i)
    co_await moirai::yield();
}

// A one-shot flag a task can wait for by polling. The tests of spawn, submit, timers, io and shutdown use it
// instead of moirai::Event so that they do not depend on sync.hpp (tested on its own in sync_test.cpp).
struct Signal {
  std::atomic<bool> on{false};
  void set() noexcept { on.store(true, std::memory_order_release); }
  bool is_set() const noexcept { return on.load(std::memory_order_acquire); }
};
inline moirai::Task<void> wait_for(const Signal* s) {
  while (!s->is_set())
    co_await moirai::sleep_for(std::chrono::microseconds(20));
}

// A pipe for io tests: reads on an empty pipe stay pending until written or cancelled.
struct Pipe {
  int r = -1, w = -1;
  Pipe() {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
    r = fds[0];
    w = fds[1];
  }
  Pipe(const Pipe&) = delete;
  Pipe& operator=(const Pipe&) = delete;
  ~Pipe() {
    close_write();
    if (r >= 0) close(r);
  }
  void close_write() {
    if (w >= 0) close(w);
    w = -1;
  }
  // True when a byte waits to be read (nothing consumed it).
  bool readable() const {
    pollfd p{r, POLLIN, 0};
    return ::poll(&p, 1, 0) == 1 && (p.revents & POLLIN) != 0;
  }
};

}  // namespace moirai_test
