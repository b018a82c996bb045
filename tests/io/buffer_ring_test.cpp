// Provided-buffer rings: registration under distinct group ids, a multishot receive that takes the buffers,
// exhaustion (-ENOBUFS ends the multishot request; recycle and re-arm, and the socket keeps working), and the
// fallback mode forced, where buffers are acquired for one-shot receives.
#include "moirai/io/buffer_ring.hpp"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

namespace {

using moirai::io::BufferRing;
using moirai::io::BufferRingOptions;
using moirai::io::Completion;
using moirai::io::Ring;
using moirai::io::RingError;

struct Recorder : Completion {
  struct Cqe {
    int res;
    std::uint32_t flags;
  };
  std::vector<Cqe> seen;
  Recorder() {
    on_complete = [](Completion* c, int res, std::uint32_t flags) noexcept {
      static_cast<Recorder*>(c)->seen.push_back({res, flags});
    };
  }
};

// Two UDP sockets on loopback, the second bound and the first connected to it.
struct UdpPair {
  int tx = -1;
  int rx = -1;
  UdpPair() {
    rx = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    tx = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(bind(rx, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    socklen_t len = sizeof a;
    getsockname(rx, reinterpret_cast<sockaddr*>(&a), &len);
    EXPECT_EQ(connect(tx, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  }
  ~UdpPair() {
    close(tx);
    close(rx);
  }
  void send(const std::string& s) const { ASSERT_EQ(::send(tx, s.data(), s.size(), 0), ssize_t(s.size())); }
};

// Reaps until `r` has seen `n` CQEs (or a second passes with nothing new).
void reap(Ring& ring, const Recorder& r, std::size_t n) {
  for (int idle = 0; r.seen.size() < n && idle < 100;) {
    if (ring.wait(10'000'000) == 0) ++idle;
  }
}

void arm_multishot(Ring& ring, int fd, BufferRing& br, Recorder& r) {
  io_uring_sqe* sqe = ring.get_sqe();
  io_uring_prep_recv_multishot(sqe, fd, nullptr, 0, 0);
  sqe->flags |= IOSQE_BUFFER_SELECT;
  sqe->buf_group = br.group();
  Ring::set_completion(sqe, &r);
  ring.submit();
}

std::uint16_t bid_of(std::uint32_t flags) {
  return static_cast<std::uint16_t>(flags >> IORING_CQE_BUFFER_SHIFT);
}

TEST(BufferRing, RegistersUnderDistinctGroupsAndFreesTheGroup) {
  Ring ring;
  int first_group = -1;
  {
    BufferRing a(ring, {.count = 8, .buffer_size = 256});
    BufferRing b(ring, {.count = 8, .buffer_size = 256});
    if (!a.supported())
      GTEST_SKIP() << "this kernel has no provided-buffer rings: " << strerror(a.registration_error());
    EXPECT_TRUE(b.supported());
    EXPECT_NE(a.group(), b.group());
    EXPECT_EQ(a.count(), 8u);
    EXPECT_EQ(a.buffer_size(), 256u);
    EXPECT_EQ(a.buffer(1) - a.buffer(0), 256);
    first_group = a.group();
  }
  BufferRing again(ring, {.count = 8, .buffer_size = 256});
  EXPECT_EQ(again.group(), first_group);  // the group came back when its ring went
  EXPECT_THROW(BufferRing(ring, {.count = 8, .buffer_size = 256, .group = again.group()}), RingError);
}

TEST(BufferRing, RefusesACountThatIsNotAPowerOfTwo) {
  Ring ring;
  try {
    BufferRing br(ring, {.count = 6});
    FAIL() << "6 buffers were accepted";
  } catch (const RingError& e) {
    EXPECT_NE(std::string(e.what()).find("power of two"), std::string::npos) << e.what();
  }
  std::vector<std::byte> small(100);
  EXPECT_THROW(BufferRing(ring, {.count = 4, .buffer_size = 64, .memory = small}), RingError);
}

TEST(BufferRing, UsesTheCallersMemory) {
  Ring ring;
  std::vector<std::byte> mem(4 * 128);
  BufferRing br(ring, {.count = 4, .buffer_size = 128, .memory = mem});
  EXPECT_EQ(br.buffer(0), mem.data());
  EXPECT_EQ(br.buffer(3), mem.data() + 3 * 128);
}

TEST(BufferRing, ExhaustionEndsTheMultishotReceiveAndRecyclingRevivesIt) {
  Ring ring;
  BufferRing br(ring, {.count = 4, .buffer_size = 256});
  if (!br.supported()) GTEST_SKIP() << "no provided-buffer rings here";
  if (!Ring::supports(moirai::io::Op::recv)) GTEST_SKIP() << "no IORING_OP_RECV";
  UdpPair p;
  for (int i = 0; i < 6; ++i)
    p.send("datagram " + std::to_string(i));
  Recorder r;
  arm_multishot(ring, p.rx, br, r);
  reap(ring, r, 5);
  ASSERT_EQ(r.seen.size(), 5u);
  for (int i = 0; i < 4; ++i) {
    const auto& c = r.seen[static_cast<std::size_t>(i)];
    ASSERT_GT(c.res, 0);
    ASSERT_TRUE(c.flags & IORING_CQE_F_BUFFER);
    EXPECT_TRUE(c.flags & IORING_CQE_F_MORE);
    const std::uint16_t bid = bid_of(c.flags);
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(br.buffer(bid)), static_cast<std::size_t>(c.res)),
              "datagram " + std::to_string(i));
    br.note_taken();
  }
  EXPECT_EQ(br.held(), 4u);
  // Out of buffers: the request ends with -ENOBUFS and no F_MORE.
  EXPECT_EQ(r.seen[4].res, -ENOBUFS);
  EXPECT_FALSE(r.seen[4].flags & IORING_CQE_F_MORE);
  for (int i = 0; i < 4; ++i)
    br.recycle(bid_of(r.seen[static_cast<std::size_t>(i)].flags));
  EXPECT_EQ(br.held(), 0u);
  // Re-armed, the request picks up the datagrams the socket kept meanwhile.
  r.seen.clear();
  arm_multishot(ring, p.rx, br, r);
  reap(ring, r, 2);
  ASSERT_EQ(r.seen.size(), 2u);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(br.buffer(bid_of(r.seen[0].flags))),
                        static_cast<std::size_t>(r.seen[0].res)),
            "datagram 4");
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(br.buffer(bid_of(r.seen[1].flags))),
                        static_cast<std::size_t>(r.seen[1].res)),
            "datagram 5");
  ring.cancel(&r);
  reap(ring, r, 3);
}

