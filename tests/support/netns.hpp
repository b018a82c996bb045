// Test support: two "hosts" on one machine. NetnsPair makes two network namespaces joined by a veth pair
// (addresses 10.231.N.1/24 and 10.231.N.2/24, links and loopback up, a multicast route 224.0.0.0/4 on each
// side), cuts and restores the link, and removes it all in its destructor, also when the test failed. Each
// pair is named after this process's pid (moirai-test-PID-K-a|b), so tests running in parallel never meet;
// pairs left by a test process that died (its pid no longer runs) are removed when the next pair is made.
//
// Where namespaces cannot be made (not root, no `ip`, a container without CAP_SYS_ADMIN and CAP_NET_ADMIN)
// unavailable() says why and what to do; MOIRAI_SKIP_WITHOUT_NETNS(pair) skips the test with that text.
//
// Code runs "in" a namespace per thread: setns(CLONE_NEWNET) moves only the calling thread, and threads it
// creates afterwards start there. So:
//   - InNetns moves the calling thread in for its scope and back out at its end;
//   - start_runtime_in(ns, options) starts a moirai::Runtime whose shard threads all live in `ns` (the
//     calling thread is moved in to start it, then back), so every socket its tasks make belongs to `ns`;
//   - run_in_child(ns, fn, timeout) forks a child that enters `ns` and runs fn, for code that wants a
//     process of its own (a service binary can also be run with {"ip", "netns", "exec", ns, ...}).
// A socket belongs to the namespace of the thread that made it: make sockets in tasks on those shards, not
// on the test's main thread.
//
// Header-only, test-only.
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <future>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "moirai/core/runtime.hpp"
#include "moirai/core/runtime_options.hpp"

extern char** environ;

namespace moirai_test {

struct CommandResult {
  int exit_code = -1;      // the command's exit status; 127 when it could not be started
  std::string output;      // its stdout and stderr together
  bool timed_out = false;  // killed after the timeout
};

namespace detail {

// Reads `fd` until end of file or `deadline`; false when the deadline came first.
inline bool read_until_eof(int fd, std::string& out, std::chrono::steady_clock::time_point deadline) {
  char buf[4096];
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd, POLLIN, 0};
    const int r = ::poll(&p, 1, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r == 0) return false;  // the deadline
    if (r < 0) return true;    // nothing more can be read
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return true;
    out.append(buf, static_cast<std::size_t>(n));
  }
}

// Waits for `pid`, killing it first when `kill_it`; gives the exit code (128 + signal when killed by one).
inline int reap(pid_t pid, bool kill_it) {
  if (kill_it) ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

inline bool open_pipe(int fds[2], CommandResult& result) {
  if (::pipe2(fds, O_CLOEXEC) == 0) return true;
  result.output = std::string("pipe2: ") + std::strerror(errno);
  return false;
}

// The parent's side of a child writing to `fd`: its output until it ends or `timeout` (then it is killed),
// and always its exit code.
inline void collect(pid_t pid, int fd, std::chrono::milliseconds timeout, CommandResult& result) {
  result.timed_out = !read_until_eof(fd, result.output, std::chrono::steady_clock::now() + timeout);
  ::close(fd);
  result.exit_code = reap(pid, result.timed_out);
  if (result.timed_out) result.output += "\n(killed after " + std::to_string(timeout.count()) + " ms)";
}

}  // namespace detail

// Runs argv[0] (looked up in PATH) with its stdout and stderr captured; posix_spawn, so it is safe beside
// running threads. A command still running after `timeout` is killed and says so.
inline CommandResult run_command(const std::vector<std::string>& argv,
                                 std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  CommandResult result;
  int fds[2];
  if (!detail::open_pipe(fds, result)) return result;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDERR_FILENO);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  std::vector<char*> args;
  for (const std::string& a : argv)
    args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  const int err = ::posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(fds[1]);
  if (err != 0) {
    ::close(fds[0]);
    result.exit_code = 127;
    result.output = argv[0] + ": " + std::strerror(err);
    return result;
  }
  detail::collect(pid, fds[0], timeout, result);
  return result;
}

// Moves the calling thread into the network namespace `ns` (a name under /run/netns, as `ip netns` makes)
// for this object's life, then back into the one it was in. Throws std::runtime_error naming the errno.
class InNetns {
 public:
  explicit InNetns(const std::string& ns) {
    home_ = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (home_ < 0)
      throw std::runtime_error("open /proc/thread-self/ns/net: " + std::string(std::strerror(errno)));
    const int target = ::open(("/run/netns/" + ns).c_str(), O_RDONLY | O_CLOEXEC);
    if (target < 0 || ::setns(target, CLONE_NEWNET) != 0) {
      const int e = errno;
      if (target >= 0) ::close(target);
      ::close(home_);
      throw std::runtime_error("enter network namespace " + ns + ": " + std::strerror(e));
    }
    ::close(target);
  }
  ~InNetns() {
    // Back where this thread came from; failing that the thread would stay in a namespace that is about to
    // go, and every later test in this process would be wrong, so stop here.
    if (::setns(home_, CLONE_NEWNET) != 0) std::abort();
    ::close(home_);
  }
  InNetns(const InNetns&) = delete;
  InNetns& operator=(const InNetns&) = delete;

