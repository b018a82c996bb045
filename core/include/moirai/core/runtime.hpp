// The Runtime: one shard per CPU, each a pinned thread with its own ring, memory, run queue and timers.
//
// Two ways in. run(main) makes the calling thread shard 0, runs `main` as a task there and returns its value
// when it ends (after every shard has shut down). start()/stop() run every shard on threads of their own, for
// a service that keeps its main thread; submit() hands work to a shard from such a thread.
#pragma once

#include <atomic>
#include <coroutine>
#include <cstdint>
#include <exception>
#include <future>
#include <memory>
#include <optional>
#include <thread>
#include <type_traits>
#include <vector>

#include "moirai/core/detail/external_work.hpp"
#include "moirai/core/error.hpp"
#include "moirai/core/runtime_options.hpp"
#include "moirai/core/shard.hpp"
#include "moirai/core/task.hpp"

namespace moirai {

struct ShardStats;
struct ShardMemory;
struct RuntimeMetrics;
namespace detail {
struct RuntimeState;
}  // namespace detail

class Runtime {
 public:
  // Validates the options (CPU list against the machine and the affinity mask); throws Error naming the
  // problem.
  explicit Runtime(RuntimeOptions options = {});
  ~Runtime();  // stops and joins if still running
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  unsigned shard_count() const noexcept;
  const std::vector<int>& cpus() const noexcept;
  const RuntimeOptions& options() const noexcept;
  bool running() const noexcept { return phase_.load(std::memory_order_acquire) == kRunning; }

  // Runs `main` (a Task<T>, or a callable returning one, which is then called on shard 0 so its frame comes
  // from shard memory) on the calling thread as shard 0; returns its value or rethrows its exception once it
  // has ended and every shard has shut down. Once only.
  template <class Main>
  auto run(Main&& main);

  // Starts every shard on its own thread; returns once all are set up (or throws the first set-up error).
  void start();
  // Cancels every task, waits for the shards to wind down and joins them. Idempotent. Called from a task on
  // one of this runtime's shards it only requests the shutdown (a shard cannot join itself): run() then
  // returns, and a started runtime's owner still calls stop() (or lets the destructor) join the threads.
  void stop();

  // From a thread that is not a shard: runs fn (plain, or returning a Task) on `shard`; the future carries
  // its value or exception. Throws Error if the runtime is not running or the shard does not exist.
  template <class F>
  auto submit(unsigned shard, F fn);

  ShardStats stats(unsigned shard) const;
  // Every shard's counters and latency histograms (metrics.hpp), read without stopping them. From any thread.
  RuntimeMetrics metrics() const;
  // What shard `shard`'s memory obtained: node, sizes, page kind, lock, placement, and any warning. Complete
  // once the runtime has started.
  ShardMemory memory(unsigned shard) const;
  // What RuntimeOptions::thread_policy gave shard `shard`'s thread: ok, what the kernel reports it applied,
  // the route SCHED_DEADLINE took, and the warning when it was refused. Complete once the runtime has
  // started.
  const rt::ApplyResult& thread_policy(unsigned shard) const;
  // The capabilities RuntimeOptions::drop_capabilities took from the runtime's threads (an
  // rt::CapabilityMask, rt::capability_names() spells it; 0 when there was nothing to drop or the drop is
  // off). Complete once the runtime has started.
  std::uint64_t dropped_capabilities() const noexcept;

 private:
  static constexpr int kCreated = 0, kRunning = 1, kStopped = 2;

  // Starts shard threads from `first` on and waits until each is set up; throws the first failure.
  void launch(unsigned first);
  void join_threads() noexcept;
  // Throws Error(no_such_shard) naming the call when `shard` is out of range.
  void check_shard(unsigned shard, const char* what) const;
  // Undoes the cpusets or sysctl that SCHED_DEADLINE shards needed, once their threads have ended.
  void release_deadline_routes() noexcept;
  bool took_deadline_route() const noexcept;
  // The starting thread's part of RuntimeOptions::drop_capabilities, once every shard is up.
  void drop_caller_capabilities(bool caller_is_shard);
  void run_here(void (*start_main)(void*), void* arg);
  void check_submit(unsigned shard) const;
  void push_external(unsigned shard, detail::ExternalWork* work) noexcept;

