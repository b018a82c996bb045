#include "caps_option.hpp"

#include "moirai/transport/socket_address.hpp"

namespace moirai::cli {

void apply_caps_options(const CapsOptions& o, RuntimeOptions& ro,
                        const std::vector<std::string>& bind_addresses) {
  ro.drop_capabilities = o.no_drop ? CapabilityDrop::off : CapabilityDrop::automatic;
  ro.keep_capabilities = o.keep;
  const auto kind = ro.thread_policy.kind;
  if (ro.thread_policy != rt::ThreadPolicy{}) ro.keep_capabilities.push_back("CAP_SYS_NICE");
  if (kind == rt::ThreadPolicy::Kind::deadline) {
    ro.keep_capabilities.push_back("CAP_SYS_ADMIN");
    ro.keep_capabilities.push_back("CAP_DAC_OVERRIDE");
  }
  for (const std::string& at : bind_addresses) {
    if (at.empty() || at.rfind("unix:", 0) == 0) continue;
    const unsigned short port = transport::SocketAddress::parse(at).port();
    if (port != 0 && port < 1024) {
      ro.keep_capabilities.push_back("CAP_NET_BIND_SERVICE");
      break;
    }
  }
}

}  // namespace moirai::cli
