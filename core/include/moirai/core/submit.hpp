// Cross-core work: submit_to runs a function (plain, or returning a Task) on another shard and brings back
// its value or exception; post_to sends one-way; invoke_on_all and map_reduce fan out to every shard.
//
// A request travels as one cache-line message holding a pointer to the awaiter, which lives in the suspended
// caller's frame and carries the function, the result slot and both messages' queue links: a round trip
// allocates nothing. A full ring parks the message (and so its sender) until there is room: backpressure,
// never a drop, never a blocked thread.
#pragma once

#include <cstdio>
#include <cstring>
#include <exception>
#include <new>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include "moirai/core/detail/shard_core.hpp"
#include "moirai/core/spawn.hpp"
#include "moirai/core/task.hpp"

namespace moirai {
namespace detail {

// A value or an exception, written on one shard and read on another after the reply message's
// release/acquire.
template <class R>
struct Outcome {
  std::optional<R> value;
  std::exception_ptr error;
  template <class F>
  void capture(F&& f) {
    value.emplace(std::forward<F>(f)());
  }
  R get() {
    if (error) std::rethrow_exception(error);
    return std::move(*value);
  }
};
template <>
struct Outcome<void> {
  std::exception_ptr error;
  template <class F>
  void capture(F&& f) {
    std::forward<F>(f)();
  }
  void get() const {
    if (error) std::rethrow_exception(error);
  }
};

template <class Owner>
struct OwnedOutbound : Outbound {
  Owner* owner = nullptr;
  static Owner* of(Outbound* o) noexcept { return static_cast<OwnedOutbound*>(o)->owner; }
};

inline void check_destination(const Shard& s, unsigned dest, const char* what) {
  if (dest >= s.shard_count()) {
    throw Error(Errc::no_such_shard, std::string(what) + "(" + std::to_string(dest) + "): this runtime has " +
                                         std::to_string(s.shard_count()) + " shards, numbered 0 to " +
                                         std::to_string(s.shard_count() - 1));
  }
  if (s.stopping()) throw Error(Errc::stopped, std::string(what) + ": the runtime is shutting down");
}

template <class T>
T* load_pointer(Message& m) noexcept {
  return *m.as<T*>();
}
template <class T>
void store_pointer(Message& m, T* p) noexcept {
  new (m.payload) T*(p);
}

}  // namespace detail

template <class F>
class [[nodiscard]] SubmitAwaiter {
  using Fn = std::decay_t<F>;
  using Ret = std::invoke_result_t<Fn&>;
  static constexpr bool kIsTask = is_task_v<Ret>;

 public:
  using result_type = typename detail::unwrap_task<Ret>::type;

 private:
  // The fast path moves exactly two cache lines per round trip, the request slot and the reply slot: a small
  // function travels inside the request and a small result inside the reply, so neither shard touches the
  // other's memory. Larger functions and results, exceptions and task results go through the awaiter instead.
  static constexpr std::size_t kInline = detail::Message::kPayload - 16;
  static constexpr bool kInlineFn =
      !kIsTask && sizeof(Fn) <= kInline && alignof(Fn) <= 8 && std::is_nothrow_move_constructible_v<Fn>;
  static constexpr bool kInlineResult = [] {
    if constexpr (std::is_void_v<result_type>) {
      return true;
    } else {
      return std::is_trivially_copyable_v<result_type> && sizeof(result_type) <= kInline &&
             alignof(result_type) <= 8;
    }
  }();
  struct Request {
    SubmitAwaiter* awaiter;
    unsigned source;
    alignas(8) unsigned char fn[kInline];
  };
  struct Reply {
    SubmitAwaiter* awaiter;
    bool in_awaiter;  // the outcome was written into the awaiter (slow path), not carried here
    alignas(8) unsigned char value[kInline];
  };
  static_assert(sizeof(Request) <= detail::Message::kPayload && sizeof(Reply) <= detail::Message::kPayload);

 public:
  SubmitAwaiter(unsigned dest, Fn fn) : fn_(std::move(fn)), dest_(dest) {}
  SubmitAwaiter(const SubmitAwaiter&) = delete;
  SubmitAwaiter& operator=(const SubmitAwaiter&) = delete;

