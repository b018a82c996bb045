#include "sysfs.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <utility>
#include <vector>

#include "moirai/base/cpu_list.hpp"

namespace moirai::rt::detail {

std::optional<std::string> read_line(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    if (errno == 0) errno = ENOENT;
    return std::nullopt;
  }
  std::string line;
  std::getline(in, line);
  while (!line.empty() && (line.back() == '\n' || line.back() == ' ' || line.back() == '\r'))
    line.pop_back();
  return line;
}

int write_value(const std::string& path, const std::string& value) noexcept {
  // One write(2) of the whole value: cgroup and sysctl files act on each write, and report the kernel's
  // refusal as that write's errno, which a buffered stream would hide until close.
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  const ssize_t n = ::write(fd, value.data(), value.size());
  const int err = n < 0 ? errno : (static_cast<std::size_t>(n) == value.size() ? 0 : EIO);
  ::close(fd);
  return err;
}

bool parse_cpu_list(std::string_view text, cpu_set_t& out) {
  CPU_ZERO(&out);
  const cpu_list::Parsed parsed = cpu_list::parse(text, CPU_SETSIZE - 1);
  for (int cpu : parsed.ids)
    CPU_SET(cpu, &out);
  return parsed.ok();
}

std::string format_cpu_list(const cpu_set_t& set) {
  std::vector<int> cpus;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
  }
  return cpu_list::format(std::move(cpus));
}

}  // namespace moirai::rt::detail
