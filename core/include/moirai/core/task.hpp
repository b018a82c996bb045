// Task<T>: a lazy, move-only C++20 coroutine. Nothing runs until it is awaited or spawned; awaiting it
// transfers control to it symmetrically (no stack growth through chains of awaits) and its value or exception
// reaches the awaiter. Frames come from the shard's frame allocator, not malloc.
#pragma once

#include <coroutine>
#include <exception>
#include <optional>
#include <type_traits>
#include <utility>

#include "moirai/core/detail/frame_free_lists.hpp"

namespace moirai {

template <class T = void>
class Task;

namespace detail {

struct TaskControl;

// Called when the outermost coroutine of a spawned task finishes; returns what to run next (its joiner, or
// nothing). Defined with the shard.
std::coroutine_handle<> on_root_complete(TaskControl* control) noexcept;

class PromiseBase {
 public:
  static void* operator new(std::size_t n) { return frame_allocate(n); }
  static void operator delete(void* p) noexcept { frame_deallocate(p); }

  std::suspend_always initial_suspend() const noexcept { return {}; }

  struct FinalAwaiter {
    bool await_ready() const noexcept { return false; }
    template <class P>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<P> h) noexcept {
      PromiseBase& p = h.promise();
      if (p.continuation_) return p.continuation_;
      if (p.control_ != nullptr) return on_root_complete(p.control_);
      return std::noop_coroutine();
    }
    void await_resume() const noexcept {}
  };
  FinalAwaiter final_suspend() const noexcept { return {}; }

  void unhandled_exception() noexcept { exception_ = std::current_exception(); }
  void rethrow_if_exception() const {
    if (exception_) std::rethrow_exception(exception_);
  }

  std::coroutine_handle<> continuation_;  // who awaits this coroutine, if anyone
  TaskControl* control_ = nullptr;        // set only on the outermost coroutine of a spawned task
  std::exception_ptr exception_;
};

template <class T>
class Promise final : public PromiseBase {
 public:
  Task<T> get_return_object() noexcept;
  template <class U = T>
  void return_value(U&& v) noexcept(std::is_nothrow_constructible_v<T, U&&>) {
    value_.emplace(std::forward<U>(v));
  }
  T take() {
    rethrow_if_exception();
    return std::move(*value_);
  }

 private:
  std::optional<T> value_;
};

template <>
class Promise<void> final : public PromiseBase {
 public:
  Task<void> get_return_object() noexcept;
  void return_void() const noexcept {}
  void take() const { rethrow_if_exception(); }
};

}  // namespace detail

template <class T>
class [[nodiscard]] Task {
 public:
  static_assert(!std::is_reference_v<T>,
                "Task<T&> is not supported: return a pointer or std::reference_wrapper");
  using promise_type = detail::Promise<T>;
  using Handle = std::coroutine_handle<promise_type>;
  using value_type = T;

  Task() noexcept = default;
  explicit Task(Handle h) noexcept : h_(h) {}
  Task(Task&& other) noexcept : h_(std::exchange(other.h_, {})) {}
  Task& operator=(Task&& other) noexcept {
    if (this != &other) {
      reset();
      h_ = std::exchange(other.h_, {});
    }
    return *this;
  }
  Task(const Task&) = delete;
  Task& operator=(const Task&) = delete;
  ~Task() { reset(); }

  bool valid() const noexcept { return static_cast<bool>(h_); }

  struct Awaiter {
    Handle h;
    bool await_ready() const noexcept { return h.done(); }
    std::coroutine_handle<> await_suspend(std::coroutine_handle<> parent) noexcept {
      h.promise().continuation_ = parent;
      return h;  // symmetric transfer: the child runs now, on this stack frame's behalf
    }
    T await_resume() { return h.promise().take(); }
  };
  // Awaiting starts the task (it is lazy) and yields its value or rethrows its exception.
  Awaiter operator co_await() & noexcept { return Awaiter{h_}; }
  Awaiter operator co_await() && noexcept { return Awaiter{h_}; }

  // Gives up ownership of the frame (spawn takes it).
  Handle release() noexcept { return std::exchange(h_, {}); }

 private:
  void reset() noexcept {
    if (h_) std::exchange(h_, {}).destroy();
  }
  Handle h_;
};

namespace detail {
template <class T>
Task<T> Promise<T>::get_return_object() noexcept {
  return Task<T>(std::coroutine_handle<Promise<T>>::from_promise(*this));
}
inline Task<void> Promise<void>::get_return_object() noexcept {
  return Task<void>(std::coroutine_handle<Promise<void>>::from_promise(*this));
}
}  // namespace detail

namespace detail {
// Spawns a detached runtime-internal task that starts even if cancelled before it runs, because it owes
// someone an answer (a submit_to from another shard, Runtime::submit). Defined with the shard.
void spawn_forwarder(Task<void> task);
}  // namespace detail

template <class T>
struct is_task : std::false_type {};
template <class T>
struct is_task<Task<T>> : std::true_type {};
template <class T>
inline constexpr bool is_task_v = is_task<std::remove_cvref_t<T>>::value;

namespace detail {
// What awaiting a `Ret` gives: T for a Task<T>, else Ret itself.
template <class Ret>
struct unwrap_task {
  using type = Ret;
};
template <class T>
struct unwrap_task<Task<T>> {
  using type = T;
};
}  // namespace detail

}  // namespace moirai
