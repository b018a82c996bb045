// The shared-memory region of an IpcChannel (internal): its layout, as both processes map it, and the
// mapping of it at create and open. Also the names and error texts every part of the channel uses.
//
//   offset 0      RegionHeader (one line): magic, version, sizes, both pids, both closed flags
//   offset 64     RingControl of ring 0, then of ring 1 (two lines each): the reader's sleeping word, its
//   head offset 4096   the slots of ring 0 (capacity * slot_size), then those of ring 1
//
// Ring s is written by side s (0: the creator, 1: the opener) and read by the other.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <new>
#include <string>
#include <string_view>

#include "moirai/transport/error.hpp"
#include "moirai/transport/ipc.hpp"

namespace moirai::transport::ipc {

inline constexpr std::size_t kLine = 64;
inline constexpr std::uint64_t kMagic = 0x4350494941524f4dull;  // "MORAIIPC" in little-endian bytes
inline constexpr std::uint32_t kSlotHeaderBytes = 16;
inline constexpr std::size_t kSlotsOffset = 4096;  // slots start on their own page, after the control lines
inline constexpr std::uint32_t kMaxCapacity = 1u << 24;
// The values of a ring's sleeping word: how its reader waits, so the writer knows how to wake it.
inline constexpr std::uint32_t kAwake = 0;
inline constexpr std::uint32_t kSleepsOnFutex = 1;
inline constexpr std::uint32_t kSleepsOnFifo = 2;

// The first line of the region. Written once by the creator before `magic`, except the pids (set by each
// side as it arrives) and the closed flags (set by each side as it leaves). Read-mostly: a writer loads
// `closed` on every send and it stays in its cache.
struct RegionHeader {
  std::atomic<std::uint64_t>
      magic;  // stored last at creation (release): an opener that sees it sees the rest
  std::uint32_t version;
  std::uint32_t slot_size;
  std::uint32_t capacity;
  std::uint32_t reserved;
  std::uint64_t region_bytes;
  std::atomic<std::int32_t> pid[2];      // [0] the creator, [1] the opener (0 until it opens)
  std::atomic<std::uint32_t> closed[2];  // side s closed cleanly
};
static_assert(sizeof(RegionHeader) <= kLine);

// The control of one ring, each word on its own line: the reader's sleeping word (kAwake, or how it waits;
// written by the reader only when it goes to sleep or wakes, read by the writer after each send; the futex
// word too) and the reader's released position
// (written by the reader after each message, read by the writer only when the ring looks full).
struct alignas(kLine) RingControl {
  std::atomic<std::uint32_t> reader_sleeping;
  alignas(kLine) std::atomic<std::uint64_t> head;
};
static_assert(sizeof(RingControl) == 2 * kLine);

// Before every payload. `seq` is the slot's position + 1 (mod 2^32), stored last by the writer (release):
// the reader learns that a slot is ready from the slot itself, so a message moves its own lines and no
// shared index. A stale slot holds position + 1 - capacity, never equal, since capacity < 2^32.
struct SlotHeader {
  std::atomic<std::uint32_t> seq;
  std::uint32_t length;
  std::uint64_t sender;
};
static_assert(sizeof(SlotHeader) == kSlotHeaderBytes);
static_assert(std::atomic<std::uint32_t>::is_always_lock_free &&
                  std::atomic<std::uint64_t>::is_always_lock_free &&
                  std::atomic<std::int32_t>::is_always_lock_free,
              "atomics shared between processes must be lock-free (address-free)");

inline constexpr std::size_t kRingControlOffset = kLine;
static_assert(kRingControlOffset + 2 * sizeof(RingControl) <= kSlotsOffset);

// A region mapped into this process, as create_region and open_region leave it.
struct Mapping {
  void* base = nullptr;
  std::size_t bytes = 0;
  std::uint32_t slot_size = 0;
  std::uint32_t capacity = 0;  // a power of two
};

// The region as one end sees it, from create/open to close: the geometry both rings share and the header.
struct Region {
  void* base = nullptr;
  std::size_t bytes = 0;
  RegionHeader* hdr = nullptr;
  std::uint32_t slot_size = 0;
  std::uint32_t mask = 0;  // capacity - 1
  std::uint32_t max_payload = 0;

  RingControl* control(int ring) const noexcept {
    return &std::launder(
        reinterpret_cast<RingControl*>(static_cast<std::byte*>(base) + kRingControlOffset))[ring];
  }
  std::byte* slots(int ring) const noexcept {
    const std::size_t ring_bytes = static_cast<std::size_t>(mask + 1) * slot_size;
    return static_cast<std::byte*>(base) + kSlotsOffset + static_cast<std::size_t>(ring) * ring_bytes;
  }
  SlotHeader* slot(std::byte* ring_slots, std::uint64_t pos) const noexcept {
    return std::launder(reinterpret_cast<SlotHeader*>(ring_slots + (pos & mask) * slot_size));
  }
  static std::byte* payload_of(SlotHeader* s) noexcept {
    return reinterpret_cast<std::byte*>(s) + kSlotHeaderBytes;
  }
};

// Makes /dev/shm/<name> for `options` (capacity rounded up to a power of two), with both rings empty and
// this process as its creator. Throws TransportError naming the cause and the fix.
Mapping create_region(std::string_view name, const IpcOptions& options);
// Maps the region another process created and claims its opener's side. Throws TransportError when it is
// missing, not a Moirai region of this version, its creator is gone, or another process has it open.
Mapping open_region(std::string_view name);

bool process_alive(int pid) noexcept;
// "/" + name, for shm_open and shm_unlink.
std::string shm_path(std::string_view name);
// "IpcChannel 'NAME' (/dev/shm/NAME)", how every message names the channel.
std::string where(std::string_view name);
// Refuses a name that is not usable under /dev/shm (TransportError(invalid_argument)).
void check_name(std::string_view name);

}  // namespace moirai::transport::ipc
