// What the fuzz targets share: a check that aborts (so libFuzzer saves the input and the replay test fails)
// naming the broken invariant, and a reader that takes control values from the front of an input.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string_view>

#define MOIRAI_FUZZ_CHECK(cond)                                                              \
  do {                                                                                       \
    if (!(cond)) {                                                                           \
      std::fprintf(stderr, "%s:%d: fuzz invariant broken: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                          \
    }                                                                                        \
  } while (0)

namespace moirai::fuzz {

// Takes bytes from the front of the input; past the end it yields zeros, so that every input is usable.
class InputReader {
 public:
  InputReader(const std::uint8_t* data, std::size_t size) noexcept : data_(data), size_(size) {}

  std::uint8_t byte() noexcept { return at_ < size_ ? data_[at_++] : 0; }
  std::uint16_t u16() noexcept { return static_cast<std::uint16_t>(byte() | byte() << 8); }
  // The rest of the input, as bytes or as text.
  std::span<const std::byte> rest_bytes() const noexcept {
    return {reinterpret_cast<const std::byte*>(data_) + at_, size_ - at_};
  }
  std::string_view rest_text() const noexcept {
    return {reinterpret_cast<const char*>(data_) + at_, size_ - at_};
  }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t at_ = 0;
};

}  // namespace moirai::fuzz