  bool await_ready() {
    src_ = &detail::this_core();
    detail::check_destination(*src_, dest_, "submit_to");
    if (dest_ != src_->id()) return false;
    // Local: no message. A plain function runs now; a task is awaited in place below.
    local_ = true;
    if constexpr (kIsTask) {
      local_task_.emplace(fn_());
      return false;
    } else {
      run_into_outcome(fn_);
      return true;
    }
  }

  std::coroutine_handle<> await_suspend(std::coroutine_handle<> h) {
    if constexpr (kIsTask) {
      if (local_) return local_task_->operator co_await().await_suspend(h);
    }
    h_ = h;
    task_ = src_->current_task();
    request_.owner = this;
    request_.fill = [](detail::Outbound* o, detail::Message& m) noexcept {
      SubmitAwaiter* a = detail::OwnedOutbound<SubmitAwaiter>::of(o);
      auto* rq = new (m.payload) Request;
      rq->awaiter = a;
      rq->source = a->src_->id();
      if constexpr (kInlineFn) new (rq->fn) Fn(std::move(a->fn_));
      m.invoke = &on_target;
    };
    src_->send(dest_, &request_);
    return std::noop_coroutine();
  }

  result_type await_resume() {
    if constexpr (kIsTask) {
      if (local_) return local_task_->operator co_await().await_resume();
    }
    return outcome_.get();
  }

 private:
  void run_into_outcome(Fn& fn) noexcept {
    try {
      outcome_.capture(fn);
    } catch (...) {
      outcome_.error = std::current_exception();
    }
  }

  static void on_target(detail::Message& m, detail::ShardCore& here) noexcept {
    Request* rq = m.as<Request>();
    SubmitAwaiter* a = rq->awaiter;
    const unsigned source = rq->source;
    if (here.stopping()) {
      if constexpr (kInlineFn) std::launder(reinterpret_cast<Fn*>(rq->fn))->~Fn();
      a->outcome_.error = std::make_exception_ptr(
          Error(Errc::stopped, "submit_to: shard " + std::to_string(here.id()) + " is shutting down"));
      reply_via_awaiter(here, a, source);
      return;
    }
    if constexpr (kIsTask) {
      try {
        detail::spawn_forwarder(run_remote(a, source));
      } catch (...) {
        a->outcome_.error = std::current_exception();
        reply_via_awaiter(here, a, source);
      }
    } else {
      Fn* fn = &a->fn_;
      if constexpr (kInlineFn) fn = std::launder(reinterpret_cast<Fn*>(rq->fn));
      if constexpr (kInlineResult) {
        try {
          if constexpr (std::is_void_v<result_type>) {
            (*fn)();
            reply_inline(here, a, source, nullptr);
          } else {
            const result_type v = (*fn)();
            reply_inline(here, a, source, &v);
          }
        } catch (...) {
          a->outcome_.error = std::current_exception();
          reply_via_awaiter(here, a, source);
        }
      } else {
        a->run_into_outcome(*fn);
        reply_via_awaiter(here, a, source);
      }
      if constexpr (kInlineFn) fn->~Fn();
    }
  }

  static Task<void> run_remote(SubmitAwaiter* a, unsigned source) {
    try {
      if constexpr (std::is_void_v<result_type>) {
        co_await a->fn_();
      } else {
        a->outcome_.value.emplace(co_await a->fn_());
      }
    } catch (...) {
      a->outcome_.error = std::current_exception();
    }
    reply_via_awaiter(detail::this_core(), a, source);
  }

  static void on_source(detail::Message& m, detail::ShardCore& home) noexcept {
    Reply* rp = m.as<Reply>();
    SubmitAwaiter* a = rp->awaiter;
    if constexpr (kInlineResult && !std::is_void_v<result_type>) {
      if (!rp->in_awaiter) {
        result_type v;
        std::memcpy(&v, rp->value, sizeof(v));
        a->outcome_.value.emplace(v);
      }
    }
    home.schedule(a->h_, a->task_);
  }

