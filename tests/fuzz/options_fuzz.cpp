// The parsers behind the `moirai` CLI's options and RuntimeOptions: rt::ThreadPolicy::parse (--policy),
// parse_idle_strategy (--idle) and transport::SocketAddress::parse (--listen, --connect, --metrics). The
// first input byte picks the parser, the rest is the text. Each either refuses the text with its documented
// error (any other exception escapes and is a crash), or gives a value whose printed form parses back to it.
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "moirai/core/error.hpp"
#include "moirai/core/runtime_options.hpp"
#include "moirai/rt/error.hpp"
#include "moirai/rt/thread_policy.hpp"
#include "moirai/transport/error.hpp"
#include "moirai/transport/socket_address.hpp"

namespace {

void thread_policy(std::string_view text) {
  moirai::rt::ThreadPolicy p;
  try {
    p = moirai::rt::ThreadPolicy::parse(text);
  } catch (const moirai::rt::RtError& e) {
    MOIRAI_FUZZ_CHECK(e.code().value() == EINVAL);
    return;
  }
  const std::string printed = p.to_string();
  MOIRAI_FUZZ_CHECK(moirai::rt::ThreadPolicy::parse(printed) == p);
  try {
    p.validate();  // reads the kernel's deadline period bounds; changes nothing
  } catch (const moirai::rt::RtError& e) {
    MOIRAI_FUZZ_CHECK(e.code().value() == EINVAL);
  }
}

void idle_strategy(std::string_view text) {
  moirai::IdleStrategy s;
  try {
    s = moirai::parse_idle_strategy(std::string(text));
  } catch (const moirai::Error& e) {
    MOIRAI_FUZZ_CHECK(e.code() == moirai::Errc::invalid_argument);
    return;
  }
  MOIRAI_FUZZ_CHECK(moirai::parse_idle_strategy(moirai::to_string(s)) == s);
}

void socket_address(std::string_view text) {
  using moirai::transport::SocketAddress;
  SocketAddress a;
  try {
    a = SocketAddress::parse(text);
  } catch (const moirai::transport::TransportError& e) {
    MOIRAI_FUZZ_CHECK(e.code() ==
                      moirai::transport::make_error_code(moirai::transport::TransportErrc::malformed));
    return;
  }
  MOIRAI_FUZZ_CHECK(a.size() > 0 && a.size() <= sizeof(sockaddr_storage));
  const std::string printed = a.to_string();
  const SocketAddress b = SocketAddress::parse(printed);
  MOIRAI_FUZZ_CHECK(b.family() == a.family() && b.port() == a.port() && b.size() == a.size());
  MOIRAI_FUZZ_CHECK(b.to_string() == printed);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 3) {
    case 0:
      thread_policy(text);
      break;
    case 1:
      idle_strategy(text);
      break;
    default:
      socket_address(text);
      break;
  }
  return 0;
}
