// The body of a spin-wait.
#pragma once

namespace moirai {

// Tells the core (and an SMT sibling) that this is a spin-wait: it saves power, yields pipeline resources to
// the sibling and avoids the memory-order mis-speculation flush when the awaited line finally changes.
inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield" ::: "memory");
#endif
}

}  // namespace moirai
