#include "sysfs.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <fstream>

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

bool parse_cpu_list(const std::string& text, cpu_set_t& out) noexcept {
  CPU_ZERO(&out);
  const char* p = text.data();
  const char* const end = p + text.size();
  // One CPU number, digits only: from_chars alone would take "-0" for CPU 0.
  const auto number = [end](const char*& at, int& value) noexcept {
    if (at == end || *at < '0' || *at > '9') return false;
    const auto [next, ec] = std::from_chars(at, end, value);
    at = next;
    return ec == std::errc() && value < CPU_SETSIZE;
  };
  if (p == end) return true;  // the empty set, as an empty cpuset file holds it
  for (;;) {
    int first = 0;
    if (!number(p, first)) return false;
    int last = first;
    if (p < end && *p == '-' && (!number(++p, last) || last < first)) return false;
    for (int c = first; c <= last; ++c)
      CPU_SET(c, &out);
    if (p == end) return true;
    if (*p != ',') return false;
    ++p;  // an item must follow: "1," is not a list
  }
}

std::string format_cpu_list(const cpu_set_t& set) {
  std::string out;
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (!CPU_ISSET(c, &set)) continue;
    int last = c;
    while (last + 1 < CPU_SETSIZE && CPU_ISSET(last + 1, &set))
      ++last;
    if (!out.empty()) out += ',';
    out += std::to_string(c);
    if (last > c) out += '-' + std::to_string(last);
    c = last;
  }
  return out;
}

}  // namespace moirai::rt::detail
