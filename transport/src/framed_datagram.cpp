#include "moirai/transport/framed_datagram.hpp"

#include <sys/utsname.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "moirai/transport/error.hpp"

namespace moirai::transport {
namespace {

// Room for an IPv6 address (28 bytes) and its length in front of each stashed frame.
constexpr std::size_t kAddressPrefix = 32;

std::string sender_text(EndpointId id) {
  return std::to_string(id.node) + "/" + std::to_string(id.shard) + "/" + std::to_string(id.channel);
}

}  // namespace

const char* to_string(DropReason r) noexcept {
  switch (r) {
    case DropReason::malformed:
      return "malformed";
    case DropReason::too_large:
      return "too large";
    case DropReason::truncated:
      return "truncated";
    case DropReason::wrong_sender:
      return "wrong sender";
    case DropReason::kCount:
      break;
  }
  return "?";
}

std::uint64_t DatagramStats::dropped_total() const noexcept {
  std::uint64_t n = 0;
  for (std::uint64_t d : dropped)
    n += d;
  return n;
}

bool detail::send_takes_address() noexcept {
  static const bool takes = [] {
    utsname u{};
    int major = 0;
    return ::uname(&u) == 0 && std::sscanf(u.release, "%d", &major) == 1 && major >= 6;
  }();
  return takes;
}

void detail::FramedSendPrep::fill_flat() noexcept {
  std::memcpy(flat.data(), header.data(), header.size());
  if (!payload.empty()) std::memcpy(flat.data() + header.size(), payload.data(), payload.size());
}

// Filled in the awaiter's final place: the kernel reads msg and the iovecs until the send is issued.
void detail::FramedSendPrep::fill_msg() noexcept {
  iov[0].iov_base = header.data();
  iov[0].iov_len = header.size();
  iov[1].iov_base = const_cast<std::byte*>(payload.data());
  iov[1].iov_len = payload.size();
  msg = msghdr{};
  msg.msg_name = to != nullptr ? const_cast<sockaddr*>(to->data()) : nullptr;
  msg.msg_namelen = to != nullptr ? to->size() : 0;
  msg.msg_iov = iov;
  msg.msg_iovlen = payload.empty() ? 1 : 2;
}

void detail::FramedSendPrep::operator()(io_uring_sqe* sqe) noexcept {
  if (fits_flat() && (to == nullptr || send_takes_address())) {
    fill_flat();
    io_uring_prep_send(sqe, fd, flat.data(), header.size() + payload.size(), 0);
    if (to != nullptr) io_uring_prep_send_set_addr(sqe, to->data(), static_cast<std::uint16_t>(to->size()));
    return;
  }
  fill_msg();
  io_uring_prep_sendmsg(sqe, fd, &msg, 0);
}

// The same choice as a syscall: a small frame flat, with one copy, a larger one in two pieces.
int detail::FramedSendPrep::try_inline() noexcept {
  if (fits_flat()) {
    fill_flat();
    return send_now(fd, flat.data(), header.size() + payload.size(), 0, to != nullptr ? to->data() : nullptr,
                    to != nullptr ? to->size() : 0);
  }
  fill_msg();
  return sendmsg_now(fd, msg, 0);
}

FramedDatagramSocket FramedDatagramSocket::bind(const SocketAddress& at, EndpointId self,
                                                const FramedDatagramOptions& options) {
  if (options.max_payload > kMaxDatagramPayload) {
    throw TransportError(TransportErrc::invalid_argument,
                         "FramedDatagramSocket: max_payload " + std::to_string(options.max_payload) +
                             " is over what one UDP datagram carries with its frame header (" +
                             std::to_string(kMaxDatagramPayload) + "); send larger messages over TCP");
  }
  return FramedDatagramSocket(DatagramSocket::bind(at, options.socket), self, options);
}

FramedDatagramSocket::FramedDatagramSocket(DatagramSocket socket, EndpointId self,
                                           const FramedDatagramOptions& options)
    : socket_(std::move(socket)),
      self_(self),
      max_payload_(options.max_payload),
      peer_node_(options.peer_node),
      log_drops_(options.log_drops),
      stash_(options.stash_bytes, kAddressPrefix) {}

FramedDatagramSocket::SendAwaiter FramedDatagramSocket::send_frame(const SocketAddress* to,
                                                                   std::uint16_t type,
                                                                   std::span<const std::byte> payload) {
  if (payload.size() > max_payload_) {
    throw TransportError(TransportErrc::message_too_large,
                         "FramedDatagramSocket::send: a payload of " + std::to_string(payload.size()) +
                             " bytes is over this socket's maximum of " + std::to_string(max_payload_) +
                             "; nothing was sent");
  }
  return SendAwaiter(
      detail::FramedSendPrep(socket_.fd(), to,
                             FrameHeader{static_cast<std::uint32_t>(payload.size()), type, self_}, payload),
      to);
}

void FramedDatagramSocket::drop(DropReason why, const Datagram& d, std::size_t bytes) {
  ++stats_.dropped[static_cast<std::size_t>(why)];
  if (!log_drops_) return;
  const std::int64_t now = monotonic_ns();
  if (last_log_ns_ != 0 && now - last_log_ns_ < 1'000'000'000) {
    ++unlogged_;
    return;
  }
  last_log_ns_ = now;
  std::string local = "?";
  try {
    local = local_address().to_string();
  } catch (const std::exception&) {  // a closed socket's name is not worth failing for
  }
  std::fprintf(stderr, "moirai: udp %s: dropped a datagram of %zu bytes from %s (%s)", local.c_str(), bytes,
               d.sender_address().to_string().c_str(), to_string(why));
  if (unlogged_ != 0) {
    std::fprintf(stderr, " [%llu more dropped in the last second were not logged]",
                 static_cast<unsigned long long>(unlogged_));
    unlogged_ = 0;
  }
  std::fputc('\n', stderr);
}

std::optional<DatagramFrame> FramedDatagramSocket::accept(const Datagram& d) {
  if (d.truncated) {
    drop(DropReason::truncated, d, d.payload.size());
    return std::nullopt;
  }
  const ParseResult r = parse_frame(d.payload, max_payload_);
  if (r.status == ParseStatus::error) {
    const bool large = r.error == make_error_code(TransportErrc::message_too_large);
    drop(large ? DropReason::too_large : DropReason::malformed, d, d.payload.size());
    return std::nullopt;
  }
  // One datagram, one frame: a short header, a length that promises more, or bytes after the frame all mean
  // the datagram is not what it says.
  if (r.status != ParseStatus::frame || r.consumed != d.payload.size()) {
    drop(DropReason::malformed, d, d.payload.size());
    return std::nullopt;
  }
  if (peer_node_ && r.header.sender.node != *peer_node_) {
    drop(DropReason::wrong_sender, d, d.payload.size());
    return std::nullopt;
  }
  ++stats_.frames;
  return DatagramFrame{r.header.sender, r.payload, r.header, d.sender_name, d.sender_size};
}

// Copies `f` and its sender's address (the record's prefix: its length, then the address) into the stash.
bool FramedDatagramSocket::keep(const DatagramFrame& f) {
  std::byte prefix[kAddressPrefix]{};
  const auto name_len = static_cast<std::uint32_t>(std::min<std::size_t>(f.sender_size, kAddressPrefix - 4));
  std::memcpy(prefix, &name_len, 4);
  if (name_len != 0) std::memcpy(prefix + 4, f.sender_name, name_len);
  return stash_.put(f.sender, f.header.type, f.payload, prefix);
}

Task<DatagramFrame> FramedDatagramSocket::recv(Duration timeout) {
  return receive(std::nullopt, timeout);
}

Task<DatagramFrame> FramedDatagramSocket::recv_from(EndpointId sender, Duration timeout) {
  return receive(sender, timeout);
}

Task<DatagramFrame> FramedDatagramSocket::receive(std::optional<EndpointId> sender, Duration timeout) {
  stash_.release_taken();
  if (std::optional<detail::RecvStash::Kept> k = stash_.take(sender)) {
    std::uint32_t name_len = 0;
    std::memcpy(&name_len, k->prefix.data(), 4);
    const FrameHeader h{static_cast<std::uint32_t>(k->payload.size()), static_cast<std::uint16_t>(k->tag),
                        k->sender};
    co_return DatagramFrame{k->sender, k->payload, h, reinterpret_cast<const sockaddr*>(k->prefix.data() + 4),
                            static_cast<socklen_t>(name_len)};
  }
  auto refuse = [&] {
    return TransportError(TransportErrc::message_too_large,
                          "FramedDatagramSocket::recv_from(" + sender_text(*sender) +
                              "): frames from other senders would need more than " +
                              std::to_string(stash_.capacity()) +
                              " bytes kept aside; receive them with recv() or raise stash_bytes");
  };
  if (held_back_) {
    // Newer than everything stashed, so it leaves after them: only now, with the stash searched, is it next.
    if (!sender || held_back_->sender == *sender) co_return *std::exchange(held_back_, std::nullopt);
    if (!keep(*held_back_)) throw refuse();
    held_back_.reset();
  }
  const std::int64_t deadline = timeout == Duration::max() ? INT64_MAX : deadline_after(timeout);
  for (;;) {
    Datagram d;
    if (timeout == Duration::max()) {
      d = co_await socket_.recv();
    } else {
      d = co_await socket_.recv(Duration(std::max<std::int64_t>(0, deadline - monotonic_ns())));
    }
    std::optional<DatagramFrame> f = accept(d);
    if (!f) continue;
    if (!sender || f->sender == *sender) co_return *f;
    if (!keep(*f)) {
      held_back_ = f;
      throw refuse();
    }
  }
}

}  // namespace moirai::transport