  // Fast path: the reply slot carries the result. If the ring back is full, the result goes into the awaiter
  // and the reply waits in order behind the others.
  static void reply_inline(detail::ShardCore& here, SubmitAwaiter* a, unsigned source,
                           const void* value) noexcept {
    if (detail::Message* slot = here.try_claim(source)) {
      auto* rp = new (slot->payload) Reply;
      rp->awaiter = a;
      rp->in_awaiter = false;
      if constexpr (!std::is_void_v<result_type>) std::memcpy(rp->value, value, sizeof(result_type));
      slot->invoke = &on_source;
      here.commit(source);
      return;
    }
    if constexpr (!std::is_void_v<result_type>) {
      result_type v;
      std::memcpy(&v, value, sizeof(v));
      a->outcome_.value.emplace(v);
    }
    reply_via_awaiter(here, a, source);
  }

  static void reply_via_awaiter(detail::ShardCore& here, SubmitAwaiter* a, unsigned source) noexcept {
    a->reply_.owner = a;
    a->reply_.fill = [](detail::Outbound* o, detail::Message& m) noexcept {
      auto* rp = new (m.payload) Reply;
      rp->awaiter = detail::OwnedOutbound<SubmitAwaiter>::of(o);
      rp->in_awaiter = true;
      m.invoke = &on_source;
    };
    here.send(source, &a->reply_);
  }

  Fn fn_;
  unsigned dest_;
  bool local_ = false;
  detail::ShardCore* src_ = nullptr;
  std::coroutine_handle<> h_{};
  detail::TaskControl* task_ = nullptr;
  detail::Outcome<result_type> outcome_;
  detail::OwnedOutbound<SubmitAwaiter> request_;
  detail::OwnedOutbound<SubmitAwaiter> reply_;
  std::conditional_t<kIsTask, std::optional<Ret>, std::optional<int>> local_task_;  // submit_to(self, task)
};

// co_await submit_to(shard, fn): runs fn() on `shard` and yields its value (for a Task, the task's value), or
// rethrows its exception here. On the calling shard itself, fn runs at once, without a message.
// With g++ 12, a lambda that captures objects such as std::string by value must be a named variable
// (`auto f = [s] {...}; co_await submit_to(1, std::move(f));`), not a temporary written inside the co_await
// expression: g++ 12 relocates such a temporary without its move constructor, and destroying it then frees a
// wild pointer (tests/core/submit_test.cpp, ACallableOwningStrings...). Captures by reference are unaffected.
template <class F>
SubmitAwaiter<F> submit_to(unsigned shard, F&& fn) {
  return SubmitAwaiter<F>(shard, std::forward<F>(fn));
}

// One-way: fn runs on `shard` later; nothing comes back. The callable travels inside the message, so it must
// fit in 48 bytes (capture pointers, not containers). co_await post_to(...) suspends only while the ring is
// full.
template <class F>
class [[nodiscard]] PostAwaiter {
  using Fn = std::decay_t<F>;
  static_assert(
      sizeof(Fn) <= detail::Message::kPayload && alignof(Fn) <= 8,
      "post_to: the callable must fit in a message (48 bytes, 8-byte alignment): capture a pointer");

 public:
  PostAwaiter(unsigned dest, Fn fn) : fn_(std::move(fn)), dest_(dest) {}

  bool await_ready() {
    src_ = &detail::this_core();
    detail::check_destination(*src_, dest_, "post_to");
    if (detail::Message* m = src_->try_claim(dest_)) {
      fill(*m);
      src_->commit(dest_);
      return true;
    }
    return false;
  }
  void await_suspend(std::coroutine_handle<> h) noexcept {
    h_ = h;
    task_ = src_->current_task();
    out_.owner = this;
    out_.fill = [](detail::Outbound* o, detail::Message& m) noexcept {
      auto* a = detail::OwnedOutbound<PostAwaiter>::of(o);
      a->fill(m);
      a->src_->schedule(a->h_, a->task_);
    };
    src_->send(dest_, &out_);
  }
  void await_resume() const noexcept {}