 private:
  int home_ = -1;
};

// One shard on `cpu` for a host of a test: idle shards sleep, so that no test leaves a CPU spinning; a
// shutdown does not wait long for a task stuck on a cut link; and the test's thread keeps its capabilities,
// which `ip` (cutting the link, removing the namespaces) needs after the runtimes have started.
inline moirai::RuntimeOptions one_shard_on(int cpu) {
  moirai::RuntimeOptions o;
  o.drop_capabilities = moirai::CapabilityDrop::off;
  o.cpus = {cpu};
  o.idle = moirai::IdleStrategy::spin_then_sleep;
  o.shutdown_timeout = std::chrono::seconds(3);
  return o;
}

// A started Runtime whose shard threads live in `ns`.
inline std::unique_ptr<moirai::Runtime> start_runtime_in(const std::string& ns,
                                                         moirai::RuntimeOptions options) {
  InNetns in(ns);
  auto runtime = std::make_unique<moirai::Runtime>(std::move(options));
  runtime->start();
  return runtime;
}

// Forks a child that enters `ns` and returns fn(report)'s value as its exit code, with what fn wrote to
// `report` as output. No gtest assertion belongs in fn (it runs in another process): it reports through its
// value and text. A child still running after `timeout` is killed (timed_out); the child is always reaped.
// Fork from a process that runs no other thread yet (before any Runtime starts): a forked child of a
// threaded process may find a lock held forever, and TSan refuses threads in such a child.
inline CommandResult run_in_child(const std::string& ns, const std::function<int(std::string& report)>& fn,
                                  std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  CommandResult result;
  int fds[2];
  if (!detail::open_pipe(fds, result)) return result;
  const pid_t pid = ::fork();
  if (pid < 0) {
    result.output = std::string("fork: ") + std::strerror(errno);
    ::close(fds[0]);
    ::close(fds[1]);
    return result;
  }
  if (pid == 0) {
    ::close(fds[0]);
    std::string report;
    int code = 0;
    try {
      const int target = ::open(("/run/netns/" + ns).c_str(), O_RDONLY | O_CLOEXEC);
      if (target < 0 || ::setns(target, CLONE_NEWNET) != 0) {
        report = "enter network namespace " + ns + ": " + std::strerror(errno);
        code = 126;
      } else {
        code = fn(report);
      }
    } catch (const std::exception& e) {
      report += std::string("exception: ") + e.what();
      code = 125;
    }
    for (std::size_t done = 0; done < report.size();) {
      const ssize_t n = ::write(fds[1], report.data() + done, report.size() - done);
      if (n <= 0) break;
      done += static_cast<std::size_t>(n);
    }
    ::_exit(code);  // no atexit handlers, no gtest teardown in the child
  }
  ::close(fds[1]);
  detail::collect(pid, fds[0], timeout, result);
  return result;
}

class NetnsPair {
 public:
  struct Side {
    std::string ns;       // the namespace's name (/run/netns/NAME; `ip -n NAME ...`)
    std::string dev;      // its end of the veth pair
    std::string address;  // its IPv4 address, without the /24
  };
  static constexpr const char* kPrefix = "moirai-test-";

