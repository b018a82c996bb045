// Shard-local async primitives: Event, Semaphore and Gate wait without blocking the thread (the waiting task
// suspends; the shard runs others), and Barrier meets tasks across shards. Event, Semaphore and Gate belong
// to one shard and must be used from it only; waits on them are cancellation points.
#pragma once

#include <atomic>
#include <coroutine>
#include <cstddef>
#include <memory>
#include <string>
#include <utility>

#include "moirai/core/detail/shard_core.hpp"
#include "moirai/core/detail/wait_list.hpp"
#include "moirai/core/submit.hpp"
#include "moirai/core/task.hpp"

namespace moirai {

// A flag tasks can wait for. set() wakes every waiter; waits after set() return at once until reset().
class Event {
 public:
  bool is_set() const noexcept { return set_; }
  void set() noexcept {
    set_ = true;
    waiters_.wake_all();
  }
  void reset() noexcept { set_ = false; }

  struct [[nodiscard]] Awaiter : detail::Waiter {
    Event* ev;
    explicit Awaiter(Event* e) noexcept : ev(e) {}
    bool await_ready() const {
      detail::throw_if_cancelled(this_shard().current_task());
      return ev->set_;
    }
    void await_suspend(std::coroutine_handle<> h) { ev->waiters_.park(this, h); }
    void await_resume() {
      ev->waiters_.unlink(this);
      detail::disarm_cancel(task, this);
      detail::throw_if_cancelled(task);
    }
  };
  Awaiter wait() noexcept { return Awaiter(this); }

 private:
  bool set_ = false;
  detail::WaitList waiters_;
};

// A counting semaphore, fair: waiters are served in arrival order, and a large request is not overtaken.
class Semaphore {
 public:
  explicit Semaphore(std::size_t count) noexcept : count_(count) {}
  std::size_t available() const noexcept { return count_; }
  std::size_t waiters() const noexcept { return waiting_; }

  bool try_acquire(std::size_t n = 1) noexcept {
    if (!waiters_.empty() || count_ < n) return false;
    count_ -= n;
    return true;
  }
  void release(std::size_t n = 1) noexcept {
    count_ += n;
    while (!waiters_.empty() && waiters_.front()->want <= count_) {
      detail::Waiter* w = waiters_.front();
      count_ -= w->want;
      w->granted = true;  // the units are the waiter's from now on, even if it is cancelled before it runs
      --waiting_;
      waiters_.wake_front();
    }
  }

  struct [[nodiscard]] Awaiter : detail::Waiter {
    Semaphore* sem;
    Awaiter(Semaphore* s, std::size_t n) noexcept : sem(s) { want = n; }
    bool await_ready() {
      detail::throw_if_cancelled(this_shard().current_task());
      granted = sem->try_acquire(want);
      return granted;
    }
    void await_suspend(std::coroutine_handle<> h) {
      ++sem->waiting_;
      sem->waiters_.park(this, h, [](detail::CancelHook* hook) noexcept {
        // Cancelled while waiting: leave the queue, and let the waiters this one held back (a large request
        // blocks smaller ones behind it, for fairness) take the units that are free.
        auto* self = static_cast<Awaiter*>(hook);
        self->sem->waiters_.unlink(self);
        --self->sem->waiting_;
        self->shard->schedule(self->handle, self->task);
        self->sem->release(0);
      });
    }
    void await_resume() {
      detail::disarm_cancel(task, this);
      if (detail::cancel_requested(task)) {
        if (granted) sem->release(want);  // granted, then cancelled before it ran: the units go back
        granted = false;
        throw TaskCancelled();
      }
    }
  };
  // co_await acquire(n): waits until n units are free and takes them.
  Awaiter acquire(std::size_t n = 1) noexcept { return Awaiter(this, n); }

  // Units taken by hold(), given back when the Units is destroyed (or by release()): however the scope that
  // holds them ends, by co_return or by an exception, nothing is left taken.
  class [[nodiscard]] Units {
   public:
    Units() noexcept = default;
    Units(Semaphore* s, std::size_t n) noexcept : sem_(s), n_(n) {}
    Units(Units&& o) noexcept : sem_(std::exchange(o.sem_, nullptr)), n_(o.n_) {}
    Units& operator=(Units&& o) noexcept {
      if (this != &o) {
        release();
        sem_ = std::exchange(o.sem_, nullptr);
        n_ = o.n_;
      }
      return *this;
    }
    Units(const Units&) = delete;
    Units& operator=(const Units&) = delete;
    ~Units() { release(); }
    void release() noexcept {
      if (sem_ != nullptr) std::exchange(sem_, nullptr)->release(n_);
    }

   private:
    Semaphore* sem_ = nullptr;
    std::size_t n_ = 0;
  };
  struct [[nodiscard]] HoldAwaiter : Awaiter {
    using Awaiter::Awaiter;
    Units await_resume() {
      Awaiter::await_resume();
      return Units(sem, want);
    }
  };
  // co_await hold(n): as acquire(n), and the units come back when the Units it returns is destroyed.
  HoldAwaiter hold(std::size_t n = 1) noexcept { return HoldAwaiter(this, n); }