  std::unique_ptr<detail::RuntimeState> state_;
  std::vector<std::thread> threads_;
  std::atomic<int> phase_{kCreated};
};

namespace detail {

// The Task type run() gets: Main itself, or what calling it returns (looked up only for a callable).
template <class M, bool = is_task_v<M>>
struct main_task {
  using type = M;
};
template <class M>
struct main_task<M, false> {
  using type = std::invoke_result_t<M&>;
};

// Where run()'s main task leaves its value or exception; `collect` takes them from the ended task's frame.
struct MainSlotBase {
  void (*collect)(MainSlotBase* self, std::coroutine_handle<> frame) noexcept = nullptr;
};

template <class T>
struct MainSlot final : MainSlotBase {
  std::optional<std::conditional_t<std::is_void_v<T>, int, T>> value;
  std::exception_ptr error;

  MainSlot() noexcept {
    collect = [](MainSlotBase* self, std::coroutine_handle<> frame) noexcept {
      auto* slot = static_cast<MainSlot*>(self);
      auto h = std::coroutine_handle<Promise<T>>::from_address(frame.address());
      try {
        if constexpr (std::is_void_v<T>) {
          h.promise().take();
          slot->value.emplace(0);
        } else {
          slot->value.emplace(h.promise().take());
        }
      } catch (...) {
        slot->error = std::current_exception();
      }
    };
  }
};

// Spawns `frame` as run()'s main task on the calling shard; its end fills `slot` and stops the runtime.
void spawn_main(std::coroutine_handle<> frame, PromiseBase* promise, MainSlotBase* slot);

template <class T, class F>
struct ExternalCall final : ExternalWork {
  F fn;
  std::promise<T> promise;
  explicit ExternalCall(F f) : fn(std::move(f)) {}

  void run(Shard& here, bool refuse) noexcept override {
    using Ret = std::invoke_result_t<F&>;
    if (refuse || here.stopping()) {
      promise.set_exception(
          std::make_exception_ptr(Error(Errc::stopped, "Runtime::submit: the runtime stopped")));
      delete this;
      return;
    }
    try {
      if constexpr (is_task_v<Ret>) {
        spawn_forwarder(forward_result(this));
        return;  // forward_result deletes this
      } else if constexpr (std::is_void_v<T>) {
        fn();
        promise.set_value();
      } else {
        promise.set_value(fn());
      }
    } catch (...) {
      promise.set_exception(std::current_exception());
    }
    delete this;
  }

  static Task<void> forward_result(ExternalCall* self) {
    try {
      if constexpr (std::is_void_v<T>) {
        co_await self->fn();
        self->promise.set_value();
      } else {
        self->promise.set_value(co_await self->fn());
      }
    } catch (...) {
      self->promise.set_exception(std::current_exception());
    }
    delete self;
  }
};

}  // namespace detail

template <class Main>
auto Runtime::run(Main&& main) {
  using M = std::remove_cvref_t<Main>;
  using TaskT = typename detail::main_task<M>::type;
  static_assert(is_task_v<TaskT>, "Runtime::run takes a Task<T> or a callable returning one");
  using T = typename TaskT::value_type;

  detail::MainSlot<T> slot;
  struct Start {
    std::remove_reference_t<Main>* main;  // a function passed by name stays a function pointer
    detail::MainSlot<T>* slot;
  } start{&main, &slot};
  run_here(
      [](void* p) {
        auto* s = static_cast<Start*>(p);
        TaskT task = [&]() -> TaskT {
          if constexpr (is_task_v<M>) {
            return std::move(*s->main);
          } else {
            return (*s->main)();
          }
        }();
        if (!task.valid())
          throw Error(Errc::invalid_argument, "Runtime::run of an empty Task (moved-from or default-made)");
        auto h = task.release();
        detail::spawn_main(h, &h.promise(), s->slot);
      },
      &start);
  if (slot.error) std::rethrow_exception(slot.error);
  if constexpr (!std::is_void_v<T>) return std::move(*slot.value);
}

template <class F>
auto Runtime::submit(unsigned shard, F fn) {
  using Ret = std::invoke_result_t<F&>;
  using T = typename detail::unwrap_task<Ret>::type;
  check_submit(shard);
  auto* call = new detail::ExternalCall<T, F>(std::move(fn));
  std::future<T> fut = call->promise.get_future();
  push_external(shard, call);
  return fut;
}

}  // namespace moirai
