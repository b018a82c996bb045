// Making and mapping the region: create_region (with the replacement of a stale one) and open_region (with
// the checks that it is a Moirai region its creator still holds).
#include "region.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cstring>
#include <utility>

namespace moirai::transport::ipc {
namespace {

[[noreturn]] void throw_errno(int err, TransportErrc code, std::string_view name, const std::string& what,
                              const std::string& fix) {
  throw TransportError(code, where(name) + ": " + what + " failed: " + std::strerror(err) + "; " + fix);
}

std::string fix_for(int err) {
  switch (err) {
    case EACCES:
    case EPERM:
      return "run both processes as the same user, or remove the file left by another user";
    case ENOSPC:
    case ENOMEM:
      return "/dev/shm is full or too small: free space there, or use a smaller slot_size or capacity";
    case EMFILE:
    case ENFILE:
      return "raise the file-descriptor limit (ulimit -n)";
    case ENOENT:
      return "mount a tmpfs on /dev/shm (mount -t tmpfs tmpfs /dev/shm)";
    default:
      return "check that /dev/shm is a writable tmpfs";
  }
}

void check_options(std::string_view name, const IpcOptions& options) {
  if (options.slot_size < 64 || options.slot_size > 65536 || options.slot_size % kLine != 0) {
    throw TransportError(
        TransportErrc::invalid_argument,
        where(name) + ": slot_size " + std::to_string(options.slot_size) +
            " is not a multiple of 64 between 64 and 65536; pick one (128 carries 112 bytes)");
  }
  if (options.capacity < 2 || options.capacity > kMaxCapacity) {
    throw TransportError(
        TransportErrc::invalid_argument,
        where(name) + ": capacity " + std::to_string(options.capacity) + " is outside 2 to 16777216 slots");
  }
}

// The pid a region's header names as its creator, read through a mapping of the header alone; 0 when the
// file is too small or cannot be read.
int creator_of(const std::string& path) {
  int creator_pid = 0;
  const int old = ::shm_open(path.c_str(), O_RDONLY | O_CLOEXEC, 0);
  if (old < 0) return 0;
  struct stat st {};
  if (::fstat(old, &st) == 0 && static_cast<std::size_t>(st.st_size) >= sizeof(RegionHeader)) {
    void* m = ::mmap(nullptr, sizeof(RegionHeader), PROT_READ, MAP_SHARED, old, 0);
    if (m != MAP_FAILED) {
      creator_pid = std::launder(static_cast<RegionHeader*>(m))->pid[0].load();
      ::munmap(m, sizeof(RegionHeader));
    }
  }
  ::close(old);
  return creator_pid;
}

// A new file for the region. One of this name whose creator is gone is replaced when `replace_stale`.
int create_file(std::string_view name, const std::string& path, bool replace_stale) {
  int fd = ::shm_open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0 && errno == EEXIST && replace_stale) {
    const int creator_pid = creator_of(path);
    if (process_alive(creator_pid) && creator_pid != ::getpid()) {
      throw TransportError(TransportErrc::not_supported,
                           where(name) + " already exists and its creator (pid " +
                               std::to_string(creator_pid) + ") is alive; pick another name");
    }
    ::shm_unlink(path.c_str());
    fd = ::shm_open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  }
  if (fd < 0) {
    const int err = errno;
    if (err == EEXIST) {
      throw TransportError(TransportErrc::not_supported,
                           where(name) + " already exists; pick another name, or remove the file");
    }
    throw_errno(err, TransportErrc::not_supported, name, "shm_open", fix_for(err));
  }
  return fd;
}

// Sizes the new file and maps it; removes the file on failure.
void* size_and_map(std::string_view name, const std::string& path, int fd, std::size_t bytes) {
  if (::ftruncate(fd, static_cast<off_t>(bytes)) != 0) {
    const int err = errno;
    ::close(fd);
    ::shm_unlink(path.c_str());
    throw_errno(err, TransportErrc::not_supported, name,
                "sizing the region to " + std::to_string(bytes) + " bytes", fix_for(err));
  }
  // MAP_POPULATE: every page is faulted in now, so no message ever takes a page fault.
  void* base = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
  const int map_err = errno;
  ::close(fd);
  if (base == MAP_FAILED) {
    ::shm_unlink(path.c_str());
    throw_errno(map_err, TransportErrc::not_supported, name, "mmap", fix_for(map_err));
  }
  return base;
}

// The file is zero-filled: every slot's seq is 0 (empty), both heads 0, nobody sleeps. The magic goes last.
void write_header(const Mapping& m) {
  auto* hdr = ::new (m.base) RegionHeader{};
  auto* rings = static_cast<std::byte*>(m.base) + kRingControlOffset;
  ::new (rings) RingControl{};
  ::new (rings + sizeof(RingControl)) RingControl{};
  hdr->version = kIpcVersion;
  hdr->slot_size = m.slot_size;
  hdr->capacity = m.capacity;
  hdr->region_bytes = m.bytes;
  hdr->pid[0].store(::getpid(), std::memory_order_relaxed);
  hdr->magic.store(kMagic, std::memory_order_release);
}

// Maps the file of an existing region, checking that it is large enough to hold one.
Mapping map_existing(std::string_view name) {
  const std::string path = shm_path(name);
  const int fd = ::shm_open(path.c_str(), O_RDWR | O_CLOEXEC, 0);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT) {
      throw TransportError(TransportErrc::connection_refused,
                           where(name) +
                               " does not exist: create it first with IpcChannel::create in the "
                               "other process, with the same name");
    }
    throw_errno(err, TransportErrc::not_supported, name, "shm_open", fix_for(err));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || static_cast<std::size_t>(st.st_size) < kSlotsOffset) {
    ::close(fd);
    throw TransportError(TransportErrc::malformed,
                         where(name) + " is too small (" + std::to_string(st.st_size) +
                             " bytes) to be a Moirai IPC region: another program uses the name, or its "
                             "creator has not finished; pick another name or remove the file");
  }
  Mapping m;
  m.bytes = static_cast<std::size_t>(st.st_size);
  m.base = ::mmap(nullptr, m.bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
  const int map_err = errno;
  ::close(fd);
  if (m.base == MAP_FAILED)
    throw_errno(map_err, TransportErrc::not_supported, name, "mmap", fix_for(map_err));
  return m;
}

