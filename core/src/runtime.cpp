#include "moirai/core/runtime.hpp"

#include <linux/capability.h>

#include <condition_variable>
#include <cstdio>
#include <exception>
#include <mutex>
#include <string>

#include "moirai/core/cpu_set.hpp"
#include "moirai/core/metrics.hpp"
#include "moirai/core/shard_memory.hpp"
#include "moirai/core/spawn.hpp"
#include "moirai/rt/capability_drop.hpp"
#include "moirai/rt/thread_policy.hpp"

#include "runtime_state.hpp"

namespace moirai {

const char* to_string(IdleStrategy s) noexcept {
  switch (s) {
    case IdleStrategy::spin:
      return "spin";
    case IdleStrategy::spin_then_sleep:
      return "spin-then-sleep";
    case IdleStrategy::sleep:
      return "sleep";
    case IdleStrategy::busy_poll:
      return "busy-poll";
  }
  return "?";
}

IdleStrategy parse_idle_strategy(const std::string& text) {
  if (text == "spin") return IdleStrategy::spin;
  if (text == "sleep") return IdleStrategy::sleep;
  if (text == "spin-then-sleep" || text == "spin_then_sleep") return IdleStrategy::spin_then_sleep;
  if (text == "busy-poll" || text == "busy_poll") return IdleStrategy::busy_poll;
  throw Error(Errc::invalid_argument,
              "unknown idle strategy '" + text + "': use spin, sleep, spin-then-sleep or busy-poll");
}

namespace detail {

void spawn_main(std::coroutine_handle<> frame, PromiseBase* promise, MainSlotBase* slot) {
  ShardCore& s = this_core();
  TaskControl* c = nullptr;
  try {
    c = s.new_task(frame, promise, TaskContext{}.with_name("main"), 1);
  } catch (...) {
    frame.destroy();
    throw;
  }
  promise->control_ = c;
  c->on_done_arg = slot;
  // The main task ended: keep what it gave, then begin the shutdown of every shard (shard 0 returns from its
  // loop after).
  c->on_done = [](TaskControl* t) noexcept {
    auto* main_slot = static_cast<MainSlotBase*>(t->on_done_arg);
    main_slot->collect(main_slot, t->frame);
    if (RuntimeState* rt = t_runtime_state) rt->request_stop();
  };
  s.schedule(frame, c);
}

}  // namespace detail

namespace {

// What every thread of the runtime keeps when it drops its capabilities (RuntimeOptions::drop_capabilities).
// Throws Error(invalid_argument) for a name that is not a capability.
rt::CapabilityMask kept_capabilities(const RuntimeOptions& o) {
  rt::CapabilityMask keep = 0;
  for (const std::string& name : o.keep_capabilities) {
    try {
      keep |= rt::capability_bit(rt::parse_capability(name));
    } catch (const std::exception& e) {
      std::throw_with_nested(
          Error(Errc::invalid_argument, std::string("RuntimeOptions::keep_capabilities: ") + e.what()));
    }
  }
  if (o.lock_memory) keep |= rt::capability_bit(CAP_IPC_LOCK);  // frame memory grows, locked, later
  return keep;
}

// Drops the calling thread's capabilities beyond `keep`, unless the drop is off. A refusal fails the start
// with `on`; with `automatic` it is said once and the runtime runs on.
void drop_thread_capabilities(detail::RuntimeState& st, rt::CapabilityMask keep) {
  if (st.options.drop_capabilities == CapabilityDrop::off) return;
  try {
    st.dropped_capabilities.fetch_or(rt::drop_capabilities(keep).dropped, std::memory_order_relaxed);
  } catch (const std::exception& e) {
    if (st.options.drop_capabilities == CapabilityDrop::on) {
      std::throw_with_nested(
          Error(Errc::setup_failed, std::string("RuntimeOptions::drop_capabilities is on: ") + e.what()));
    }
    if (!st.capability_drop_warned.exchange(true))
      std::fprintf(stderr, "moirai: capabilities not dropped, the runtime runs on with them: %s\n", e.what());
  }
}

void validate(const RuntimeOptions& o) {
  if (o.ring_entries == 0 || o.ring_entries > 32768) {
    throw Error(Errc::invalid_argument, "RuntimeOptions::ring_entries must be between 1 and 32768 (got " +
                                            std::to_string(o.ring_entries) + ")");
  }
  if (o.queue_capacity < 2 || o.queue_capacity > (1u << 20)) {
    throw Error(Errc::invalid_argument, "RuntimeOptions::queue_capacity must be between 2 and 1048576 (got " +
                                            std::to_string(o.queue_capacity) + ")");
  }
  if (o.task_quota == 0) throw Error(Errc::invalid_argument, "RuntimeOptions::task_quota must be at least 1");
  if (o.idle_polls_per_lap == 0) {
    throw Error(Errc::invalid_argument,
                "RuntimeOptions::idle_polls_per_lap must be at least 1 (to poll no socket while idle, leave "
                "RecvOptions::poll_when_idle off)");
  }
  if (o.idle == IdleStrategy::busy_poll &&
      (o.busy_poll_window < std::chrono::microseconds(1) || o.busy_poll_window > std::chrono::seconds(1))) {
    throw Error(Errc::invalid_argument,
                "RuntimeOptions::busy_poll_window must be between 1 us and 1 s (got " +
                    std::to_string(o.busy_poll_window.count()) +
                    " ns): the kernel spins that long at a time without yielding its CPU");
  }
  if (o.idle == IdleStrategy::busy_poll &&
      (o.busy_poll_after.count() < 0 || o.busy_poll_after > std::chrono::seconds(1))) {
    throw Error(Errc::invalid_argument, "RuntimeOptions::busy_poll_after must be between 0 and 1 s (got " +
                                            std::to_string(o.busy_poll_after.count()) + " ns)");
  }
  try {
    o.thread_policy.validate();
  } catch (const std::exception& e) {
    std::throw_with_nested(
        Error(Errc::invalid_argument, std::string("RuntimeOptions::thread_policy: ") + e.what()));
  }
  if (o.memory_per_shard < (64u << 10)) {
    throw Error(Errc::invalid_argument,
                "RuntimeOptions::memory_per_shard must be at least 65536 bytes (got " +
                    std::to_string(o.memory_per_shard) + ")");
  }
  if (o.io_buffer_count != 0 && (o.io_buffer_size == 0 || o.io_buffer_size > (64u << 20))) {
    throw Error(
        Errc::invalid_argument,
        "RuntimeOptions::io_buffer_size must be between 1 and 67108864 bytes when io_buffer_count is not "
        "0 (got " +
            std::to_string(o.io_buffer_size) + ")");
  }
  kept_capabilities(o);
}

// Start-up handshake: each shard thread reports set-up success or failure, then waits for go or abort, so a
// failure on one CPU stops them all before any runs user code.
struct StartGate {
  std::mutex m;
  std::condition_variable cv;
  unsigned pending = 0;
  bool decided = false;
  bool go = false;
  std::exception_ptr error;

