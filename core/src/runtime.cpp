#include "moirai/core/runtime.hpp"

#include <condition_variable>
#include <mutex>
#include <string>

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
  }
  return "?";
}

IdleStrategy parse_idle_strategy(const std::string& text) {
  if (text == "spin") return IdleStrategy::spin;
  if (text == "sleep") return IdleStrategy::sleep;
  if (text == "spin-then-sleep" || text == "spin_then_sleep") return IdleStrategy::spin_then_sleep;
  throw Error(Errc::invalid_argument,
              "unknown idle strategy '" + text + "': use spin, sleep or spin-then-sleep");
}

namespace detail {
// The main task of run() ended: begin the shutdown of every shard (shard 0 returns from its loop after).
void request_runtime_stop(TaskControl*) noexcept {
  if (RuntimeState* rt = t_runtime_state) rt->request_stop();
}
}  // namespace detail

namespace {

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
  try {
    o.thread_policy.validate();
  } catch (const std::exception& e) {
    throw Error(Errc::invalid_argument, std::string("RuntimeOptions::thread_policy: ") + e.what());
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

// The exception in flight, as a set-up Error that names the shard and its CPU (unless it already is one).
std::exception_ptr describe_setup_failure(const Shard& s) {
  std::string what = "unknown error";
  try {
    throw;
  } catch (const Error& e) {
    if (e.errc() == Errc::setup_failed) return std::current_exception();
    what = e.what();
  } catch (const std::exception& e) {
    what = e.what();
  } catch (...) {
  }
  return std::make_exception_ptr(Error(Errc::setup_failed, "shard " + std::to_string(s.id()) + " (CPU " +
                                                               std::to_string(s.cpu()) + "): " + what));
}

std::exception_ptr set_up_shard(Shard& s, bool pin) {
  try {
    if (pin) pin_current_thread(s.cpu());
    s.init_on_thread();
    return nullptr;
  } catch (...) {
    return describe_setup_failure(s);
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
    state_->shards.push_back(std::make_unique<Shard>(*state_, i, state_->cpus[i]));
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

void Runtime::release_deadline_routes() noexcept {
  bool routed = false;
  for (const auto& s : state_->shards) {
    const rt::DeadlineRoute r = s->thread_policy().route;
    routed =
        routed || r == rt::DeadlineRoute::exclusive_cpuset || r == rt::DeadlineRoute::admission_control_off;
  }
  if (!routed) return;
  try {
    const std::string failed = rt::release_deadline_routes();
    if (!failed.empty())
      std::fprintf(stderr, "moirai: undoing the SCHED_DEADLINE set-up: %s\n", failed.c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "moirai: undoing the SCHED_DEADLINE set-up: %s\n", e.what());
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
  const bool pin = st->options.pin_threads;
  for (unsigned i = first; i < n; ++i) {
    Shard* s = st->shards[i].get();
    threads_.emplace_back([gate, s, st, pin] {
      detail::t_runtime_state = st;
      gate->report(set_up_shard(*s, pin));
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
  Shard& s0 = *state_->shards[0];
  // Shard 0 is the caller's own thread: it gets back its affinity and its scheduling policy at the end.
  const std::vector<int> saved_affinity = current_thread_affinity();
  const bool pin = state_->options.pin_threads;
  const bool set_policy = state_->options.thread_policy != rt::ThreadPolicy{};
  const rt::ThreadPolicy saved_policy = set_policy ? rt::read_thread_policy() : rt::ThreadPolicy{};
  auto restore_caller = [&] {
    if (set_policy) rt::apply_thread_policy(saved_policy);
    if (pin) set_current_thread_affinity(saved_affinity);
  };
  std::exception_ptr setup_error = set_up_shard(s0, pin);
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
  Shard& s = *state_->shards[shard];
  s.push_external(work);
  // stop() may have drained this shard's inbox between our check of the phase and the push: then nobody would
  // ever run the work. Look again; if the runtime has stopped, fail what is there ourselves (drains are
  // exchanges, so each item is taken by exactly one drainer).
  if (phase_.load(std::memory_order_seq_cst) == kStopped) s.refuse_external();
}

}  // namespace moirai
