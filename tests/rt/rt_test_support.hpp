// Helpers for the tests that change a real thread's scheduling or the machine's scheduler state.
//  - SleepyThread: a short-lived thread that only sleeps (on a future) until the test ends it. With 2 CPUs a
//    SCHED_FIFO / RR / DEADLINE thread must never spin; this one never runs after it has started.
//  - SchedStateLock: an flock held for the whole test by every test that changes or depends on machine-wide
//    scheduler state (kernel.sched_rt_runtime_us, cpusets), so that ctest -j cannot interleave two of them.
//  - SchedStateGuard: snapshots kernel.sched_rt_runtime_us and the cpuset root's sched_load_balance, and puts
//    them back (and removes any moirai-rt-* cpuset left behind) when the test ends, pass or fail.
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <future>
#include <string>
#include <thread>

#include "moirai/rt/error.hpp"
#include "moirai/rt/exclusive_cpuset.hpp"
#include "moirai/rt/thread_policy.hpp"

namespace moirai::rt::test {

inline std::string read_first_line(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

inline bool write_text(const std::string& path, const std::string& value) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = ::write(fd, value.data(), value.size()) == static_cast<ssize_t>(value.size());
  ::close(fd);
  return ok;
}

inline constexpr const char* kRtRuntime = "/proc/sys/kernel/sched_rt_runtime_us";

// The highest CPU this process may run on: the one a pinned test thread uses.
inline int test_cpu() {
  cpu_set_t set;
  CPU_ZERO(&set);
  sched_getaffinity(0, sizeof set, &set);
  for (int c = CPU_SETSIZE - 1; c >= 0; --c) {
    if (CPU_ISSET(c, &set)) return c;
  }
  return 0;
}

class SleepyThread {
 public:
  explicit SleepyThread(int pin_cpu = -1) {
    std::promise<pid_t> started;
    std::future<pid_t> tid = started.get_future();
    thread_ = std::thread([this, pin_cpu, started = std::move(started)]() mutable {
      if (pin_cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(pin_cpu, &set);
        sched_setaffinity(0, sizeof set, &set);
      }
      started.set_value(static_cast<pid_t>(::syscall(SYS_gettid)));
      stop_.get_future().wait();
    });
    tid_ = tid.get();
  }
  ~SleepyThread() {
    stop_.set_value();
    thread_.join();
  }
  SleepyThread(const SleepyThread&) = delete;
  SleepyThread& operator=(const SleepyThread&) = delete;

  pid_t tid() const noexcept { return tid_; }

 private:
  std::promise<void> stop_;
  std::thread thread_;
  pid_t tid_ = 0;
};

class SchedStateLock {
 public:
  SchedStateLock() : fd_(::open("/tmp/moirai-rt-sched-state.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0666)) {
    if (fd_ >= 0) ::flock(fd_, LOCK_EX);
  }
  ~SchedStateLock() {
    if (fd_ >= 0) ::close(fd_);  // closing releases the lock
  }
  SchedStateLock(const SchedStateLock&) = delete;
  SchedStateLock& operator=(const SchedStateLock&) = delete;

 private:
  int fd_;
};

class SchedStateGuard {
 public:
  SchedStateGuard() : rt_runtime_(read_first_line(kRtRuntime)), mount_(find_cpuset_mount()) {
    if (mount_.version == CgroupVersion::v1)
      load_balance_ = read_first_line(mount_.path + "/cpuset.sched_load_balance");
  }
  ~SchedStateGuard() {
    try {
      release_deadline_routes();
    } catch (const RtError&) {  // what is left is put back below
    }
    if (read_first_line(kRtRuntime) != rt_runtime_) write_text(kRtRuntime, rt_runtime_);
    if (mount_.version == CgroupVersion::none) return;
    // Anything left in a moirai-rt-* cpuset goes back to the root before the directory is removed.
    if (DIR* d = ::opendir(mount_.path.c_str())) {
      while (dirent* e = ::readdir(d)) {
        if (std::strncmp(e->d_name, "moirai-rt-", 10) != 0) continue;
        const std::string dir = mount_.path + "/" + e->d_name;
        const char* tasks = mount_.version == CgroupVersion::v2 ? "/cgroup.threads" : "/tasks";
        std::ifstream in(dir + tasks);
        for (std::string tid; std::getline(in, tid);)
          write_text(mount_.path + tasks, tid);
        ::rmdir(dir.c_str());
      }
      ::closedir(d);
    }
    if (!load_balance_.empty() &&
        read_first_line(mount_.path + "/cpuset.sched_load_balance") != load_balance_)
      write_text(mount_.path + "/cpuset.sched_load_balance", load_balance_);
  }
  SchedStateGuard(const SchedStateGuard&) = delete;
  SchedStateGuard& operator=(const SchedStateGuard&) = delete;

  const std::string& rt_runtime() const noexcept { return rt_runtime_; }
  const CpusetMount& mount() const noexcept { return mount_; }
  const std::string& load_balance() const noexcept { return load_balance_; }

 private:
  SchedStateLock lock_;  // first member: held before the snapshot, released after the restore
  std::string rt_runtime_;
  CpusetMount mount_;
  std::string load_balance_;
};

}  // namespace moirai::rt::test