  void report(std::exception_ptr e) {
    std::lock_guard lock(m);
    if (e && !error) error = e;
    if (--pending == 0) cv.notify_all();
  }
  void wait_reports() {
    std::unique_lock lock(m);
    cv.wait(lock, [&] { return pending == 0; });
  }
  void decide(bool ok) {
    std::lock_guard lock(m);
    decided = true;
    go = ok;
    cv.notify_all();
  }
  bool wait_decision() {
    std::unique_lock lock(m);
    cv.wait(lock, [&] { return decided; });
    return go;
  }
};

// The exception in flight, as a set-up Error that names the shard and its CPU (unless it already is one),
// with the exception in flight nested in it: a module's failure (a RingError, a NumaError) keeps its code.
// Called inside a handler, for a failure on the shard's thread and in the Runtime constructor alike.
std::exception_ptr describe_setup_failure(unsigned shard, int cpu) {
  std::string what = "unknown error";
  try {
    throw;
  } catch (const Error& e) {
    if (e.code() == Errc::setup_failed) return std::current_exception();
    what = e.what();
  } catch (const std::exception& e) {
    what = e.what();
  } catch (...) {
  }
  try {
    std::throw_with_nested(Error(Errc::setup_failed, "shard " + std::to_string(shard) + " (CPU " +
                                                         std::to_string(cpu) + "): " + what));
  } catch (...) {
    return std::current_exception();
  }
}

// Pins, sets the shard up on its thread (policy applied, memory mapped and locked), then drops what the
// thread no longer needs, unless `drop` is false (the starting thread drops once every shard is up).
std::exception_ptr set_up_shard(detail::RuntimeState& st, detail::ShardCore& s, bool drop) {
  try {
    if (st.options.pin_threads) pin_current_thread(s.cpu());
    s.init_on_thread();
    if (drop) drop_thread_capabilities(st, kept_capabilities(st.options));
    return nullptr;
  } catch (...) {
    return describe_setup_failure(s.id(), s.cpu());
  }
}

}  // namespace

Runtime::Runtime(RuntimeOptions options) : state_(std::make_unique<detail::RuntimeState>()) {
  validate(options);
  state_->cpus = resolve_shard_cpus(options.cpus, CpuFacts::current());
  state_->options = std::move(options);
  state_->options.cpus = state_->cpus;
  const auto n = static_cast<unsigned>(state_->cpus.size());
  state_->shards.reserve(n);
  for (unsigned i = 0; i < n; ++i) {
    try {
      // Maps the shard's message rings (and metrics) on its node: fails as a set-up on its thread does.
      state_->shards.push_back(std::make_unique<detail::ShardCore>(*state_, i, state_->cpus[i]));
    } catch (...) {
      std::rethrow_exception(describe_setup_failure(i, state_->cpus[i]));
    }
  }
  state_->wire();
}

Runtime::~Runtime() {
  stop();
}

unsigned Runtime::shard_count() const noexcept {
  return static_cast<unsigned>(state_->shards.size());
}
const std::vector<int>& Runtime::cpus() const noexcept {
  return state_->cpus;
}
const RuntimeOptions& Runtime::options() const noexcept {
  return state_->options;
}

void Runtime::check_shard(unsigned shard, const char* what) const {
  if (shard >= shard_count()) {
    throw Error(Errc::no_such_shard, std::string("Runtime::") + what + "(" + std::to_string(shard) +
                                         "): this runtime has " + std::to_string(shard_count()) + " shards");
  }
}

ShardStats Runtime::stats(unsigned shard) const {
  check_shard(shard, "stats");
  return state_->shards[shard]->stats();
}

const rt::ApplyResult& Runtime::thread_policy(unsigned shard) const {
  check_shard(shard, "thread_policy");
  return state_->shards[shard]->thread_policy();
}

std::uint64_t Runtime::dropped_capabilities() const noexcept {
  return state_->dropped_capabilities.load(std::memory_order_relaxed);
}

bool Runtime::took_deadline_route() const noexcept {
  for (const auto& s : state_->shards) {
    const rt::DeadlineRoute r = s->thread_policy().route;
    if (r == rt::DeadlineRoute::exclusive_cpuset || r == rt::DeadlineRoute::admission_control_off)
      return true;
  }
  return false;
}

void Runtime::drop_caller_capabilities(bool caller_is_shard) {
  const RuntimeOptions& o = state_->options;
  if (o.drop_capabilities == CapabilityDrop::off) return;
  rt::CapabilityMask keep = kept_capabilities(o);
  // run() gives its thread its own policy back at the end; stop() undoes the SCHED_DEADLINE routes.
  if (caller_is_shard && o.thread_policy != rt::ThreadPolicy{}) keep |= rt::capability_bit(CAP_SYS_NICE);
  if (took_deadline_route()) keep |= rt::capability_bit(CAP_SYS_ADMIN) | rt::capability_bit(CAP_DAC_OVERRIDE);
  drop_thread_capabilities(*state_, keep);
  if (o.report_capabilities) {
    std::fprintf(stderr, "moirai: dropped capabilities: %s (kept at most: %s)\n",
                 rt::capability_names(dropped_capabilities()).c_str(), rt::capability_names(keep).c_str());
  }
}

void Runtime::release_deadline_routes() noexcept {
  if (!took_deadline_route()) return;
  try {
    rt::release_deadline_routes();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "moirai: %s\n", e.what());  // "undoing the SCHED_DEADLINE set-up: ..."
  }
}

