#include "moirai/rt/thread_policy.hpp"
#include "moirai/rt/error.hpp"

#include <sched.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <limits>

#include "sched_attr.hpp"
#include "sysfs.hpp"

namespace moirai::rt {
namespace {

using std::chrono::nanoseconds;

constexpr const char* kAcceptedForms =
    "accepted forms: other, other:NICE, fifo:PRIO, rr:PRIO, deadline:RUNTIME/DEADLINE/PERIOD (microseconds, "
    "or "
    "each with a unit ns, us, ms or s)";
// The kernel refuses a SCHED_DEADLINE runtime below 2^DL_SCALE ns (DL_SCALE = 10): its bandwidth arithmetic
// works in units of 1024 ns.
constexpr std::int64_t kMinDeadlineRuntimeNs = 1024;

[[noreturn]] void bad_text(std::string_view text, std::string_view part, const char* why) {
  throw RtError(EINVAL, "ThreadPolicy \"" + std::string(text) + "\": " + why + " '" + std::string(part) +
                            "'; " + kAcceptedForms);
}

bool parse_int(std::string_view s, int& out) noexcept {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

bool parse_duration(std::string_view s, nanoseconds& out) noexcept {
  std::int64_t scale = 1000;  // microseconds unless told
  auto ends_with = [&](std::string_view suffix) {
    if (s.size() > suffix.size() && s.substr(s.size() - suffix.size()) == suffix) {
      s.remove_suffix(suffix.size());
      return true;
    }
    return false;
  };
  if (ends_with("ns")) {
    scale = 1;
  } else if (ends_with("us")) {
    scale = 1000;
  } else if (ends_with("ms")) {
    scale = 1'000'000;
  } else if (ends_with("s")) {
    scale = 1'000'000'000;
  }
  std::int64_t value = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (s.empty() || ec != std::errc() || p != s.data() + s.size() || value < 0) return false;
  if (value > std::numeric_limits<std::int64_t>::max() / scale) return false;
  out = nanoseconds(value * scale);
  return true;
}

[[noreturn]] void bad_field(const ThreadPolicy& p, const std::string& what) {
  throw RtError(EINVAL, "ThreadPolicy " + p.to_string() + ": " + what);
}

std::optional<std::int64_t> read_sysctl_int(const char* path) {
  const auto line = detail::read_line(path);
  if (!line) return std::nullopt;
  std::int64_t v = 0;
  auto [p, ec] = std::from_chars(line->data(), line->data() + line->size(), v);
  if (ec != std::errc()) return std::nullopt;
  return v;
}

}  // namespace

ThreadPolicy ThreadPolicy::other(int nice) {
  ThreadPolicy p;
  p.kind = Kind::other;
  p.nice = nice;
  return p;
}

ThreadPolicy ThreadPolicy::fifo(int priority) {
  ThreadPolicy p;
  p.kind = Kind::fifo;
  p.priority = priority;
  return p;
}

ThreadPolicy ThreadPolicy::round_robin(int priority) {
  ThreadPolicy p;
  p.kind = Kind::round_robin;
  p.priority = priority;
  return p;
}

ThreadPolicy ThreadPolicy::deadline_policy(nanoseconds runtime, nanoseconds deadline, nanoseconds period) {
  ThreadPolicy p;
  p.kind = Kind::deadline;
  p.runtime = runtime;
  p.deadline = deadline;
  p.period = period;
  return p;
}

ThreadPolicy ThreadPolicy::parse(std::string_view text) {
  const std::size_t colon = text.find(':');
  const std::string_view name = text.substr(0, colon);
  const std::string_view args = colon == std::string_view::npos ? std::string_view() : text.substr(colon + 1);
  if (colon != std::string_view::npos && args.empty()) bad_text(text, text, "missing value after ':' in");

  if (name == "other") {
    if (colon == std::string_view::npos) return other();
    int nice = 0;
    if (!parse_int(args, nice)) bad_text(text, args, "nice is not an integer:");
    return other(nice);
  }
  if (name == "fifo" || name == "rr") {
    if (colon == std::string_view::npos) bad_text(text, name, "a priority is required after");
    int prio = 0;
    if (!parse_int(args, prio)) bad_text(text, args, "priority is not an integer:");
    return name == "fifo" ? fifo(prio) : round_robin(prio);
  }
  if (name == "deadline") {
    if (colon == std::string_view::npos) bad_text(text, name, "runtime/deadline/period are required after");
    nanoseconds values[3];
    std::string_view rest = args;
    for (int i = 0; i < 3; ++i) {
      const std::size_t slash = rest.find('/');
      if ((i < 2) != (slash != std::string_view::npos)) {
        bad_text(text, args, "expected exactly three times separated by '/', got");
      }
      const std::string_view part = rest.substr(0, slash);
      if (!parse_duration(part, values[i])) bad_text(text, part, "not a non-negative time:");
      rest = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
    }
    return deadline_policy(values[0], values[1], values[2]);
  }
  bad_text(text, name, "unknown policy");
}

std::string ThreadPolicy::to_string() const {
  switch (kind) {
    case Kind::other:
      return nice == 0 ? "other" : "other:" + std::to_string(nice);
    case Kind::fifo:
      return "fifo:" + std::to_string(priority);
    case Kind::round_robin:
      return "rr:" + std::to_string(priority);
    case Kind::deadline: {
      const bool whole_us =
          runtime.count() % 1000 == 0 && deadline.count() % 1000 == 0 && period.count() % 1000 == 0;
      auto fmt = [&](nanoseconds d) {
        return whole_us ? std::to_string(d.count() / 1000) : std::to_string(d.count()) + "ns";
      };
      return "deadline:" + fmt(runtime) + "/" + fmt(deadline) + "/" + fmt(period);
    }
  }
  return "unknown";
}

void ThreadPolicy::validate() const {
  const bool is_deadline = kind == Kind::deadline;
  const bool is_rt = kind == Kind::fifo || kind == Kind::round_robin;
  if (!is_deadline && (runtime.count() != 0 || deadline.count() != 0 || period.count() != 0))
    bad_field(*this, "runtime, deadline and period are for the deadline policy only; leave them 0");
  if (!is_rt && priority != 0)
    bad_field(*this, "priority " + std::to_string(priority) + " is for fifo and rr only; leave it 0");
  if (kind != Kind::other && nice != 0)
    bad_field(*this, "nice " + std::to_string(nice) + " is for the other policy only; leave it 0");
  switch (kind) {
    case Kind::other:
      if (nice < -20 || nice > 19) bad_field(*this, "nice " + std::to_string(nice) + " is outside -20..19");
      return;
    case Kind::fifo:
    case Kind::round_robin: {
      const int policy = kind == Kind::fifo ? SCHED_FIFO : SCHED_RR;
      const int lo = sched_get_priority_min(policy);
      const int hi = sched_get_priority_max(policy);
      if (priority < lo || priority > hi) {
        bad_field(*this, "priority " + std::to_string(priority) + " is outside " + std::to_string(lo) + ".." +
                             std::to_string(hi) + " (sched_get_priority_min/max)");
      }
      return;
    }
    case Kind::deadline: {
      if (runtime.count() < kMinDeadlineRuntimeNs) {
        bad_field(*this, "runtime " + std::to_string(runtime.count()) +
                             " ns is below the kernel's minimum of 1024 ns");
      }
      if (runtime > deadline || deadline > period) {
        bad_field(*this, "needs runtime <= deadline <= period (got " + std::to_string(runtime.count()) +
                             " / " + std::to_string(deadline.count()) + " / " +
                             std::to_string(period.count()) + " ns)");
      }
      // The kernel bounds the period by two sysctls (defaults 100 us and about 4.19 s); a value outside
      // would be refused with EINVAL at apply time, so say it here, with the knob.
      const auto min_us = read_sysctl_int("/proc/sys/kernel/sched_deadline_period_min_us");
      const auto max_us = read_sysctl_int("/proc/sys/kernel/sched_deadline_period_max_us");
      if (min_us && period.count() < *min_us * 1000) {
        bad_field(*this, "period " + std::to_string(period.count() / 1000) +
                             " us is below kernel.sched_deadline_period_min_us = " + std::to_string(*min_us));
      }
      if (max_us && period.count() > *max_us * 1000) {
        bad_field(*this, "period " + std::to_string(period.count() / 1000) +
                             " us is above kernel.sched_deadline_period_max_us = " + std::to_string(*max_us));
      }
      return;
    }
  }
}

const char* to_string(ThreadPolicy::Kind kind) noexcept {
  switch (kind) {
    case ThreadPolicy::Kind::other:
      return "other";
    case ThreadPolicy::Kind::fifo:
      return "fifo";
    case ThreadPolicy::Kind::round_robin:
      return "round-robin";
    case ThreadPolicy::Kind::deadline:
      return "deadline";
  }
  return "unknown";
}

const char* to_string(DeadlineRoute route) noexcept {
  switch (route) {
    case DeadlineRoute::not_needed:
      return "not-needed";
    case DeadlineRoute::direct:
      return "direct";
    case DeadlineRoute::exclusive_cpuset:
      return "exclusive-cpuset";
    case DeadlineRoute::admission_control_off:
      return "admission-control-off";
  }
  return "unknown";
}

ThreadPolicy read_thread_policy(pid_t tid) {
  detail::SchedAttr attr;
  if (detail::sched_getattr(tid, attr) != 0) {
    const int err = errno;
    throw RtError(err, "sched_getattr(thread " + std::to_string(tid) + "): " + std::strerror(err) +
                           (err == ESRCH ? " (no such thread)" : ""));
  }
  switch (static_cast<int>(attr.sched_policy)) {
    case SCHED_FIFO:
      return ThreadPolicy::fifo(static_cast<int>(attr.sched_priority));
    case SCHED_RR:
      return ThreadPolicy::round_robin(static_cast<int>(attr.sched_priority));
    case detail::kSchedDeadline:
      return ThreadPolicy::deadline_policy(nanoseconds(attr.sched_runtime), nanoseconds(attr.sched_deadline),
                                           nanoseconds(attr.sched_period));
    default:
      // SCHED_OTHER, SCHED_BATCH, SCHED_IDLE (and sched_ext): the fair classes, described by their nice
      // value. Since Linux 6.12 sched_runtime holds a fair task's slice; it is not part of this description.
      return ThreadPolicy::other(attr.sched_nice);
  }
}

}  // namespace moirai::rt
