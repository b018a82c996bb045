// A cpuset holding exactly one CPU, exclusive and load-balanced on its own, so that the CPU becomes its own
// scheduler root domain. That is what SCHED_DEADLINE needs for a thread pinned to that CPU: the kernel admits
// a deadline thread only if its affinity covers its whole root domain (else it could not account the thread's
// bandwidth), so a thread pinned to one CPU of a bigger root domain gets EPERM.
//
// cgroup v1: <cpuset>/moirai-rt-cpu<N> with cpuset.cpus = N, cpu_exclusive = 1; a sibling
// <cpuset>/moirai-rt-rest holds the parent's other CPUs with sched_load_balance = 1 so that they keep load
// balancing among themselves; then the parent's sched_load_balance is set to 0, which is what makes the
// kernel rebuild the root domains along the children. One thread is moved by writing its id to `tasks`.
// cgroup v2: <root>/moirai-rt-cpu<N> made `threaded` (only a threaded cgroup can take one thread of a
// process) with cpuset.cpus = N and cpuset.cpus.partition = root. That needs the process in the root cgroup
// and a kernel that accepts a threaded partition root.
//
// Everything done is undone by release() (and the destructor), in reverse order. The parent-wide changes
// (sched_load_balance, the rest cpuset, v2's subtree_control) are shared by every per-CPU cpuset of this
// process and undone with the last one.
#pragma once

#include <sched.h>
#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace moirai::rt {

namespace detail {
class Failures;
}

enum class CgroupVersion : std::uint8_t { none, v1, v2 };

struct CpusetMount {
  CgroupVersion version = CgroupVersion::none;
  std::string path;  // the hierarchy's mount point, e.g. /sys/fs/cgroup/cpuset (v1) or /sys/fs/cgroup (v2)
};

// From /proc/self/mountinfo: the v1 hierarchy with the cpuset controller, else a v2 mount offering "cpuset"
// in cgroup.controllers, else version none.
CpusetMount find_cpuset_mount();

class ExclusiveCpuset {
 public:
  static constexpr const char* kNamePrefix = "moirai-rt-cpu";
  static constexpr const char* kRestName = "moirai-rt-rest";

  // Creates the cpuset for `cpu`. Throws RtError naming the cause and the fix: no cpuset controller
  // (ENOTSUP), the directory already exists (EEXIST: another run left it; scripts/rt-cpuset teardown), the
  // CPU is not in the parent's set (EINVAL), or a write the kernel refused (its errno).
  static ExclusiveCpuset create(int cpu);
  // Uses a cpuset for `cpu` that already exists (made by scripts/rt-cpuset setup, perhaps at boot, so that
  // the service itself needs no right to reshape cpusets). release() then only moves threads out; the cpuset
  // and the parent's settings stay as the script left them. Throws RtError(ENOENT) when there is none.
  static ExclusiveCpuset adopt(int cpu);

  ExclusiveCpuset(ExclusiveCpuset&& other) noexcept;
  ExclusiveCpuset& operator=(ExclusiveCpuset&& other) noexcept;
  ExclusiveCpuset(const ExclusiveCpuset&) = delete;
  ExclusiveCpuset& operator=(const ExclusiveCpuset&) = delete;
  ~ExclusiveCpuset();

  // Moves thread `tid` (0: the calling thread) in, remembering its cpuset and affinity. Throws RtError.
  void attach(pid_t tid);
  // Moves it back where it came from and restores its affinity. Throws RtError naming every step that failed
  // (its code: the errno of the first); the thread is forgotten either way.
  void detach(pid_t tid);
  // Detaches every thread still attached, removes the cpuset, updates or removes the rest cpuset and restores
  // the parent's sched_load_balance, going on past a step that fails. Idempotent. Throws RtError naming every
  // step that failed (its code: the errno of the first); the cpuset is released either way. The destructor
  // releases too, silently.
  void release();

  int cpu() const noexcept { return cpu_; }
  const std::string& path() const noexcept { return path_; }
  bool active() const noexcept { return !path_.empty(); }

 private:
  struct Member {
    pid_t tid;
    std::string old_cgroup;  // absolute directory of the cpuset the thread came from
    cpu_set_t old_affinity;
  };

  ExclusiveCpuset() = default;
  void set_up_locked();  // the writes after mkdir; called with the parent mutex held
  // detach() and release(), noting what fails in `failures` instead of throwing.
  void detach(pid_t tid, detail::Failures& failures) noexcept;
  void release(detail::Failures& failures) noexcept;
  friend void release_deadline_routes();

  CpusetMount mount_;
  std::string path_;  // empty once released
  int cpu_ = -1;
  bool owned_ = true;  // created here, so removed by release(); false when adopted
  std::vector<Member> members_;
};

}  // namespace moirai::rt