ShardMemory Runtime::memory(unsigned shard) const {
  check_shard(shard, "memory");
  return state_->shards[shard]->memory();
}

void Runtime::launch(unsigned first) {
  const unsigned n = shard_count();
  auto gate = std::make_shared<StartGate>();
  gate->pending = n - first;
  detail::RuntimeState* st = state_.get();
  for (unsigned i = first; i < n; ++i) {
    detail::ShardCore* s = st->shards[i].get();
    threads_.emplace_back([gate, s, st] {
      detail::t_runtime_state = st;
      gate->report(set_up_shard(*st, *s, true));
      if (gate->wait_decision()) s->run_loop();
      s->fini_on_thread();
      detail::t_runtime_state = nullptr;
    });
  }
  if (first == n) return;
  gate->wait_reports();
  if (gate->error) {
    gate->decide(false);
    join_threads();
    std::rethrow_exception(gate->error);
  }
  gate->decide(true);
}

void Runtime::join_threads() noexcept {
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

void Runtime::start() {
  int expected = kCreated;
  if (!phase_.compare_exchange_strong(expected, kRunning)) {
    throw Error(expected == kRunning ? Errc::invalid_argument : Errc::stopped,
                expected == kRunning
                    ? "Runtime::start: already running"
                    : "Runtime::start: this runtime has stopped; make a new Runtime to start again");
  }
  try {
    launch(0);
  } catch (...) {
    phase_.store(kStopped);
    throw;
  }
  try {
    drop_caller_capabilities(false);
  } catch (...) {
    stop();
    throw;
  }
}

void Runtime::stop() {
  if (detail::t_runtime_state == state_.get()) {
    // Called from one of our own shards: a shard cannot join itself. Ask every shard to wind down; run()
    // returns, or the owner's stop() (or the destructor) joins the threads.
    state_->request_stop();
    return;
  }
  int expected = kRunning;
  if (!phase_.compare_exchange_strong(expected, kStopped, std::memory_order_seq_cst)) {
    if (expected == kCreated) phase_.store(kStopped);
    return;
  }
  state_->request_stop();
  join_threads();
  release_deadline_routes();
  // Work handed in by submit() while the shards were leaving: fail it (its futures say "stopped").
  for (auto& s : state_->shards)
    s->refuse_external();
}

void Runtime::run_here(void (*start_main)(void*), void* arg) {
  int expected = kCreated;
  if (!phase_.compare_exchange_strong(expected, kRunning)) {
    throw Error(Errc::stopped, expected == kRunning
                                   ? "Runtime::run: this runtime is already running"
                                   : "Runtime::run: this runtime has stopped; make a new Runtime");
  }
  detail::ShardCore& s0 = *state_->shards[0];
  // Shard 0 is the caller's own thread: it gets back its affinity and its scheduling policy at the end.
  const std::vector<int> saved_affinity = current_thread_affinity();
  const bool pin = state_->options.pin_threads;
  const bool set_policy = state_->options.thread_policy != rt::ThreadPolicy{};
  const rt::ThreadPolicy saved_policy = set_policy ? rt::read_thread_policy() : rt::ThreadPolicy{};
  auto restore_caller = [&] {
    if (set_policy) rt::apply_thread_policy(saved_policy);
    if (pin) set_current_thread_affinity(saved_affinity);
  };
  std::exception_ptr setup_error = set_up_shard(*state_, s0, false);
  if (setup_error) {
    s0.fini_on_thread();
    restore_caller();
    release_deadline_routes();
    phase_.store(kStopped);
    std::rethrow_exception(setup_error);
  }
  try {
    launch(1);
  } catch (...) {
    s0.fini_on_thread();
    restore_caller();
    release_deadline_routes();
    phase_.store(kStopped);
    throw;
  }
  detail::t_runtime_state = state_.get();
  std::exception_ptr start_error;
  try {
    drop_caller_capabilities(true);  // shard 0's thread: every shard is up now
    start_main(arg);
  } catch (...) {
    start_error = std::current_exception();
    state_->request_stop();
  }
  s0.run_loop();
  s0.fini_on_thread();
  detail::t_runtime_state = nullptr;
  join_threads();
  restore_caller();
  release_deadline_routes();
  phase_.store(kStopped, std::memory_order_seq_cst);
  for (auto& s : state_->shards)
    s->refuse_external();
  if (start_error) std::rethrow_exception(start_error);
}

void Runtime::check_submit(unsigned shard) const {
  const int phase = phase_.load(std::memory_order_acquire);
  if (phase == kCreated) {
    throw Error(Errc::not_running, "Runtime::submit: the runtime is not running; call start() first");
  }
  if (phase == kStopped) throw Error(Errc::stopped, "Runtime::submit: the runtime has stopped");
  if (shard >= shard_count()) {
    throw Error(Errc::no_such_shard, "Runtime::submit(" + std::to_string(shard) + "): this runtime has " +
                                         std::to_string(shard_count()) + " shards, numbered 0 to " +
                                         std::to_string(shard_count() - 1));
  }
}

void Runtime::push_external(unsigned shard, detail::ExternalWork* work) noexcept {
  detail::ShardCore& s = *state_->shards[shard];
  s.push_external(work);
  // stop() may have drained this shard's inbox between our check of the phase and the push: then nobody would
  // ever run the work. Look again; if the runtime has stopped, fail what is there ourselves (drains are
  // exchanges, so each item is taken by exactly one drainer).
  if (phase_.load(std::memory_order_seq_cst) == kStopped) s.refuse_external();
}

}  // namespace moirai
