// Test support: counts heap allocations, for tests of any module. Global operator new (every form) and,
// outside sanitizer builds (which own malloc), malloc itself are replaced by counting versions, which count
// while g_counting is set. Include it in exactly one source file of a test executable: it defines the
// replacement functions. allocation_counter.hpp adds a runtime that runs a body with the counter armed.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <new>

namespace moirai_test {
inline std::atomic<bool> g_counting{false};
inline std::atomic<std::uint64_t> g_allocations{0};
inline void note_allocation() noexcept {
  if (g_counting.load(std::memory_order_relaxed)) g_allocations.fetch_add(1, std::memory_order_relaxed);
}
}  // namespace moirai_test

void* operator new(std::size_t n) {
  moirai_test::note_allocation();
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) {
  return operator new(n);
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete[](void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::size_t) noexcept {
  std::free(p);
}
// std::stable_sort's buffer (the admission test's analysis) comes through the nothrow forms.
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  moirai_test::note_allocation();
  return std::malloc(n == 0 ? 1 : n);
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  return operator new(n, std::nothrow);
}
void operator delete(void* p, const std::nothrow_t&) noexcept {
  std::free(p);
}
void operator delete[](void* p, const std::nothrow_t&) noexcept {
  std::free(p);
}
// Over-aligned types (a histogram, a cache-line-padded record) come through these: count them too, and keep
// new and delete paired on malloc/free so the sanitizers see matching calls.
void* operator new(std::size_t n, std::align_val_t a) {
  moirai_test::note_allocation();
  const auto align = static_cast<std::size_t>(a);
  if (void* p = std::aligned_alloc(align, (n + align - 1) / align * align)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n, std::align_val_t a) {
  return operator new(n, a);
}
void operator delete(void* p, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept {
  std::free(p);
}

#if !defined(MOIRAI_SANITIZED)
extern "C" {
void* __libc_malloc(std::size_t);
void* __libc_calloc(std::size_t, std::size_t);
void* __libc_realloc(void*, std::size_t);
void* malloc(std::size_t n) {
  moirai_test::note_allocation();
  return __libc_malloc(n);
}
void* calloc(std::size_t n, std::size_t size) {
  moirai_test::note_allocation();
  return __libc_calloc(n, size);
}
void* realloc(void* p, std::size_t n) {
  moirai_test::note_allocation();
  return __libc_realloc(p, n);
}
}
#endif
