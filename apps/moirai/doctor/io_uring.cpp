// io_uring: whether the kernel lets this process use it, and whether it has every opcode Moirai submits.
#include <sstream>

#include "checks.hpp"

namespace moirai::cli {

const std::vector<IoUringOpcode>& moirai_io_uring_opcodes() {
  static const std::vector<IoUringOpcode> ops = {
      {io::Op::nop, nullptr},
      {io::Op::read, nullptr},
      {io::Op::write, nullptr},
      {io::Op::send, nullptr},
      {io::Op::recv, nullptr},
      {io::Op::sendmsg, nullptr},
      {io::Op::recvmsg, nullptr},
      {io::Op::accept, nullptr},
      {io::Op::connect, nullptr},
      {io::Op::close, nullptr},
      {io::Op::shutdown, nullptr},
      {io::Op::link_timeout, nullptr},
      {io::Op::async_cancel, nullptr},
      {io::Op::msg_ring, "a sleeping shard is woken through an eventfd, a write per wake"},
      {io::Op::poll_add,
       "an IPC peer's exit is checked with kill(pid, 0) each millisecond instead of a pidfd poll"},
      {io::Op::send_zc, "sends from a SendBufferPool copy into the socket (plain IORING_OP_SEND)"},
      {io::Op::futex_wait,
       "a sleeping IPC reader is woken through a FIFO it polls, a write per wake, instead of a futex"},
  };
  return ops;
}

namespace doctor {
namespace {

// Whether the process whose status is at proc/self/status is in group `gid` (effective or supplementary).
bool in_group(const Tree& tree, long long gid) {
  const std::optional<std::string> status = tree.read("proc/self/status");
  if (!status) return false;
  std::istringstream lines(*status);
  for (std::string line; std::getline(lines, line);) {
    const bool gid_line = line.rfind("Gid:", 0) == 0, groups_line = line.rfind("Groups:", 0) == 0;
    if (!gid_line && !groups_line) continue;
    std::istringstream fields(line.substr(line.find(':') + 1));
    long long g = 0;
    for (int i = 0; fields >> g; ++i) {
      if (g == gid && (groups_line || i == 1)) return true;  // Gid: real, effective, saved, fs
    }
  }
  return false;
}

}  // namespace

DoctorCheck check_io_uring_disabled(const Context& c) {
  const std::optional<long long> v = read_integer(c.tree, "proc/sys/kernel/io_uring_disabled");
  if (!v) {
    return make("io_uring_disabled", DoctorStatus::pass,
                "no kernel.io_uring_disabled (a kernel before 6.6: io_uring is open to every process)");
  }
  const std::string value = "kernel.io_uring_disabled = " + std::to_string(*v);
  const std::string fix = "sudo sysctl -w kernel.io_uring_disabled=0 (and in /etc/sysctl.d/ to keep it)";
  if (*v == 0) return make("io_uring_disabled", DoctorStatus::pass, value);
  if (*v == 1) {
    const long long gid = read_integer(c.tree, "proc/sys/kernel/io_uring_group").value_or(-1);
    const std::string group = "kernel.io_uring_group = " + std::to_string(gid);
    if (gid >= 0 && in_group(c.tree, gid)) {
      return make("io_uring_disabled", DoctorStatus::warn,
                  value + ": io_uring only for CAP_SYS_ADMIN and " + group +
                      ", which this process is in; a service under another user is refused",
                  fix + ", or add the service's user to group " + std::to_string(gid));
    }
    return make(
        "io_uring_disabled", DoctorStatus::fail,
        value + ": io_uring only for CAP_SYS_ADMIN and " + group +
            ", which this process is not in: Moirai cannot set up a ring unless it runs as root",
        fix + (gid >= 0 ? ", or add the service's user to group " + std::to_string(gid) : std::string()));
  }
  return make("io_uring_disabled", DoctorStatus::fail, value + ": io_uring is refused to every process", fix);
}

DoctorCheck check_io_uring_opcodes(const Context& c) {
  if (!c.host.io_uring_probe) {
    return make("io_uring_opcodes", DoctorStatus::warn,
                "not probed: the opcode probe asks this host's kernel, and --root points at another tree",
                "run `moirai doctor` on the host itself");
  }
  const std::optional<std::bitset<256>> ops = c.host.io_uring_probe();
  if (!ops) {
    return make(
        "io_uring_opcodes", DoctorStatus::fail,
        "io_uring cannot be used here: the opcode probe failed (no io_uring in this kernel, "
        "kernel.io_uring_disabled, or a seccomp filter)",
        "run on Linux 6.1 or newer with io_uring allowed (see io_uring_disabled; in a container, allow "
        "io_uring_setup, io_uring_enter and io_uring_register in its seccomp profile)");
  }
  std::vector<std::string> required, optional;
  for (const IoUringOpcode& op : moirai_io_uring_opcodes()) {
    if (ops->test(static_cast<std::size_t>(op.opcode))) continue;
    if (op.fallback == nullptr) {
      required.push_back(io::to_string(op.opcode));
    } else {
      optional.push_back(std::string(io::to_string(op.opcode)) + " (without it " + op.fallback + ")");
    }
  }
  const std::string fix = "run on Linux 6.7 or newer, where every opcode Moirai uses exists";
  if (!required.empty()) {
    return make("io_uring_opcodes", DoctorStatus::fail,
                "the kernel lacks " + join(required, ", ") + ", which Moirai needs" +
                    (optional.empty() ? "" : "; and " + join(optional, "; ")),
                fix);
  }
  if (!optional.empty())
    return make("io_uring_opcodes", DoctorStatus::warn, "the kernel lacks " + join(optional, "; "), fix);
  return make(
      "io_uring_opcodes", DoctorStatus::pass,
      "all " + std::to_string(moirai_io_uring_opcodes().size()) + " opcodes Moirai submits are supported");
}

}  // namespace doctor
}  // namespace moirai::cli
