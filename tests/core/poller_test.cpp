// Idle pollers (PollWhen::idle_spin): called only in the laps a shard spins idle in user space, each such lap
// in which one finds work is counted, and a shard that sleeps instead never calls them. Every-lap pollers go
// on as before beside them.
#include <gtest/gtest.h>

#include <climits>
#include <coroutine>
#include <string>

#include "core_test_support.hpp"
#include "moirai/core/runtime.hpp"
#include "moirai/core/shard.hpp"
#include "moirai/core/spawn.hpp"
#include "moirai/core/timer.hpp"

namespace {

using moirai::Task;
using namespace std::chrono_literals;

// Resumes its waiter at its `wake_at`-th call; counts its calls.
class CountingPoller final : public moirai::Poller {
 public:
  CountingPoller(moirai::PollWhen when, int wake_at) : when_(when), wake_at_(wake_at) {}
  int calls = 0;

  // Waits until the poller resumes it (an awaiter apart from the poller, which must not be copied into the
  // coroutine's frame).
  struct Wait {
    CountingPoller* p;
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h) const {
      p->shard_ = &moirai::this_shard();
      p->task_ = p->shard_->current_task();
      p->h_ = h;
      p->shard_->add_poller(p, p->when_);
    }
    void await_resume() const noexcept {}
  };
  Wait wait() noexcept { return Wait{this}; }
  // Removes the poller and resumes its waiter, as a poll that found work would.
  void stop() noexcept {
    shard_->remove_poller(this);
    shard_->schedule(h_, task_);
  }

  bool poll() noexcept override {
    if (++calls < wake_at_) return false;
    shard_->remove_poller(this);
    shard_->schedule(h_, task_);
    return true;
  }
  bool prepare_sleep(long long&) noexcept override { return false; }

 private:
  moirai::PollWhen when_;
  int wake_at_;
  moirai::Shard* shard_ = nullptr;
  moirai::detail::TaskControl* task_ = nullptr;
  std::coroutine_handle<> h_{};
};

TEST(IdlePollers, ASpinningShardCallsThemInItsIdleLapsAndCountsTheLapThatFoundWork) {
  moirai::Runtime rt(moirai_test::one_shard(moirai::IdleStrategy::spin));
  CountingPoller p(moirai::PollWhen::idle_spin, 1000);
  rt.run([&]() -> Task<void> { co_await p.wait(); });
  EXPECT_EQ(p.calls, 1000) << "one call per idle lap until it resumed its waiter";
  EXPECT_EQ(rt.stats(0).idle_poll_hits, 1u);
}

TEST(IdlePollers, ASleepingShardNeverCallsThem) {
  moirai::Runtime rt(moirai_test::one_shard(moirai::IdleStrategy::sleep));
  CountingPoller p(moirai::PollWhen::idle_spin, 1);
  bool woke = false;
  rt.run([&]() -> Task<void> {
    // The poller waits beside a task that sleeps on a timer: the shard sleeps in its ring meanwhile.
    auto waiting = moirai::spawn([&]() -> Task<void> { co_await p.wait(); });
    co_await moirai::sleep_for(20ms);
    woke = true;
    p.stop();
    co_await waiting.join();
  });
  EXPECT_TRUE(woke);
  EXPECT_EQ(p.calls, 0);
  EXPECT_EQ(rt.stats(0).idle_poll_hits, 0u);
}

TEST(IdlePollers, AShardThatSpinsBeforeSleepingCallsThemWhileItSpinsAndStillSleeps) {
  moirai::RuntimeOptions o = moirai_test::one_shard(moirai::IdleStrategy::spin_then_sleep);
  o.spin_before_sleep = 200us;
  moirai::Runtime rt(o);
  CountingPoller p(moirai::PollWhen::idle_spin, 1'000'000'000);
  rt.run([&]() -> Task<void> {
    auto waiting = moirai::spawn([&]() -> Task<void> { co_await p.wait(); });
    co_await moirai::sleep_for(50ms);  // 200 us of spinning, then sleeps until the timer
    const int after_first_wait = p.calls;
    EXPECT_GT(after_first_wait, 0) << "called while the shard spun";
    co_await moirai::sleep_for(50ms);
    EXPECT_GT(p.calls, after_first_wait) << "called again in the spin after the timer's work";
    p.stop();
    co_await waiting.join();
  });
  EXPECT_GT(rt.stats(0).sleeps, 0u) << "the shard slept after its spin, when no poller was called";
  EXPECT_EQ(rt.stats(0).idle_poll_hits, 0u);
}

// Three idle pollers, the first resuming its waiter at its 300th call; what the other two were called by
// then.
struct Turns {
  int first = 0, second = 0, third = 0;
};
Turns turns_with(unsigned per_lap) {
  moirai::RuntimeOptions o = moirai_test::one_shard(moirai::IdleStrategy::spin);
  o.idle_polls_per_lap = per_lap;
  moirai::Runtime rt(o);
  CountingPoller a(moirai::PollWhen::idle_spin, 300);
  CountingPoller b(moirai::PollWhen::idle_spin, INT_MAX);
  CountingPoller c(moirai::PollWhen::idle_spin, INT_MAX);
  Turns t;
  rt.run([&]() -> Task<void> {
    auto wb = moirai::spawn([&]() -> Task<void> { co_await b.wait(); });
    auto wc = moirai::spawn([&]() -> Task<void> { co_await c.wait(); });
    co_await a.wait();
    t = Turns{a.calls, b.calls, c.calls};
    b.stop();
    c.stop();
    co_await wb.join();
    co_await wc.join();
  });
  EXPECT_EQ(rt.stats(0).idle_poll_hits, 1u);
  return t;
}

TEST(IdlePollers, EachLapCallsEveryOneWhenThereAreNoMoreThanItsShare) {
  const Turns t = turns_with(4);
  EXPECT_EQ(t.first, 300);
  EXPECT_EQ(t.second, 300);
  EXPECT_EQ(t.third, 300);
}

TEST(IdlePollers, ALapCallsAtMostItsShareAndTheNextGoesOnWhereItStopped) {
  const Turns t = turns_with(1);
  EXPECT_EQ(t.first, 300);
  // One call per lap, in turn: the other two were called 299 or 300 times by then.
  EXPECT_GE(t.second, 299);
  EXPECT_LE(t.second, 300);
  EXPECT_GE(t.third, 299);
  EXPECT_LE(t.third, 300);
}

TEST(IdlePollers, ZeroPerLapIsRefusedNamingTheOptionToUseInstead) {
  moirai::RuntimeOptions o = moirai_test::one_shard(moirai::IdleStrategy::spin);
  o.idle_polls_per_lap = 0;
  try {
    moirai::Runtime rt(o);
    ADD_FAILURE() << "a runtime started with idle_polls_per_lap = 0";
  } catch (const moirai::Error& e) {
    EXPECT_NE(std::string(e.what()).find("idle_polls_per_lap"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("poll_when_idle"), std::string::npos) << e.what();
  }
}

}  // namespace
