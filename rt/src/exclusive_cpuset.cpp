#include "moirai/rt/exclusive_cpuset.hpp"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>

#include "failures.hpp"
#include "moirai/rt/error.hpp"
#include "sched_attr.hpp"
#include "sysfs.hpp"

namespace moirai::rt {
namespace {

// The parent-wide changes are shared by every per-CPU cpuset of this process: the first one makes them, the
// last one undoes them. Guarded by one mutex, taken for every create and release.
std::mutex g_parent_mutex;
bool g_load_balance_owned = false;     // v1: we set the parent's sched_load_balance to 0
bool g_subtree_control_owned = false;  // v2: we added +cpuset to the root's cgroup.subtree_control

std::string errno_text(int err) {
  return std::strerror(err);
}

[[noreturn]] void fail_write(int err, const std::string& path, const std::string& value, const char* fix) {
  throw RtError(err, "exclusive cpuset: writing '" + value + "' to " + path + " failed: " + errno_text(err) +
                         "; " + fix);
}

// v1 hierarchies may be mounted with `noprefix`; then the files lack the "cpuset." prefix.
std::string v1_file(const std::string& dir, const char* name) {
  const std::string prefixed = dir + "/cpuset." + name;
  if (::access(prefixed.c_str(), F_OK) == 0) return prefixed;
  return dir + "/" + name;
}

std::vector<std::string> per_cpu_dirs(const std::string& parent) {
  std::vector<std::string> out;
  if (DIR* d = ::opendir(parent.c_str())) {
    while (dirent* e = ::readdir(d)) {
      if (std::strncmp(e->d_name, ExclusiveCpuset::kNamePrefix, std::strlen(ExclusiveCpuset::kNamePrefix)) ==
          0)
        out.push_back(parent + "/" + e->d_name);
    }
    ::closedir(d);
  }
  return out;
}

// The cgroup directory (absolute) of thread `tid` in the hierarchy at `mount`.
std::string cgroup_of(pid_t tid, const CpusetMount& mount) {
  const std::string path = "/proc/" + std::to_string(tid) + "/task/" + std::to_string(tid) + "/cgroup";
  std::ifstream in(path);
  if (!in) throw RtError(ESRCH, "exclusive cpuset: cannot read " + path + " (no such thread?)");
  std::string line;
  while (std::getline(in, line)) {
    // "hierarchy-id:controller-list:path"
    const std::size_t a = line.find(':');
    const std::size_t b = a == std::string::npos ? a : line.find(':', a + 1);
    if (b == std::string::npos) continue;
    const std::string controllers = line.substr(a + 1, b - a - 1);
    const std::string rel = line.substr(b + 1);
    bool match = false;
    if (mount.version == CgroupVersion::v2) {
      match = line.compare(0, 3, "0::") == 0;
    } else {
      std::stringstream list(controllers);
      for (std::string c; std::getline(list, c, ',');)
        match = match || c == "cpuset";
    }
    if (match) return rel == "/" ? mount.path : mount.path + rel;
  }
  throw RtError(ENOENT,
                "exclusive cpuset: thread " + std::to_string(tid) + " is in no cpuset cgroup (" + path + ")");
}

const char* tasks_file(CgroupVersion v) {
  return v == CgroupVersion::v2 ? "/cgroup.threads" : "/tasks";
}

// v1: the parent's CPUs that no per-CPU cpuset holds go to the rest cpuset, load-balanced together, so that
// turning the parent's balancing off does not leave them without load balancing. No tasks are moved there:
// sched domains follow the cpusets' CPU sets, not their tasks.
int update_rest_v1(const std::string& parent) {
  cpu_set_t rest;
  const auto parent_cpus = detail::read_line(v1_file(parent, "effective_cpus"));
  if (!parent_cpus || !detail::parse_cpu_list(*parent_cpus, rest)) return EIO;
  for (const std::string& dir : per_cpu_dirs(parent)) {
    cpu_set_t held;
    const auto cpus = detail::read_line(v1_file(dir, "cpus"));
    if (cpus && detail::parse_cpu_list(*cpus, held)) CPU_XOR(&rest, &rest, &held);
  }
  const std::string rest_dir = parent + "/" + ExclusiveCpuset::kRestName;
  if (CPU_COUNT(&rest) == 0 || per_cpu_dirs(parent).empty()) {
    if (::rmdir(rest_dir.c_str()) != 0 && errno != ENOENT) return errno;
    return 0;
  }
  if (::mkdir(rest_dir.c_str(), 0755) != 0 && errno != EEXIST) return errno;
  if (const auto mems = detail::read_line(v1_file(parent, "mems")); mems) {
    if (const int err = detail::write_value(v1_file(rest_dir, "mems"), *mems); err != 0) return err;
  }
  return detail::write_value(v1_file(rest_dir, "cpus"), detail::format_cpu_list(rest));
}

}  // namespace

CpusetMount find_cpuset_mount() {
  std::ifstream in("/proc/self/mountinfo");
  CpusetMount v2;
  for (std::string line; std::getline(in, line);) {
    // "id parent major:minor root mount-point options [optional fields] - fstype source super-options"
    const std::size_t dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    std::stringstream head(line.substr(0, dash));
    std::string id, parent, dev, root, mount_point;
    head >> id >> parent >> dev >> root >> mount_point;
    std::stringstream tail(line.substr(dash + 3));
    std::string fstype, source, options;
    tail >> fstype >> source >> options;
    if (fstype == "cgroup") {
      std::stringstream list(options);
      for (std::string o; std::getline(list, o, ',');) {
        if (o == "cpuset") return {CgroupVersion::v1, mount_point};
      }
    } else if (fstype == "cgroup2" && v2.version == CgroupVersion::none) {
      const auto controllers = detail::read_line(mount_point + "/cgroup.controllers");
      if (controllers && (" " + *controllers + " ").find(" cpuset ") != std::string::npos)
        v2 = {CgroupVersion::v2, mount_point};
    }
  }
  return v2;
}

ExclusiveCpuset ExclusiveCpuset::create(int cpu) {
  const CpusetMount mount = find_cpuset_mount();
  if (mount.version == CgroupVersion::none) {
    throw RtError(
        ENOTSUP,
        "exclusive cpuset: no cpuset controller is mounted (neither a cgroup v1 cpuset hierarchy nor a "
        "cgroup2 mount offering cpuset); mount one, or allow admission control off instead");
  }
  const std::string& parent = mount.path;
  cpu_set_t parent_cpus;
  const auto parent_list = mount.version == CgroupVersion::v1
                               ? detail::read_line(v1_file(parent, "effective_cpus"))
                               : detail::read_line(parent + "/cpuset.cpus.effective");
  if (!parent_list || !detail::parse_cpu_list(*parent_list, parent_cpus) || cpu < 0 || cpu >= CPU_SETSIZE ||
      !CPU_ISSET(cpu, &parent_cpus)) {
    throw RtError(EINVAL, "exclusive cpuset: CPU " + std::to_string(cpu) + " is not among " + parent +
                              "'s CPUs (" + parent_list.value_or("unreadable") + ")");
  }
  if (mount.version == CgroupVersion::v2) {
    // A thread can only move within its process's threaded subtree; this route makes the root cgroup that
    // subtree's domain, so the process has to live there.
    const std::string own = cgroup_of(detail::gettid(), mount);
    if (own != parent) {
      throw RtError(ENOTSUP,
                    "exclusive cpuset (cgroup v2): the process is in " + own +
                        ", not the root cgroup; one thread can only move within its own threaded subtree. "
                        "Prepare a partition with scripts/rt-cpuset, or allow admission control off");
    }
  }

  // `self` is declared before the lock: if set-up throws, the lock is let go first and then ~ExclusiveCpuset
  // (which takes it) undoes what was done.
  ExclusiveCpuset self;
  std::unique_lock lock(g_parent_mutex);
  const std::string dir = parent + "/" + kNamePrefix + std::to_string(cpu);
  if (::mkdir(dir.c_str(), 0755) != 0) {
    const int err = errno;
    throw RtError(
        err,
        "exclusive cpuset: mkdir " + dir + ": " + errno_text(err) +
            (err == EEXIST ? "; another process or an earlier run holds it (scripts/rt-cpuset teardown " +
                                 std::to_string(cpu) + " removes it)"
                           : ""));
  }
  self.mount_ = mount;
  self.path_ = dir;
  self.cpu_ = cpu;
  try {
    self.set_up_locked();
  } catch (...) {
    lock.unlock();
    throw;
  }
  return self;
}

ExclusiveCpuset ExclusiveCpuset::adopt(int cpu) {
  const CpusetMount mount = find_cpuset_mount();
  const std::string dir = mount.path + "/" + kNamePrefix + std::to_string(cpu);
  const std::string cpus_file =
      mount.version == CgroupVersion::v1 ? v1_file(dir, "cpus") : dir + "/cpuset.cpus";
  const auto cpus = detail::read_line(cpus_file);
  if (mount.version == CgroupVersion::none || !cpus) {
    throw RtError(ENOENT, "exclusive cpuset: no prepared cpuset " + dir + " (scripts/rt-cpuset setup " +
                              std::to_string(cpu) + " makes one)");
  }
  if (*cpus != std::to_string(cpu)) {
    throw RtError(
        EINVAL, "exclusive cpuset: " + cpus_file + " holds '" + *cpus + "', not CPU " + std::to_string(cpu));
  }
  ExclusiveCpuset self;
  self.mount_ = mount;
  self.path_ = dir;
  self.cpu_ = cpu;
  self.owned_ = false;
  return self;
}

void ExclusiveCpuset::set_up_locked() {
  const std::string& parent = mount_.path;
  const std::string& dir = path_;
  const std::string cpu_text = std::to_string(cpu_);
  if (mount_.version == CgroupVersion::v1) {
    const std::string cpus = v1_file(dir, "cpus");
    if (const int err = detail::write_value(cpus, cpu_text); err != 0)
      fail_write(err, cpus, cpu_text, "the CPU may be held by another exclusive cpuset");
    const std::string mems = v1_file(dir, "mems");
    const std::string parent_mems = detail::read_line(v1_file(parent, "mems")).value_or("0");
    if (const int err = detail::write_value(mems, parent_mems); err != 0)
      fail_write(err, mems, parent_mems, "check the parent's cpuset.mems");
    // Shrink the rest cpuset before claiming exclusivity: an exclusive cpuset may not overlap any sibling.
    if (const int err = update_rest_v1(parent); err != 0)
      fail_write(err, parent + "/" + kRestName, "(the parent's other CPUs)", "check the parent's cpuset");
    const std::string exclusive = v1_file(dir, "cpu_exclusive");
    if (const int err = detail::write_value(exclusive, "1"); err != 0)
      fail_write(err, exclusive, "1",
                 "another cpuset overlaps this CPU; scripts/rt-cpuset status shows them");
    const std::string balance = v1_file(parent, "sched_load_balance");
    if (detail::read_line(balance).value_or("1") == "1") {
      if (const int err = detail::write_value(balance, "0"); err != 0)
        fail_write(err, balance, "0",
                   "the parent's load balancing must be off for its children to get own domains");
      g_load_balance_owned = true;
    }
  } else {
    const std::string subtree = parent + "/cgroup.subtree_control";
    const auto enabled = detail::read_line(subtree).value_or("");
    if ((" " + enabled + " ").find(" cpuset ") == std::string::npos) {
      if (const int err = detail::write_value(subtree, "+cpuset"); err != 0)
        fail_write(err, subtree, "+cpuset", "enable the cpuset controller for the root's children");
      g_subtree_control_owned = true;
    }
    const std::pair<const char*, std::string> writes[] = {
        {"/cgroup.type", "threaded"}, {"/cpuset.cpus", cpu_text}, {"/cpuset.cpus.partition", "root"}};
    for (const auto& [file, value] : writes) {
      if (const int err = detail::write_value(dir + file, value); err != 0)
        fail_write(err, dir + file, value, "this kernel may not accept a threaded partition root");
    }
    const std::string state = detail::read_line(dir + "/cpuset.cpus.partition").value_or("?");
    if (state != "root") {
      throw RtError(EINVAL, "exclusive cpuset (cgroup v2): " + dir + "/cpuset.cpus.partition reads '" +
                                state + "', not 'root'; the CPU may be in use by a sibling partition");
    }
  }
}

ExclusiveCpuset::ExclusiveCpuset(ExclusiveCpuset&& other) noexcept
    : mount_(std::move(other.mount_)),
      path_(std::move(other.path_)),
      cpu_(other.cpu_),
      owned_(other.owned_),
      members_(std::move(other.members_)) {
  other.path_.clear();
  other.members_.clear();
}

ExclusiveCpuset& ExclusiveCpuset::operator=(ExclusiveCpuset&& other) noexcept {
  if (this != &other) {
    detail::Failures ignored;  // as in the destructor
    release(ignored);
    mount_ = std::move(other.mount_);
    path_ = std::move(other.path_);
    cpu_ = other.cpu_;
    owned_ = other.owned_;
    members_ = std::move(other.members_);
    other.path_.clear();
    other.members_.clear();
  }
  return *this;
}

ExclusiveCpuset::~ExclusiveCpuset() {
  detail::Failures ignored;  // a destructor cannot report: call release() first to learn what failed
  release(ignored);
}

void ExclusiveCpuset::attach(pid_t tid) {
  if (!active()) throw RtError(EINVAL, "exclusive cpuset: attach after release");
  const pid_t target = tid == 0 ? detail::gettid() : tid;
  Member member{target, cgroup_of(target, mount_), {}};
  CPU_ZERO(&member.old_affinity);
  if (::sched_getaffinity(target, sizeof member.old_affinity, &member.old_affinity) != 0) {
    const int err = errno;
    throw RtError(err,
                  "exclusive cpuset: sched_getaffinity(" + std::to_string(target) + "): " + errno_text(err));
  }
  const std::string file = path_ + tasks_file(mount_.version);
  if (const int err = detail::write_value(file, std::to_string(target)); err != 0) {
    fail_write(err, file, std::to_string(target), "the thread may have exited, or be a kernel thread");
  }
  members_.push_back(std::move(member));
}

void ExclusiveCpuset::detach(pid_t tid) {
  detail::Failures failures;
  detach(tid, failures);
  failures.throw_if_any("exclusive cpuset " + path_ + ": detaching thread " + std::to_string(tid));
}

void ExclusiveCpuset::detach(pid_t tid, detail::Failures& failures) noexcept {
  const pid_t target = tid == 0 ? detail::gettid() : tid;
  try {
    for (auto it = members_.begin(); it != members_.end(); ++it) {
      if (it->tid != target) continue;
      const std::string file = it->old_cgroup + tasks_file(mount_.version);
      int err = detail::write_value(file, std::to_string(target));
      if (err != 0 && err != ESRCH) {
        failures.add(err,
                     "moving thread " + std::to_string(target) + " back to " + file + ": " + errno_text(err));
      }
      // Leaving the cpuset reset the affinity to the old cpuset's CPUs; put back the pinning it had. The
      // kernel refuses (EBUSY) for a thread still on SCHED_DEADLINE, whose affinity must span its root
      // domain.
      if (err == 0 && ::sched_setaffinity(target, sizeof it->old_affinity, &it->old_affinity) != 0 &&
          errno != ESRCH) {
        err = errno;
        failures.add(err, "restoring thread " + std::to_string(target) + "'s affinity: " + errno_text(err));
      }
      members_.erase(it);
      break;
    }
  } catch (...) {
    failures.add(ENOMEM, "out of memory while detaching");
  }
}

void ExclusiveCpuset::release() {
  if (!active()) return;
  const std::string path = path_;
  detail::Failures failures;
  release(failures);
  failures.throw_if_any("exclusive cpuset " + path + ": releasing it");
}

void ExclusiveCpuset::release(detail::Failures& failures) noexcept {
  if (!active()) return;
  try {
    while (!members_.empty())
      detach(members_.back().tid, failures);
    if (!owned_) {
      path_.clear();
      return;
    }
    std::lock_guard lock(g_parent_mutex);
    if (::rmdir(path_.c_str()) != 0 && errno != ENOENT) {
      const int err = errno;
      failures.add(err,
                   "rmdir " + path_ + ": " + errno_text(err) + " (threads still inside? see its tasks file)");
    }
    const std::string& parent = mount_.path;
    const bool last = per_cpu_dirs(parent).empty();
    if (mount_.version == CgroupVersion::v1) {
      if (const int err = update_rest_v1(parent); err != 0)
        failures.add(err, "updating " + parent + "/" + kRestName + ": " + errno_text(err));
      if (last && g_load_balance_owned) {
        const std::string balance = v1_file(parent, "sched_load_balance");
        if (const int err = detail::write_value(balance, "1"); err != 0) {
          failures.add(err, "restoring " + balance + " to 1: " + errno_text(err));
        } else {
          g_load_balance_owned = false;
        }
      }
    } else if (last && g_subtree_control_owned) {
      const std::string subtree = parent + "/cgroup.subtree_control";
      if (const int err = detail::write_value(subtree, "-cpuset"); err != 0) {
        failures.add(err, "writing -cpuset to " + subtree + ": " + errno_text(err));
      } else {
        g_subtree_control_owned = false;
      }
    }
  } catch (...) {
    failures.add(ENOMEM, "out of memory while releasing");
  }
  path_.clear();
}

}  // namespace moirai::rt