// Why the mapped header cannot be opened (then the text to throw, starting after where(name)), or "" with
// the sizes filled in: not a Moirai region, another version, sizes that do not add up, a creator gone.
std::string check_header(const RegionHeader& hdr, Mapping& m) {
  // acquire: pairs with create's release of the magic; the header fields read below are complete.
  if (hdr.magic.load(std::memory_order_acquire) != kMagic) {
    return " is not a Moirai IPC region (bad magic): another program uses the name, or its creator has not "
           "finished; pick another name or remove the file";
  }
  if (hdr.version != kIpcVersion) {
    return " has layout version " + std::to_string(hdr.version) + "; this build speaks version " +
           std::to_string(kIpcVersion) + ": build both processes from the same Moirai";
  }
  const std::uint32_t ss = hdr.slot_size;
  const std::uint32_t cap = hdr.capacity;
  const bool sizes_ok = ss >= 64 && ss <= 65536 && ss % kLine == 0 && cap >= 2 && cap <= kMaxCapacity &&
                        std::has_single_bit(cap) && hdr.region_bytes == m.bytes &&
                        kSlotsOffset + 2 * static_cast<std::size_t>(cap) * ss == m.bytes;
  if (!sizes_ok) {
    return ": its sizes do not add up (slot_size " + std::to_string(ss) + ", capacity " +
           std::to_string(cap) + ", " + std::to_string(m.bytes) +
           " bytes): the file was truncated or written by something else; remove it and create the channel "
           "again";
  }
  m.slot_size = ss;
  m.capacity = cap;
  return {};
}

}  // namespace

bool process_alive(int pid) noexcept {
  return pid > 0 && (::kill(pid, 0) == 0 || errno == EPERM);
}

// Built by append: GCC 12 warns falsely on operator+ of a literal and a string.
std::string shm_path(std::string_view name) {
  std::string path;
  path.reserve(name.size() + 1);
  path.push_back('/');
  path.append(name);
  return path;
}

std::string where(std::string_view name) {
  return "IpcChannel '" + std::string(name) + "' (/dev/shm/" + std::string(name) + ")";
}

void check_name(std::string_view name) {
  bool ok = !name.empty() && name.size() <= 200 && name != "." && name != "..";
  for (char c : name) {
    const bool allowed = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                         c == '-' || c == '_' || c == '.';
    ok = ok && allowed;
  }
  if (!ok) {
    throw TransportError(TransportErrc::invalid_argument,
                         "IpcChannel: the name '" + std::string(name) +
                             "' is not usable under /dev/shm; use 1 to 200 letters, digits, '-', '_' or '.'");
  }
}

Mapping create_region(std::string_view name, const IpcOptions& options) {
  check_name(name);
  check_options(name, options);
  Mapping m;
  m.slot_size = options.slot_size;
  m.capacity = std::bit_ceil(options.capacity);  // at most kMaxCapacity, itself a power of two
  m.bytes = kSlotsOffset + 2 * static_cast<std::size_t>(m.capacity) * m.slot_size;
  const std::string path = shm_path(name);
  const int fd = create_file(name, path, options.replace_stale);
  m.base = size_and_map(name, path, fd, m.bytes);
  write_header(m);
  return m;
}

Mapping open_region(std::string_view name) {
  check_name(name);
  Mapping m = map_existing(name);
  auto fail = [&](TransportErrc code, const std::string& text) {
    ::munmap(m.base, m.bytes);
    throw TransportError(code, where(name) + text);
  };
  auto* hdr = std::launder(static_cast<RegionHeader*>(m.base));
  if (std::string why = check_header(*hdr, m); !why.empty()) fail(TransportErrc::malformed, why);
  const int creator_pid = hdr->pid[0].load(std::memory_order_relaxed);
  if (!process_alive(creator_pid) || hdr->closed[0].load(std::memory_order_acquire) != 0) {
    fail(TransportErrc::closed, ": its creator (pid " + std::to_string(creator_pid) +
                                    ") is gone or closed it; create the channel again");
  }
  int expected = 0;
  // acq_rel: claiming the opener's side is the one read-modify-write both openers race on.
  if (!hdr->pid[1].compare_exchange_strong(expected, ::getpid(), std::memory_order_acq_rel)) {
    fail(TransportErrc::not_supported, " is already open in process " + std::to_string(expected) +
                                           "; a channel joins two processes: create one channel per pair");
  }
  return m;
}

}  // namespace moirai::transport::ipc