  // Fills a claimed slot with the callable; the consumer runs it and destroys it.
  void fill(detail::Message& m) noexcept {
    new (m.payload) Fn(std::move(fn_));
    m.invoke = [](detail::Message& msg, detail::ShardCore& here) noexcept {
      Fn* f = msg.as<Fn>();
      try {
        if constexpr (is_task_v<std::invoke_result_t<Fn&>>) {
          // The callable moves into the task's frame: a lambda coroutine reads its captures through `this`,
          // so they must live as long as the task, not as long as this message.
          spawn_detached(detail::run_owned(std::move(*f)));
        } else {
          (*f)();
        }
      } catch (const std::exception& e) {
        std::fprintf(stderr, "moirai: shard %u: a posted function threw: %s\n", here.id(), e.what());
      } catch (...) {
        std::fprintf(stderr, "moirai: shard %u: a posted function threw a non-std exception\n", here.id());
      }
      f->~Fn();
    };
  }

 private:
  Fn fn_;
  unsigned dest_;
  detail::ShardCore* src_ = nullptr;
  std::coroutine_handle<> h_{};
  detail::TaskControl* task_ = nullptr;
  detail::OwnedOutbound<PostAwaiter> out_;
};

template <class F>
PostAwaiter<F> post_to(unsigned shard, F&& fn) {
  return PostAwaiter<F>(shard, std::forward<F>(fn));
}

// Sends without waiting: false (and nothing sent) when the ring to `shard` is full.
template <class F>
bool try_post_to(unsigned shard, F&& fn) {
  PostAwaiter<F> p(shard, std::forward<F>(fn));
  return p.await_ready();
}

namespace detail {

// Counts children down; the parent waits without being cancellable, because the children reference its frame.
struct Countdown {
  explicit Countdown(unsigned n) noexcept : remaining(n) {}
  unsigned remaining;
  std::coroutine_handle<> waiter{};
  TaskControl* waiter_task = nullptr;
  std::exception_ptr error;

  void done(std::exception_ptr e) noexcept {
    if (e && !error) error = std::move(e);
    if (--remaining == 0 && waiter) this_shard().schedule(waiter, waiter_task);
  }
  bool await_ready() const noexcept { return remaining == 0; }
  void await_suspend(std::coroutine_handle<> h) {
    waiter = h;
    waiter_task = this_shard().current_task();
  }
  void await_resume() const {
    if (error) std::rethrow_exception(error);
  }
};

template <class F>
Task<void> invoke_one(unsigned shard, F fn, Countdown* cd) {
  std::exception_ptr e;
  try {
    co_await submit_to(shard, std::move(fn));
  } catch (...) {
    e = std::current_exception();
  }
  cd->done(std::move(e));
}

template <class M, class Acc, class Reduce>
Task<void> map_one(unsigned shard, M mapper, Acc* acc, Reduce* reduce, Countdown* cd) {
  std::exception_ptr e;
  try {
    auto v = co_await submit_to(shard, std::move(mapper));
    *acc = (*reduce)(std::move(*acc), std::move(v));
  } catch (...) {
    e = std::current_exception();
  }
  cd->done(std::move(e));
}

}  // namespace detail

// Runs fn on every shard at once and waits for all; rethrows the first exception after all have finished.
template <class F>
Task<void> invoke_on_all(F fn) {
  const unsigned n = this_shard().shard_count();
  detail::Countdown cd{n};
  for (unsigned i = 0; i < n; ++i)
    detail::spawn_forwarder(detail::invoke_one(i, fn, &cd));
  co_await cd;
}

// Runs mapper on every shard at once and folds the results here with reduce(acc, value), in arrival order
// (so reduce should be associative and commutative). Rethrows the first exception after all have finished.
template <class M, class Acc, class Reduce>
Task<Acc> map_reduce(M mapper, Acc init, Reduce reduce) {
  const unsigned n = this_shard().shard_count();
  detail::Countdown cd{n};
  Acc acc = std::move(init);
  for (unsigned i = 0; i < n; ++i)
    detail::spawn_forwarder(detail::map_one(i, mapper, &acc, &reduce, &cd));
  co_await cd;
  co_return acc;
}

}  // namespace moirai
