// Does a registered (fixed) buffer or zero-copy help a small UDP send? 64-byte sends on a connected loopback
// UDP socket through one io_uring (SINGLE_ISSUER | DEFER_TASKRUN, as a shard sets it up): plain
// IORING_OP_SEND, IORING_OP_SEND_ZC, and SEND_ZC from a buffer registered with io_uring_register_buffers.
// Each iteration submits one send and waits for every CQE it makes (zero-copy makes two: the result, then a
// notification when the kernel lets go of the buffer).
//
// Zero-copy costs more than a plain send for a small datagram, registered buffer or not: a second CQE (the
// notification), and on loopback the kernel copies the bytes anyway. DatagramSocket therefore sends with
// plain IORING_OP_SEND / SENDMSG.
#include <benchmark/benchmark.h>
#include <liburing.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace {

struct Loopback {
  io_uring ring{};
  int rx = -1;
  int tx = -1;
  alignas(4096) char buf[4096] = {};
  bool ok = false;
  Loopback() {
    io_uring_params p{};
    p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
    if (io_uring_queue_init_params(64, &ring, &p) != 0) return;
    rx = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    tx = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (bind(rx, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        getsockname(rx, reinterpret_cast<sockaddr*>(&a), &len) != 0 ||
        connect(tx, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
      return;
    iovec iov{buf, sizeof buf};
    ok = io_uring_register_buffers(&ring, &iov, 1) == 0;
  }
  ~Loopback() {
    io_uring_queue_exit(&ring);
    close(rx);
    close(tx);
  }
  void drain() {
    char sink[256];
    while (recv(rx, sink, sizeof sink, MSG_DONTWAIT) > 0) {
    }
  }
};

// mode 0: send; 1: send_zc; 2: send_zc_fixed.
void BM_UdpSend64(benchmark::State& state) {
  Loopback l;
  if (!l.ok) {
    state.SkipWithError("io_uring or loopback UDP unavailable");
    return;
  }
  const auto mode = state.range(0);
  std::int64_t n = 0;
  for (auto _ : state) {
    io_uring_sqe* sqe = io_uring_get_sqe(&l.ring);
    if (mode == 0) {
      io_uring_prep_send(sqe, l.tx, l.buf, 64, 0);
    } else if (mode == 1) {
      io_uring_prep_send_zc(sqe, l.tx, l.buf, 64, 0, 0);
    } else {
      io_uring_prep_send_zc_fixed(sqe, l.tx, l.buf, 64, 0, 0, 0);
    }
    io_uring_submit(&l.ring);
    for (bool more = true; more;) {
      io_uring_cqe* cqe = nullptr;
      io_uring_wait_cqe(&l.ring, &cqe);
      if (cqe->res < 0 && (cqe->flags & IORING_CQE_F_NOTIF) == 0) state.SkipWithError("send failed");
      more = (cqe->flags & IORING_CQE_F_MORE) != 0;  // a zero-copy result says a notification follows
      io_uring_cqe_seen(&l.ring, cqe);
    }
    if (++n % 1024 == 0) l.drain();
  }
}
BENCHMARK(BM_UdpSend64)->Arg(0)->Arg(1)->Arg(2);

}  // namespace
