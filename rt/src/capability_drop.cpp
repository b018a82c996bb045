#include "moirai/rt/capability_drop.hpp"

#include <sys/capability.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <memory>

#include "moirai/rt/capabilities.hpp"
#include "moirai/rt/error.hpp"

namespace moirai::rt {
namespace {

struct CapFree {
  void operator()(void* p) const noexcept { cap_free(p); }
};
using CapHandle = std::unique_ptr<std::remove_pointer_t<cap_t>, CapFree>;

// Capabilities this kernel knows (cap_max_bits), capped at what a mask holds.
int known_caps() noexcept {
  const int n = static_cast<int>(cap_max_bits());
  return n > 64 ? 64 : n;
}

CapabilityMask flag_mask(cap_t caps, cap_flag_t flag) noexcept {
  CapabilityMask m = 0;
  for (int c = 0; c < known_caps(); ++c) {
    cap_flag_value_t v = CAP_CLEAR;
    if (cap_get_flag(caps, static_cast<cap_value_t>(c), flag, &v) == 0 && v == CAP_SET)
      m |= capability_bit(c);
  }
  return m;
}

[[noreturn]] void fail(const char* what) {
  const int err = errno;
  throw RtError(err, std::string("dropping capabilities: ") + what + ": " + std::strerror(err));
}

}  // namespace

int parse_capability(std::string_view name) {
  std::string text(name);
  for (char& ch : text)
    ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (text.rfind("cap_", 0) != 0) text = "cap_" + text;
  cap_value_t value = 0;
  if (text.size() > 4 && cap_from_name(text.c_str(), &value) == 0 && value >= 0 && value < 64) return value;
  throw RtError(EINVAL, "unknown capability '" + std::string(name) +
                            "': name one as capabilities(7) does, e.g. CAP_NET_BIND_SERVICE or sys_nice");
}

std::string capability_names(CapabilityMask mask) {
  std::string out;
  for (int c = 0; c < 64; ++c) {
    if ((mask & capability_bit(c)) == 0) continue;
    if (!out.empty()) out += ',';
    if (char* name = cap_to_name(static_cast<cap_value_t>(c)); name != nullptr) {
      out += name;
      cap_free(name);
    } else {
      out += std::to_string(c);
    }
  }
  return out.empty() ? "none" : out;
}

ThreadCapabilities ThreadCapabilities::current() {
  ThreadCapabilities t;
  CapHandle caps(cap_get_proc());
  if (!caps) fail("cap_get_proc");
  t.effective = flag_mask(caps.get(), CAP_EFFECTIVE);
  t.permitted = flag_mask(caps.get(), CAP_PERMITTED);
  t.inheritable = flag_mask(caps.get(), CAP_INHERITABLE);
  for (int c = 0; c < known_caps(); ++c) {
    if (cap_get_ambient(static_cast<cap_value_t>(c)) == 1) t.ambient |= capability_bit(c);
    if (cap_get_bound(static_cast<cap_value_t>(c)) == 1) t.bounding |= capability_bit(c);
  }
  return t;
}

CapabilityDropResult drop_capabilities(CapabilityMask keep) {
  const ThreadCapabilities before = ThreadCapabilities::current();
  CapabilityDropResult result;
  const CapabilityMask extra = before.held() & ~keep;
  // The bounding set first: dropping from it needs CAP_SETPCAP, which the second step may take away.
  const bool may_bound = (before.effective & capability_bit(CAP_SETPCAP)) != 0;
  if (may_bound && (before.bounding & ~keep) != 0) {
    for (int c = 0; c < known_caps(); ++c) {
      if ((before.bounding & ~keep & capability_bit(c)) != 0 &&
          cap_drop_bound(static_cast<cap_value_t>(c)) != 0)
        fail("cap_drop_bound (PR_CAPBSET_DROP)");
    }
    result.bounding_dropped = true;
  }
  if (extra == 0) return result;
  // Ambient capabilities not kept go first: the kernel keeps an ambient one only while it is permitted and
  // inheritable, but saying so here does not depend on that rule.
  for (int c = 0; c < known_caps(); ++c) {
    if ((before.ambient & ~keep & capability_bit(c)) != 0 &&
        cap_set_ambient(static_cast<cap_value_t>(c), CAP_CLEAR) != 0)
      fail("cap_set_ambient (PR_CAP_AMBIENT_LOWER)");
  }
  CapHandle caps(cap_get_proc());
  if (!caps) fail("cap_get_proc");
  for (int c = 0; c < known_caps(); ++c) {
    if ((extra & capability_bit(c)) == 0) continue;
    const cap_value_t v = static_cast<cap_value_t>(c);
    for (cap_flag_t flag : {CAP_EFFECTIVE, CAP_PERMITTED, CAP_INHERITABLE}) {
      if (cap_set_flag(caps.get(), flag, 1, &v, CAP_CLEAR) != 0) fail("cap_set_flag");
    }
  }
  if (cap_set_proc(caps.get()) != 0) fail("cap_set_proc (capset)");
  result.dropped = extra & ~ThreadCapabilities::current().held();
  return result;
}

}  // namespace moirai::rt
