// What the transport tests share: text as bytes and back, a frame's wire bytes built by hand (so a test can
// send frames that lie, or that no FramedStream would write), and a connected pair of stream sockets.
#pragma once

#include <span>
#include <string>
#include <vector>

#include "moirai/core/spawn.hpp"
#include "moirai/core/task.hpp"
#include "moirai/transport/frame.hpp"
#include "moirai/transport/stream_socket.hpp"

namespace moirai_test {

inline std::span<const std::byte> bytes_of(const std::string& s) {
  return std::as_bytes(std::span<const char>(s.data(), s.size()));
}

inline std::string text_of(std::span<const std::byte> b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

// A header announcing `length` payload bytes, followed by `payload` (which may be shorter: a truncated
// frame).
inline std::vector<std::byte> frame_bytes(std::uint32_t length, std::uint16_t type,
                                          moirai::transport::EndpointId sender, const std::string& payload) {
  using moirai::transport::kFrameHeaderSize;
  std::vector<std::byte> out(kFrameHeaderSize);
  moirai::transport::write_frame_header(moirai::transport::FrameHeader{length, type, sender},
                                        std::span<std::byte, kFrameHeaderSize>(out.data(), kFrameHeaderSize));
  for (char c : payload)
    out.push_back(static_cast<std::byte>(c));
  return out;
}

// Two ends of one connection through `l`, on the calling shard: `a` connected, `b` accepted.
struct StreamPair {
  moirai::transport::StreamSocket a;
  moirai::transport::StreamSocket b;
};
inline moirai::Task<StreamPair> connected_pair(moirai::transport::StreamListener& l) {
  auto accepting = moirai::spawn(l.accept());
  moirai::transport::StreamSocket a = co_await moirai::transport::StreamSocket::connect(l.local_address());
  moirai::transport::StreamSocket b = co_await accepting.join();
  co_return StreamPair{std::move(a), std::move(b)};
}

}  // namespace moirai_test