 private:
  std::size_t count_;
  std::size_t waiting_ = 0;
  detail::WaitList waiters_;
};

// Tracks in-flight work so shutdown can wait for it: keep the Holder that enter() returns for as long as the
// work runs (it leaves when destroyed, or by release()); close() refuses new entries and waits until every
// holder has left.
class Gate {
 public:
  class Holder {
   public:
    Holder() noexcept = default;
    explicit Holder(Gate* g) noexcept : g_(g) {}
    Holder(Holder&& o) noexcept : g_(std::exchange(o.g_, nullptr)) {}
    Holder& operator=(Holder&& o) noexcept {
      if (this != &o) {
        release();
        g_ = std::exchange(o.g_, nullptr);
      }
      return *this;
    }
    ~Holder() { release(); }
    void release() noexcept {
      if (g_ != nullptr) std::exchange(g_, nullptr)->leave();
    }

   private:
    Gate* g_ = nullptr;
  };

  bool is_closed() const noexcept { return closed_; }
  std::size_t count() const noexcept { return count_; }

  // Throws Error(Errc::gate_closed) once close() has been called. The Holder leaves when it is destroyed.
  [[nodiscard]] Holder enter() {
    if (closed_)
      throw Error(Errc::gate_closed, "Gate::enter: the gate is closed (its owner is shutting down)");
    ++count_;
    return Holder(this);
  }

 private:
  friend class Holder;
  void leave() noexcept {
    if (--count_ == 0 && closed_) drained_.set();
  }

 public:
  // co_await close(): no new entries; resumes when the last holder leaves.
  Event::Awaiter close() noexcept {
    closed_ = true;
    if (count_ == 0) drained_.set();
    return drained_.wait();
  }

 private:
  std::size_t count_ = 0;
  bool closed_ = false;
  Event drained_;
};

// A reusable barrier across shards: each of `parties` tasks (on any shards) does co_await arrive_and_wait();
// all resume once the last arrives. Only the last arriver sends messages, one per waiter on another shard.
// The wait is not a cancellation point: a waiter's record is in the shared list until the last arrival.
class Barrier {
  struct Arrival {
    Arrival* next = nullptr;
    Shard* shard = nullptr;
    std::coroutine_handle<> handle{};
    detail::TaskControl* task = nullptr;
    detail::OwnedOutbound<Arrival> wake;
  };

 public:
  explicit Barrier(unsigned parties) : parties_(parties) {
    if (parties == 0) throw Error(Errc::invalid_argument, "Barrier: parties must be at least 1");
  }
  unsigned parties() const noexcept { return parties_; }

  class [[nodiscard]] Awaiter {
   public:
    explicit Awaiter(Barrier* b) noexcept : b_(b) {}
    bool await_ready() const noexcept { return false; }
    bool await_suspend(std::coroutine_handle<> h) {
      detail::ShardCore& here = detail::this_core();
      me_.shard = &here;
      me_.handle = h;
      me_.task = here.current_task();
      me_.wake.owner = &me_;
      me_.wake.fill = [](detail::Outbound* o, detail::Message& m) noexcept {
        detail::store_pointer(m, detail::OwnedOutbound<Arrival>::of(o));
        m.invoke = [](detail::Message& msg, detail::ShardCore& home) noexcept {
          Arrival* a = detail::load_pointer<Arrival>(msg);
          home.schedule(a->handle, a->task);
        };
      };
      // release: our record is complete before the last arriver (acquire) walks the list.
      Arrival* prev = b_->head_.load(std::memory_order_relaxed);
      do {
        me_.next = prev;
      } while (
          !b_->head_.compare_exchange_weak(prev, &me_, std::memory_order_release, std::memory_order_relaxed));
      if (b_->arrived_.fetch_add(1, std::memory_order_acq_rel) + 1 != b_->parties_) return true;
      // Last: take the list, reset for the next phase (before anyone is released into it), wake the others.
      Arrival* all = b_->head_.exchange(nullptr, std::memory_order_acquire);
      b_->arrived_.store(0, std::memory_order_relaxed);
      for (Arrival* a = all; a != nullptr;) {
        Arrival* next = a->next;  // read first: once woken, the waiter's frame moves on
        if (a != &me_) {
          if (a->shard == &here) {
            here.schedule(a->handle, a->task);
          } else {
            here.send(a->shard->id(), &a->wake);
          }
        }
        a = next;
      }
      return false;
    }
    void await_resume() const noexcept {}

   private:
    Barrier* b_;
    Arrival me_;
  };
  Awaiter arrive_and_wait() noexcept { return Awaiter(this); }

 private:
  const unsigned parties_;
  std::atomic<unsigned> arrived_{0};
  std::atomic<Arrival*> head_{nullptr};
};

}  // namespace moirai