TEST(BufferRing, ForcedFallbackHandsOutBuffersForOneShotReceives) {
  Ring ring;
  BufferRing br(ring, {.count = 2, .buffer_size = 64, .register_with_kernel = false});
  EXPECT_FALSE(br.supported());
  EXPECT_EQ(br.registration_error(), 0);
  const int a = br.acquire();
  const int b = br.acquire();
  EXPECT_EQ(a, 0);
  EXPECT_EQ(b, 1);
  EXPECT_EQ(br.acquire(), -1);  // exhausted
  EXPECT_EQ(br.held(), 2u);
  br.recycle(static_cast<std::uint16_t>(a));
  const int c = br.acquire();
  ASSERT_EQ(c, a);

  UdpPair p;
  p.send("one shot");
  Recorder r;
  io_uring_sqe* sqe = ring.get_sqe();
  io_uring_prep_recv(sqe, p.rx, br.buffer(static_cast<std::uint16_t>(c)), br.buffer_size(), 0);
  Ring::set_completion(sqe, &r);
  reap(ring, r, 1);
  ASSERT_EQ(r.seen.size(), 1u);
  ASSERT_EQ(r.seen[0].res, 8);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(br.buffer(static_cast<std::uint16_t>(c))), 8),
            "one shot");
  br.recycle(static_cast<std::uint16_t>(b));
  br.recycle(static_cast<std::uint16_t>(c));
  EXPECT_EQ(br.held(), 0u);
}

}  // namespace