  NetnsPair() {
    if (::geteuid() != 0) {
      unavailable_ =
          "network namespaces need root (CAP_SYS_ADMIN and CAP_NET_ADMIN); this test runs as uid " +
          std::to_string(::geteuid()) + ": run it as root (sudo ctest ...)";
      return;
    }
    const CommandResult probe = run_command({"ip", "-V"});
    if (probe.exit_code != 0) {
      unavailable_ = "no working `ip` command (" + probe.output +
                     "): install iproute2 (scripts/setup does, or apt-get install iproute2)";
      return;
    }
    remove_stale();
    static int made = 0;  // pairs made by this process, so one test can make several
    const std::string pid = std::to_string(::getpid());
    const std::string k = std::to_string(made++);
    const std::string subnet = "10.231." + std::to_string(1 + ::getpid() % 250) + ".";
    a_ = Side{kPrefix + pid + "-" + k + "-a", "mv" + pid + "x" + k + "a", subnet + "1"};
    b_ = Side{kPrefix + pid + "-" + k + "-b", "mv" + pid + "x" + k + "b", subnet + "2"};
    const CommandResult add = run_command({"ip", "netns", "add", a_.ns});
    if (add.exit_code != 0) {
      unavailable_ = "`ip netns add` failed: " + add.output +
                     " -- network namespaces need CAP_SYS_ADMIN and CAP_NET_ADMIN and a writable /run/netns: "
                     "run as root on the host, or give the container --privileged "
                     "(or --cap-add SYS_ADMIN --cap-add NET_ADMIN)";
      return;
    }
    made_a_ = true;
    try {
      must({"ip", "netns", "add", b_.ns});
      made_b_ = true;
      must({"ip", "link", "add", a_.dev, "netns", a_.ns, "type", "veth", "peer", "name", b_.dev, "netns",
            b_.ns});
      for (const Side* s : {&a_, &b_}) {
        must({"ip", "-n", s->ns, "addr", "add", s->address + "/24", "dev", s->dev});
        must({"ip", "-n", s->ns, "link", "set", "lo", "up"});
        must({"ip", "-n", s->ns, "link", "set", s->dev, "up"});
        must({"ip", "-n", s->ns, "route", "replace", "224.0.0.0/4", "dev", s->dev});
      }
    } catch (const std::exception& e) {
      unavailable_ = std::string("could not lay out the two namespaces: ") + e.what() +
                     " -- a kernel without veth or network namespaces (CONFIG_VETH, CONFIG_NET_NS)?";
      remove();
    }
  }
  ~NetnsPair() { remove(); }
  NetnsPair(const NetnsPair&) = delete;
  NetnsPair& operator=(const NetnsPair&) = delete;

  // Empty when the pair is up; else why it is not, and the fix.
  const std::string& unavailable() const noexcept { return unavailable_; }
  const Side& a() const noexcept { return a_; }
  const Side& b() const noexcept { return b_; }

  // Cuts the link (`ip -n A link set DEV down`: A loses its routes over it and B's end loses carrier), or
  // restores it (up again, with A's multicast route, which the kernel dropped with the link). Throws
  // std::runtime_error with ip's words when ip fails.
  void set_link_up(bool up) {
    must({"ip", "-n", a_.ns, "link", "set", a_.dev, up ? "up" : "down"});
    if (up) must({"ip", "-n", a_.ns, "route", "replace", "224.0.0.0/4", "dev", a_.dev});
  }

  // Runs `ip ARGS...` inside side `s`'s namespace.
  CommandResult ip(const Side& s, std::vector<std::string> args) const {
    args.insert(args.begin(), {"ip", "-n", s.ns});
    return run_command(args);
  }

  // Namespaces of this prefix whose process (the pid in the name) is gone: a crashed run's leftovers.
  static void remove_stale() {
    DIR* d = ::opendir("/run/netns");
    if (d == nullptr) return;
    std::vector<std::string> stale;
    while (const dirent* e = ::readdir(d)) {
      const std::string name = e->d_name;
      if (name.rfind(kPrefix, 0) != 0) continue;
      const long pid = std::strtol(name.c_str() + std::strlen(kPrefix), nullptr, 10);
      if (pid > 0 && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) stale.push_back(name);
    }
    ::closedir(d);
    for (const std::string& name : stale)
      run_command({"ip", "netns", "del", name});  // its veth end goes with it
  }

 private:
  static void must(const std::vector<std::string>& argv) {
    const CommandResult r = run_command(argv);
    if (r.exit_code != 0) {
      std::string cmd;
      for (const std::string& a : argv)
        cmd.append(cmd.empty() ? "" : " ").append(a);
      throw std::runtime_error("`" + cmd + "` failed (exit " + std::to_string(r.exit_code) +
                               "): " + r.output);
    }
  }
  // Deleting a namespace destroys the veth end in it, and with it the pair.
  void remove() noexcept {
    if (made_b_) run_command({"ip", "netns", "del", b_.ns});
    if (made_a_) run_command({"ip", "netns", "del", a_.ns});
    made_a_ = made_b_ = false;
  }

  Side a_, b_;
  bool made_a_ = false, made_b_ = false;
  std::string unavailable_;
};

// The value of a task a host's runtime ran (Runtime::submit), or an error if it did not end within `limit`
// (a task stuck on the link), so that a test fails rather than hangs.
template <class T>
T within(std::future<T> f, std::chrono::seconds limit = std::chrono::seconds(20)) {
  if (f.wait_for(limit) != std::future_status::ready) throw std::runtime_error("a task across the link hung");
  return f.get();
}

}  // namespace moirai_test

// Skips the current test, naming why, when `pair` could not be made.
#define MOIRAI_SKIP_WITHOUT_NETNS(pair)                                                                   \
  do {                                                                                                    \
    if (!(pair).unavailable().empty()) GTEST_SKIP() << "two-host test skipped: " << (pair).unavailable(); \
  } while (0)
