// Event, Semaphore, Gate and Barrier: waking, counting, fairness, cancellation of waiters, closing, and
// phases across shards.

#include "moirai/core/sync.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <stdexcept>
#include <string>
#include <vector>

#include "core_test_support.hpp"
#include "moirai/core/runtime.hpp"
#include "moirai/core/submit.hpp"
#include "moirai/core/timer.hpp"

namespace {

using moirai::Errc;
using moirai::Runtime;
using moirai::Task;
using moirai::TaskCancelled;
using moirai::TaskHandle;
using moirai::TaskStatus;
using moirai_test::one_shard;
using moirai_test::two_shards;
using moirai_test::yield_n;
using namespace std::chrono_literals;

Task<int> wait_event(moirai::Event* e, int id) {
  co_await e->wait();
  co_return id;
}

TEST(Event, SetWakesEveryWaiterAndLaterWaitsReturnAtOnceUntilReset) {
  Runtime rt(one_shard());
  rt.run([]() -> Task<void> {
    moirai::Event ev;
    EXPECT_FALSE(ev.is_set());
    std::vector<TaskHandle<int>> hs;
    for (int i = 0; i < 3; ++i)
      hs.push_back(moirai::spawn(wait_event(&ev, i)));
    co_await yield_n(3);
    for (auto& h : hs)
      EXPECT_EQ(h.status(), TaskStatus::running) << "waiting";
    ev.set();
    EXPECT_TRUE(ev.is_set());
    for (int i = 0; i < 3; ++i)
      EXPECT_EQ(co_await hs[i].join(), i);

    co_await ev.wait();  // set: no wait at all
    auto late = moirai::spawn(wait_event(&ev, 9));
    co_await yield_n(2);
    EXPECT_TRUE(late.done());

    ev.reset();
    EXPECT_FALSE(ev.is_set());
    auto again = moirai::spawn(wait_event(&ev, 10));
    co_await yield_n(3);
    EXPECT_FALSE(again.done()) << "after reset(), waits wait again";
    ev.set();
    EXPECT_EQ(co_await again.join(), 10);
  });
}

TEST(Event, ACancelledWaiterLeavesTheListAndIsNotWokenLater) {
  Runtime rt(one_shard());
  rt.run([]() -> Task<void> {
    moirai::Event ev;
    auto a = moirai::spawn(wait_event(&ev, 1));
    auto b = moirai::spawn(wait_event(&ev, 2));
    auto c = moirai::spawn(wait_event(&ev, 3));
    co_await yield_n(3);
    b.cancel();
    EXPECT_THROW(co_await b.join(), TaskCancelled);
    EXPECT_EQ(b.status(), TaskStatus::cancelled);
    { auto gone = std::move(b); }  // b's frame is freed: set() must not touch it
    ev.set();
    EXPECT_EQ(co_await a.join(), 1);
    EXPECT_EQ(co_await c.join(), 3);

    // Cancel every waiter: the list empties and a later set() wakes no one.
    moirai::Event ev2;
    std::vector<TaskHandle<int>> hs;
    for (int i = 0; i < 5; ++i)
      hs.push_back(moirai::spawn(wait_event(&ev2, i)));
    co_await yield_n(2);
    for (auto& h : hs)
      h.cancel();
    for (auto& h : hs)
      EXPECT_THROW(co_await h.join(), TaskCancelled);
    hs.clear();
    ev2.set();
    co_await yield_n(2);
  });
}

TEST(Event, ACancelledTaskCannotStartWaiting) {
  Runtime rt(one_shard());
  rt.run([]() -> Task<void> {
    moirai::Event ev;
    bool reached_wait = false;
    auto h = moirai::spawn([](moirai::Event* e, bool* reached) -> Task<void> {
      try {
        co_await moirai::sleep_for(1h);
      } catch (const TaskCancelled&) {
      }
      *reached = true;
      co_await e->wait();  // must throw at once
    }(&ev, &reached_wait));
    co_await yield_n(2);
    h.cancel();
    EXPECT_THROW(co_await h.join(), TaskCancelled);
    EXPECT_TRUE(reached_wait);
  });
}

Task<void> take(moirai::Semaphore* s, std::size_t n, char name, std::string* order) {
  co_await s->acquire(n);
  order->push_back(name);
}

TEST(Semaphore, CountsAndTryAcquire) {
  Runtime rt(one_shard());
  rt.run([]() -> Task<void> {
    moirai::Semaphore sem(3);
    EXPECT_EQ(sem.available(), 3u);
    EXPECT_TRUE(sem.try_acquire(2));
    EXPECT_EQ(sem.available(), 1u);
    EXPECT_FALSE(sem.try_acquire(2));
    EXPECT_EQ(sem.available(), 1u) << "a failed try_acquire takes nothing";
    sem.release(2);
    EXPECT_EQ(sem.available(), 3u);
    co_await sem.acquire(3);  // available: no wait
    EXPECT_EQ(sem.available(), 0u);
    EXPECT_EQ(sem.waiters(), 0u);
    sem.release(3);
    EXPECT_TRUE(sem.try_acquire());
    EXPECT_EQ(sem.available(), 2u);
  });
}

TEST(Semaphore, WaitersAreServedInArrivalOrderAndALargeRequestIsNotOvertaken) {
  Runtime rt(one_shard());
  rt.run([]() -> Task<void> {
    moirai::Semaphore sem(0);
    std::string order;
    auto a = moirai::spawn(take(&sem, 2, 'a', &order));
    auto b = moirai::spawn(take(&sem, 1, 'b', &order));
    auto c = moirai::spawn(take(&sem, 1, 'c', &order));
    co_await yield_n(3);
    EXPECT_EQ(sem.waiters(), 3u);
    EXPECT_FALSE(sem.try_acquire(0)) << "nobody jumps the queue, not even for nothing";

    sem.release(1);  // enough for b, but a is first and needs 2
    co_await yield_n(3);
    EXPECT_EQ(order, "");
    EXPECT_EQ(sem.available(), 1u);
    EXPECT_EQ(sem.waiters(), 3u);

    sem.release(1);
    co_await yield_n(3);
    EXPECT_EQ(order, "a");
    EXPECT_EQ(sem.available(), 0u);
    EXPECT_EQ(sem.waiters(), 2u);

    sem.release(2);
    co_await a.join();
    co_await b.join();
    co_await c.join();
    EXPECT_EQ(order, "abc");
    EXPECT_EQ(sem.available(), 0u);
    EXPECT_EQ(sem.waiters(), 0u);
  });
}

TEST(Semaphore, CancellingAWaiterWakesTheWaitersItHeldBack) {
  Runtime rt(one_shard());
  rt.run([]() -> Task<void> {
    moirai::Semaphore sem(1);
    std::string order;
    auto big = moirai::spawn(take(&sem, 5, 'B', &order));
    auto small = moirai::spawn(take(&sem, 1, 's', &order));
    co_await yield_n(3);
    EXPECT_EQ(sem.waiters(), 2u);
    EXPECT_EQ(order, "") << "s waits behind B although a unit is free";

    big.cancel();
    EXPECT_THROW(co_await big.join(), TaskCancelled);
    co_await yield_n(5);
    EXPECT_TRUE(small.done()) << "the free unit must go to s once B no longer waits";
    EXPECT_EQ(order, "s");
    EXPECT_EQ(sem.available(), 0u);
    EXPECT_EQ(sem.waiters(), 0u);
    if (!small.done()) {
      // BUG (sync.hpp, Semaphore::Awaiter::await_resume): the cancel hook (WaitList::park) unlinks the waiter
      // before resuming it, so `linked` is false and the branch that decrements waiting_ and calls
      // release(0) never runs: s stays parked with a unit free. Free it so the test can end.
      sem.release(1);
    }
    co_await small.join();
  });
}

TEST(Semaphore, CancellingAWaiterKeepsTheCountsRight) {
  Runtime rt(one_shard());
  rt.run([]() -> Task<void> {
    moirai::Semaphore sem(0);
    std::string order;
    auto a = moirai::spawn(take(&sem, 1, 'a', &order));
    auto b = moirai::spawn(take(&sem, 1, 'b', &order));
    co_await yield_n(3);
    EXPECT_EQ(sem.waiters(), 2u);
    a.cancel();
    EXPECT_THROW(co_await a.join(), TaskCancelled);
    EXPECT_EQ(sem.waiters(), 1u) << "a cancelled waiter no longer counts";
    EXPECT_EQ(sem.available(), 0u) << "a cancelled waiter took no unit";
    sem.release(1);
    co_await b.join();
    EXPECT_EQ(order, "b");
    EXPECT_EQ(sem.available(), 0u);
    EXPECT_EQ(sem.waiters(), 0u);
  });
}

TEST(Semaphore, AWaiterCancelledAfterBeingGrantedItsUnitsGivesThemBack) {
  Runtime rt(one_shard());
  rt.run([]() -> Task<void> {
    moirai::Semaphore sem(0);
    std::string order;
    auto a = moirai::spawn(take(&sem, 2, 'a', &order));
    co_await yield_n(2);
    sem.release(2);  // a is granted both units and scheduled ...
    a.cancel();      // ... but cancelled before it runs: it ends with TaskCancelled, holding nothing
    EXPECT_THROW(co_await a.join(), TaskCancelled);
    EXPECT_EQ(order, "");
    // BUG (sync.hpp, Semaphore::release + Awaiter::await_resume): release() subtracts a waiter's units when
    // it wakes it; if the task is cancelled before it resumes, await_resume throws TaskCancelled without
    // giving them back, so they are lost for good.
    EXPECT_EQ(sem.available(), 2u) << "the units granted to a task that never got them were lost";
    EXPECT_TRUE(sem.try_acquire(2));
  });
}

TEST(Semaphore, BoundsHowManyTasksAreInsideAtOnce) {
  Runtime rt(one_shard());
  rt.run([]() -> Task<void> {
    moirai::Semaphore sem(3);
    int inside = 0;
    int most = 0;
    int done = 0;
    std::vector<TaskHandle<void>> hs;
    for (int i = 0; i < 50; ++i) {
      hs.push_back(moirai::spawn([](moirai::Semaphore* s, int* in, int* mx, int* d, int k) -> Task<void> {
        co_await s->acquire();
        *mx = std::max(*mx, ++*in);
        if (k % 2 == 0) {
          co_await moirai::yield();
        } else {
          co_await moirai::sleep_for(20us);
        }
        --*in;
        ++*d;
        s->release();
      }(&sem, &inside, &most, &done, i)));
    }
    for (auto& h : hs)
      co_await h.join();
    EXPECT_EQ(done, 50);
    EXPECT_EQ(most, 3);
    EXPECT_EQ(sem.available(), 3u);
  });
}

// hold(): the units come back when the scope that holds them ends, by co_return or by an exception, and
// waiters still take their turns in arrival order.
TEST(Semaphore, HeldUnitsComeBackWhenTheHolderEndsEvenByAnException) {
  Runtime rt(one_shard());
  rt.run([]() -> Task<void> {
    moirai::Semaphore sem(1);
    std::string order;
    auto holder = [](moirai::Semaphore* s, char name, bool fail, std::string* out) -> Task<void> {
      const moirai::Semaphore::Units units = co_await s->hold();
      out->push_back(name);
      co_await moirai::yield();
      if (fail) throw std::runtime_error("the holder failed");
      out->push_back(name);
    };
    auto a = moirai::spawn(holder(&sem, 'a', false, &order));
    auto b = moirai::spawn(holder(&sem, 'b', true, &order));
    auto c = moirai::spawn(holder(&sem, 'c', false, &order));
    co_await a.join();
    EXPECT_THROW(co_await b.join(), std::runtime_error);
    co_await c.join();
    EXPECT_EQ(order, "aabcc") << "one holder at a time, in arrival order";
    EXPECT_EQ(sem.available(), 1u) << "the failed holder's unit came back";

    moirai::Semaphore::Units two = co_await sem.hold(1);
    EXPECT_EQ(sem.available(), 0u);
    moirai::Semaphore::Units moved = std::move(two);
    two.release();  // moved from: gives nothing back
    EXPECT_EQ(sem.available(), 0u);
    moved.release();
    moved.release();  // once only
    EXPECT_EQ(sem.available(), 1u);
  });
}

TEST(Gate, CloseWaitsForEveryHolderAndEnterAfterCloseThrows) {
  Runtime rt(one_shard());
  rt.run([]() -> Task<void> {
    moirai::Gate gate;
    moirai_test::Signal leave1, leave2;
    auto holder = [](moirai::Gate* g, moirai_test::Signal* leave) -> Task<void> {
      moirai::Gate::Holder h = g->enter();
      co_await moirai_test::wait_for(leave);
    };
    auto h1 = moirai::spawn(holder(&gate, &leave1));
    auto h2 = moirai::spawn(holder(&gate, &leave2));
    co_await yield_n(2);
    EXPECT_EQ(gate.count(), 2u);

    bool closed = false;
    auto closer = moirai::spawn([](moirai::Gate* g, bool* c) -> Task<void> {
      co_await g->close();
      *c = true;
    }(&gate, &closed));
    co_await yield_n(2);
    EXPECT_TRUE(gate.is_closed());
    EXPECT_FALSE(closed) << "two holders are still inside";

    const std::string msg = moirai_test::error_message([&] { (void)gate.enter(); }, Errc::gate_closed);
    EXPECT_NE(msg.find("closed"), std::string::npos) << msg;
    EXPECT_EQ(gate.count(), 2u) << "a refused entry is not counted";

    leave1.set();
    co_await h1.join();
    EXPECT_EQ(gate.count(), 1u);
    co_await yield_n(3);
    EXPECT_FALSE(closed);
    leave2.set();
    co_await h2.join();
    co_await closer.join();
    EXPECT_TRUE(closed);
    EXPECT_EQ(gate.count(), 0u);
  });
}

TEST(Gate, CloseWithNobodyInsideReturnsAtOnceAndHoldersReleaseOnce) {
  Runtime rt(one_shard());
  rt.run([]() -> Task<void> {
    moirai::Gate gate;
    {
      moirai::Gate::Holder a = gate.enter();
      moirai::Gate::Holder b = std::move(a);
      EXPECT_EQ(gate.count(), 1u) << "moving a holder does not enter twice";
      b.release();
      b.release();
      EXPECT_EQ(gate.count(), 0u);
    }
    (void)gate.enter();  // a discarded holder leaves at once
    EXPECT_EQ(gate.count(), 0u);
    co_await gate.close();
    EXPECT_TRUE(gate.is_closed());
    EXPECT_THROW((void)gate.enter(), moirai::Error);
  });
}

struct PhaseLog {
  std::atomic<int> progress[2] = {0, 0};  // the last phase each shard's task has arrived at
  std::atomic<int> errors{0};
};

Task<void> run_phases(moirai::Barrier* b, PhaseLog* log, int phases) {
  const unsigned me = moirai::this_shard_id();
  const unsigned other = 1 - me;
  for (int p = 1; p <= phases; ++p) {
    log->progress[me].store(p);
    co_await b->arrive_and_wait();
    // Past the barrier of phase p: the other side has arrived at p, and cannot be past p + 1.
    const int seen = log->progress[other].load();
    if (seen < p || seen > p + 1) log->errors.fetch_add(1);
    if (moirai::this_shard_id() != me) log->errors.fetch_add(1);
  }
}

TEST(Barrier, TwoShardsMeetAgainAndAgain) {
  Runtime rt(two_shards());
  moirai::Barrier barrier(2);
  PhaseLog log;
  rt.run([&]() -> Task<void> {
    auto here = moirai::spawn(run_phases(&barrier, &log, 50));
    co_await moirai::submit_to(1, [&] { return run_phases(&barrier, &log, 50); });
    co_await here.join();
  });
  EXPECT_EQ(log.errors.load(), 0);
  EXPECT_EQ(log.progress[0].load(), 50);
  EXPECT_EQ(log.progress[1].load(), 50);
}

TEST(Barrier, FourPartiesTwoOnEachShard) {
  Runtime rt(two_shards());
  moirai::Barrier barrier(4);
  std::atomic<int> arrivals[20] = {};
  std::atomic<int> errors{0};
  auto party = [](moirai::Barrier* b, std::atomic<int>* arr, std::atomic<int>* err) -> Task<void> {
    for (int p = 0; p < 20; ++p) {
      arr[p].fetch_add(1);
      co_await b->arrive_and_wait();
      if (arr[p].load() != 4) err->fetch_add(1);  // all four arrived before anyone left
    }
  };
  rt.run([&]() -> Task<void> {
    auto a = moirai::spawn(party(&barrier, arrivals, &errors));
    auto b = moirai::spawn(party(&barrier, arrivals, &errors));
    co_await moirai::submit_to(1, [&]() -> Task<void> {
      auto c = moirai::spawn(party(&barrier, arrivals, &errors));
      auto d = moirai::spawn(party(&barrier, arrivals, &errors));
      co_await c.join();
      co_await d.join();
    });
    co_await a.join();
    co_await b.join();
  });
  EXPECT_EQ(errors.load(), 0);
  for (auto& a : arrivals)
    EXPECT_EQ(a.load(), 4);
}

TEST(Barrier, OnePartyNeverWaitsAndZeroPartiesIsRefused) {
  moirai_test::error_message([] { moirai::Barrier b(0); }, Errc::invalid_argument);
  Runtime rt(one_shard());
  rt.run([]() -> Task<void> {
    moirai::Barrier b(1);
    EXPECT_EQ(b.parties(), 1u);
    for (int i = 0; i < 5; ++i)
      co_await b.arrive_and_wait();
  });
}

}  // namespace
