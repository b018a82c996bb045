#include "checks.hpp"

#include <exception>

#include "moirai/core/cpu_set.hpp"
#include "moirai/core/error.hpp"

namespace moirai::cli::doctor {

std::optional<long long> parse_integer(const std::string& text) {
  try {
    std::size_t used = 0;
    const long long v = std::stoll(text, &used, 0);
    if (used != text.size()) return std::nullopt;
    return v;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::optional<long long> read_integer(const Tree& tree, const std::string& relative) {
  std::optional<std::string> text = tree.line(relative);
  return text ? parse_integer(*text) : std::nullopt;
}

std::optional<Cpus> try_parse_cpus(const std::string& text) {
  try {
    return parse_cpu_list(text);
  } catch (const Error&) {
    return std::nullopt;
  }
}

Cpus minus(const Cpus& a, const Cpus& b) {
  Cpus out;
  std::set_difference(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(out));
  return out;
}

Cpus intersect(const Cpus& a, const Cpus& b) {
  Cpus out;
  std::set_intersection(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(out));
  return out;
}

std::string cpus_text(const Cpus& cpus) {
  return cpus.empty() ? std::string("none") : format_cpu_list(cpus);
}

std::string cpu_dir(int cpu) {
  return "sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/";
}

std::string join(const std::vector<std::string>& parts, const char* sep) {
  std::string out;
  for (const std::string& p : parts) {
    if (p.empty()) continue;
    if (!out.empty()) out += sep;
    out += p;
  }
  return out;
}

DoctorStatus worse(DoctorStatus a, DoctorStatus b) {
  return static_cast<int>(a) > static_cast<int>(b) ? a : b;
}

DoctorCheck make(const char* id, DoctorStatus status, std::string found, std::string fix) {
  return DoctorCheck{id, status, std::move(found),
                     status == DoctorStatus::pass ? std::string() : std::move(fix)};
}

Cpus read_online(const Tree& tree) {
  const std::optional<std::string> text = tree.line("sys/devices/system/cpu/online");
  std::optional<Cpus> cpus = text ? try_parse_cpus(*text) : std::nullopt;
  return cpus.value_or(Cpus{});
}

}  // namespace moirai::cli::doctor
