// The clock source behind clock_gettime, which every timer and measurement reads.
#include "checks.hpp"

namespace moirai::cli::doctor {

DoctorCheck check_clocksource(const Context& c) {
  const std::string dir = "sys/devices/system/clocksource/clocksource0/";
  const std::optional<std::string> current = c.tree.line(dir + "current_clocksource");
  if (!current) {
    return make("clocksource", DoctorStatus::warn, "no current_clocksource: the clock source is unknown",
                "check that sysfs is mounted at /sys");
  }
  const std::string available = c.tree.line(dir + "available_clocksource").value_or("");
  const std::string found =
      "clocksource " + *current + (available.empty() ? "" : " (available: " + available + ")");
  if (*current == "tsc" || *current == "arch_sys_counter") {
    return make("clocksource", DoctorStatus::pass, found + ": clock_gettime reads it in user space");
  }
  const bool tsc = (" " + available + " ").find(" tsc ") != std::string::npos;
  const std::string fix =
      tsc ? "echo tsc | sudo tee /sys/devices/system/clocksource/clocksource0/current_clocksource "
            "(and clocksource=tsc" +
                std::string(kGrub) + ")"
          : "add clocksource=tsc tsc=reliable" + std::string(kGrub) +
                ", if the CPU's TSC is invariant (constant_tsc nonstop_tsc in /proc/cpuinfo)";
  if (*current == "hpet" || *current == "acpi_pm" || current->find("jiffies") != std::string::npos) {
    return make("clocksource", DoctorStatus::fail,
                found + ": every clock_gettime is a system call reading slow hardware, a microsecond or more",
                fix);
  }
  return make("clocksource", DoctorStatus::warn,
              found + ": readable from user space, but it follows the hypervisor's clock, not the CPU's",
              fix);
}

}  // namespace moirai::cli::doctor
