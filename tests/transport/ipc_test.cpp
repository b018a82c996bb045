// Shared-memory IPC: two processes (a forked child running its own one-shard runtime) or both ends in one
// process; order, senders, recv_from and its bounded stash, timeouts, header validation, too-large
// messages, a peer killed mid-stream, a clean close, and a sleeping reader woken by the writer.
#include "moirai/transport/ipc.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "moirai/core/runtime.hpp"
#include "moirai/core/spawn.hpp"
#include "moirai/core/timer.hpp"

namespace {

using moirai::Task;
using moirai::transport::EndpointId;
using moirai::transport::IpcChannel;
using moirai::transport::IpcMessage;
using moirai::transport::IpcOptions;
using moirai::transport::IpcWake;
using moirai::transport::TransportErrc;
using moirai::transport::TransportError;
using namespace std::chrono_literals;

std::string unique_name(const char* what) {
  static int n = 0;
  return "moirai-ipc-test-" + std::to_string(::getpid()) + "-" + what + "-" + std::to_string(n++);
}

std::span<const std::byte> bytes_of(const std::uint32_t& v) {
  return std::as_bytes(std::span<const std::uint32_t, 1>(&v, 1));
}
std::uint32_t value_of(const IpcMessage& m) {
  std::uint32_t v = 0;
  if (m.payload.size() == sizeof(v)) std::memcpy(&v, m.payload.data(), sizeof(v));
  return v;
}

moirai::RuntimeOptions one_shard(int cpu, moirai::IdleStrategy idle = moirai::IdleStrategy::spin_then_sleep) {
  moirai::RuntimeOptions o;
  o.cpus = {cpu};
  o.idle = idle;
  return o;
}

// Forks a child that runs `body` (a Task<int> factory) on its own one-shard runtime and exits with its
// result. Called before the parent makes any thread, so the child may do anything.
template <class Body>
pid_t fork_child(Body body) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    int rc = 100;
    try {
      moirai::Runtime rt(one_shard(1));
      rc = rt.run(std::move(body));
    } catch (const std::exception& e) {
      std::fprintf(stderr, "child: %s\n", e.what());
      rc = 101;
    }
    ::_exit(rc);
  }
  return pid;
}

int wait_child(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 1000 + WTERMSIG(status);
  return -1;
}

TransportErrc errc_of(auto&& fn) {
  try {
    fn();
  } catch (const TransportError& e) {
    return e.errc();
  }
  return TransportErrc{};
}

TEST(Ipc, MessagesArriveInOrderWithTheirSenderThenTheCleanCloseIsSeen) {
  const std::string name = unique_name("order");
  IpcChannel ch = IpcChannel::create(name);
  constexpr std::uint32_t kCount = 5000;  // more than the ring holds: the writer waits for room too
  const pid_t child = fork_child([&]() -> Task<int> {
    IpcChannel peer = IpcChannel::open(name, EndpointId{7, 0, 3});
    for (std::uint32_t i = 0; i < kCount; ++i)
      co_await peer.send(bytes_of(i));
    peer.close();
    co_return 0;
  });
  std::vector<std::uint32_t> got;
  bool senders_ok = true;
  TransportErrc end{};
  moirai::Runtime rt(one_shard(0));
  rt.run([&]() -> Task<void> {
    try {
      for (;;) {
        IpcMessage m = co_await ch.recv();
        senders_ok = senders_ok && m.sender == EndpointId{7, 0, 3};
        got.push_back(value_of(m));
      }
    } catch (const TransportError& e) {
      end = e.errc();
    }
  });
  EXPECT_EQ(wait_child(child), 0);
  ASSERT_EQ(got.size(), kCount);
  for (std::uint32_t i = 0; i < kCount; ++i)
    ASSERT_EQ(got[i], i);
  EXPECT_TRUE(senders_ok);
  EXPECT_EQ(end, TransportErrc::closed);
}

TEST(Ipc, EchoBetweenTwoProcesses) {
  const std::string name = unique_name("echo");
  IpcChannel ch = IpcChannel::create(name, IpcOptions{.sender = EndpointId{1, 0, 0}});
  const pid_t child = fork_child([&]() -> Task<int> {
    IpcChannel peer = IpcChannel::open(name, EndpointId{2, 0, 0});
    try {
      for (;;) {
        IpcMessage m = co_await peer.recv();
        if (!(m.sender == EndpointId{1, 0, 0})) co_return 3;
        while (!peer.try_send(m.payload))
          co_await moirai::yield();
      }
    } catch (const TransportError& e) {
      co_return e.errc() == TransportErrc::closed ? 0 : 4;
    }
  });
  std::vector<std::uint32_t> got;
  moirai::Runtime rt(one_shard(0));
  rt.run([&]() -> Task<void> {
    for (std::uint32_t i = 0; i < 300; ++i) {
      co_await ch.send(bytes_of(i));
      IpcMessage m = co_await ch.recv();
      got.push_back(value_of(m) == i && m.sender == EndpointId{2, 0, 0} ? 1u : 0u);
    }
    ch.close();
  });
  EXPECT_EQ(wait_child(child), 0);
  EXPECT_EQ(got, std::vector<std::uint32_t>(300, 1u));
}

TEST(Ipc, RecvFromTakesOneSenderAndKeepsTheOthersInOrder) {
  const std::string name = unique_name("from");
  IpcChannel a = IpcChannel::create(name);
  IpcChannel b = IpcChannel::open(name, EndpointId{});
  const EndpointId x{1, 0, 1}, y{1, 0, 2};
  for (std::uint32_t i = 0; i < 4; ++i) {  // x0 y0 x1 y1 x2 y2 x3 y3
    ASSERT_TRUE(a.try_send(bytes_of(i), x));
    ASSERT_TRUE(a.try_send(bytes_of(100 + i), y));
  }
  std::vector<std::uint32_t> got;
  moirai::Runtime rt(one_shard(0));
  rt.run([&]() -> Task<void> {
    for (int i = 0; i < 3; ++i)
      got.push_back(value_of(co_await b.recv_from(y)));
    for (int i = 0; i < 3; ++i)
      got.push_back(value_of(co_await b.recv()));      // x0 x1 x2 from the stash
    got.push_back(value_of(co_await b.recv_from(y)));  // y3, past x3
    got.push_back(value_of(co_await b.recv()));        // x3
  });
  EXPECT_EQ(got, (std::vector<std::uint32_t>{100, 101, 102, 0, 1, 2, 103, 3}));
}

TEST(Ipc, AFullStashRefusesAndLosesNothing) {
  const std::string name = unique_name("stash");
  IpcChannel a = IpcChannel::create(name);
  IpcOptions small;
  small.stash_capacity = 2;
  IpcChannel b = IpcChannel::open(name, EndpointId{}, small);
  const EndpointId x{1, 0, 1}, y{1, 0, 2};
  for (std::uint32_t i = 0; i < 3; ++i)
    ASSERT_TRUE(a.try_send(bytes_of(i), x));
  ASSERT_TRUE(a.try_send(bytes_of(9), y));
  std::vector<std::uint32_t> got;
  TransportErrc refused{};
  moirai::Runtime rt(one_shard(0));
  rt.run([&]() -> Task<void> {
    try {
      (void)co_await b.recv_from(y);
    } catch (const TransportError& e) {
      refused = e.errc();
    }
    for (int i = 0; i < 3; ++i)
      got.push_back(value_of(co_await b.recv()));
    got.push_back(value_of(co_await b.recv_from(y)));
  });
  EXPECT_EQ(refused, TransportErrc::message_too_large);
  EXPECT_EQ(got, (std::vector<std::uint32_t>{0, 1, 2, 9}));
}

TEST(Ipc, ReceivesTimeOut) {
  const std::string name = unique_name("timeout");
  IpcChannel a = IpcChannel::create(name);
  TransportErrc plain{}, filtered{}, waiting{};
  moirai::Runtime rt(one_shard(0));
  rt.run([&]() -> Task<void> {
    try {
      (void)co_await a.recv(0ns);
    } catch (const TransportError& e) {
      plain = e.errc();
    }
    try {
      (void)co_await a.recv_from(EndpointId{1, 2, 3}, 5ms);
    } catch (const TransportError& e) {
      filtered = e.errc();
    }
    IpcChannel b = IpcChannel::open(name, EndpointId{4, 0, 0});
    std::uint32_t v = 1;
    b.try_send(bytes_of(v));  // from another sender than the one awaited: set aside, not returned
    try {
      (void)co_await a.recv_from(EndpointId{1, 2, 3}, 5ms);
    } catch (const TransportError& e) {
      waiting = e.errc();
    }
    EXPECT_EQ(value_of(co_await a.recv()), 1u);
  });
  EXPECT_EQ(plain, TransportErrc::timeout);
  EXPECT_EQ(filtered, TransportErrc::timeout);
  EXPECT_EQ(waiting, TransportErrc::timeout);
}

// A spinning receive (spin_before_wait) takes a message without suspending, and gives way as soon as anything
// else on its shard is ready: with a budget of an hour, the sender task below runs only because the spin
// stops when its timer is due (and again when a ready task is queued), so the test ends at all.
TEST(Ipc, ASpinningReceiveGivesWayToTheShardsOtherWork) {
  const std::string name = unique_name("spin");
  IpcOptions spin;
  spin.spin_before_wait = std::chrono::hours(1);
  IpcChannel a = IpcChannel::create(name, spin);
  IpcChannel b = IpcChannel::open(name, EndpointId{5, 0, 0});
  std::vector<std::uint32_t> got;
  bool sender_ran_first = false;
  moirai::Runtime rt(one_shard(0, moirai::IdleStrategy::spin));
  rt.run([&]() -> Task<void> {
    auto timed = moirai::spawn([&]() -> Task<void> {
      co_await moirai::sleep_for(2ms);  // a due timer ends the spin
      std::uint32_t v = 1;
      b.try_send(bytes_of(v));
    });
    got.push_back(value_of(co_await a.recv()));
    auto ready = moirai::spawn([&]() -> Task<void> {  // a ready task ends the spin
      sender_ran_first = got.size() == 1;
      std::uint32_t v = 2;
      b.try_send(bytes_of(v));
      co_return;
    });
    got.push_back(value_of(co_await a.recv()));
    co_await timed.join();
    co_await ready.join();
  });
  EXPECT_EQ(got, (std::vector<std::uint32_t>{1, 2}));
  EXPECT_TRUE(sender_ran_first);
}

TEST(Ipc, ASendToAFullRingWaitsForRoomOrTimesOut) {
  const std::string name = unique_name("full");
  IpcChannel a = IpcChannel::create(name, IpcOptions{.capacity = 2});
  IpcChannel b = IpcChannel::open(name, EndpointId{});
  TransportErrc full{};
  std::vector<std::uint32_t> got;
  moirai::Runtime rt(one_shard(0));
  rt.run([&]() -> Task<void> {
    for (std::uint32_t i = 0; i < 2; ++i)
      co_await a.send(bytes_of(i));
    std::uint32_t more = 2;
    try {
      co_await a.send(bytes_of(more), 2ms);
    } catch (const TransportError& e) {
      full = e.errc();
    }
    auto late = moirai::spawn([&]() -> Task<void> { co_await a.send(bytes_of(more)); });  // waits for room
    for (int i = 0; i < 3; ++i)
      got.push_back(value_of(co_await b.recv()));
    co_await late.join();
  });
  EXPECT_EQ(full, TransportErrc::timeout);
  EXPECT_EQ(got, (std::vector<std::uint32_t>{0, 1, 2}));
}

TEST(Ipc, MessagesOverTheSlotAreRefusedWholeAndNothingIsWritten) {
  const std::string name = unique_name("large");
  IpcChannel a = IpcChannel::create(name, IpcOptions{.slot_size = 64});
  IpcChannel b = IpcChannel::open(name, EndpointId{});
  ASSERT_EQ(a.max_payload(), 48u);
  std::vector<std::byte> big(49), fits(48, std::byte{5});
  EXPECT_EQ(errc_of([&] { a.try_send(big); }), TransportErrc::message_too_large);
  EXPECT_TRUE(a.try_send(fits));
  std::size_t size = 0;
  moirai::Runtime rt(one_shard(0));
  rt.run([&]() -> Task<void> { size = (co_await b.recv()).payload.size(); });
  EXPECT_EQ(size, 48u);
}

TEST(Ipc, OpenNamesWhatIsWrongWithTheRegion) {
  const std::string missing = unique_name("missing");
  EXPECT_EQ(errc_of([&] { IpcChannel::open(missing, EndpointId{}); }), TransportErrc::connection_refused);

  const std::string junk = unique_name("junk");
  const int fd = ::shm_open(("/" + junk).c_str(), O_RDWR | O_CREAT | O_EXCL, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::ftruncate(fd, 8192), 0);
  ASSERT_EQ(::pwrite(fd, "not a ring", 10, 0), 10);
  ::close(fd);
  try {
    IpcChannel::open(junk, EndpointId{});
    ADD_FAILURE() << "opened a file that is not a region";
  } catch (const TransportError& e) {
    EXPECT_EQ(e.errc(), TransportErrc::malformed);
    EXPECT_NE(std::string(e.what()).find("magic"), std::string::npos) << e.what();
  }
  ::shm_unlink(("/" + junk).c_str());

  const std::string old = unique_name("version");
  IpcChannel a = IpcChannel::create(old);
  {
    const int f = ::shm_open(("/" + old).c_str(), O_RDWR, 0);
    ASSERT_GE(f, 0);
    const std::uint32_t other_version = 99;
    ASSERT_EQ(::pwrite(f, &other_version, 4, 8), 4);  // the version follows the 8-byte magic
    ::close(f);
  }
  try {
    IpcChannel::open(old, EndpointId{});
    ADD_FAILURE() << "opened a region of another version";
  } catch (const TransportError& e) {
    EXPECT_EQ(e.errc(), TransportErrc::malformed);
    EXPECT_NE(std::string(e.what()).find("version 99"), std::string::npos) << e.what();
  }

  const std::string cut = unique_name("cut");
  IpcChannel c = IpcChannel::create(cut);
  ASSERT_EQ(::truncate(("/dev/shm/" + cut).c_str(), 8192), 0);
  try {
    IpcChannel::open(cut, EndpointId{});
    ADD_FAILURE() << "opened a truncated region";
  } catch (const TransportError& e) {
    EXPECT_EQ(e.errc(), TransportErrc::malformed);
    EXPECT_NE(std::string(e.what()).find("do not add up"), std::string::npos) << e.what();
  }
}

TEST(Ipc, ASecondOpenerIsRefusedAndBadOptionsAreNamed) {
  const std::string name = unique_name("twice");
  IpcChannel a = IpcChannel::create(name);
  IpcChannel b = IpcChannel::open(name, EndpointId{});
  EXPECT_EQ(errc_of([&] { IpcChannel::open(name, EndpointId{}); }), TransportErrc::not_supported);
  EXPECT_EQ(errc_of([&] { IpcChannel::create(unique_name("odd"), IpcOptions{.slot_size = 100}); }),
            TransportErrc::invalid_argument);
  EXPECT_EQ(errc_of([&] { IpcChannel::create("no/slash"); }), TransportErrc::invalid_argument);
}

TEST(Ipc, APeerKilledMidStreamIsReportedAfterItsMessagesAndTheShardGoesOn) {
  const std::string name = unique_name("killed");
  IpcChannel ch = IpcChannel::create(name);
  constexpr std::uint32_t kSent = 200;
  const pid_t child = fork_child([&]() -> Task<int> {
    IpcChannel peer = IpcChannel::open(name, EndpointId{9, 0, 0});
    for (std::uint32_t i = 0; i < kSent; ++i)
      co_await peer.send(bytes_of(i));
    ::kill(::getpid(), SIGKILL);  // mid-stream: no close, the ring's flags still say open
    co_return 0;
  });
  std::uint32_t received = 0;
  bool in_order = true;
  std::string why;
  bool went_on = false;
  moirai::Runtime rt(one_shard(0));
  rt.run([&]() -> Task<void> {
    try {
      for (;;) {
        in_order = in_order && value_of(co_await ch.recv()) == received;
        ++received;
      }
    } catch (const TransportError& e) {
      if (e.errc() == TransportErrc::closed) why = e.what();
    }
    std::uint32_t v = 1;
    try {
      ch.try_send(bytes_of(v));
    } catch (const TransportError& e) {
      if (e.errc() != TransportErrc::closed) why += " (send did not say closed)";
    }
    co_await moirai::sleep_for(1ms);
    went_on = true;
  });
  EXPECT_EQ(wait_child(child), 1000 + SIGKILL);
  EXPECT_EQ(received, kSent);
  EXPECT_TRUE(in_order);
  EXPECT_NE(why.find("pid " + std::to_string(child) + ") died"), std::string::npos) << why;
  EXPECT_TRUE(went_on);
}

// Waits (up to 10 s) until `path` exists: a reader makes its FIFO when it first falls asleep, however slowly
// its runtime started.
Task<void> until_made(const std::string& path) {
  for (int i = 0; i < 10'000 && ::access(path.c_str(), F_OK) != 0; ++i)
    co_await moirai::sleep_for(1ms);
}

// A reader killed while asleep on its FIFO leaves its sleeping word raised and no reader on the FIFO: the
// writer's next wake-up must not raise SIGPIPE (which would kill the survivor), and the writer goes on to
// learn that its peer died.
TEST(Ipc, AWriterOutlivesAReaderKilledAsleepOnItsFifo) {
  const std::string name = unique_name("fifo-killed");
  const std::string fifo = "/dev/shm/" + name + ".wake1";
  IpcOptions o;
  o.wake = IpcWake::fifo;
  IpcChannel ch = IpcChannel::create(name, o);
  const pid_t child = fork_child([&]() -> Task<int> {
    IpcChannel peer = IpcChannel::open(name, EndpointId{4, 0, 0}, o);
    const std::uint32_t v = value_of(co_await peer.recv(10s));
    co_await peer.send(bytes_of(v));
    (void)co_await peer.recv(10s);  // asleep here when it is killed
    co_return 0;
  });
  std::string why;
  bool went_on = false;
  moirai::Runtime rt(one_shard(0));
  rt.run([&]() -> Task<void> {
    co_await until_made(fifo);  // the child fell asleep
    std::uint32_t first = 7;
    co_await ch.send(bytes_of(first));  // wakes the child through its FIFO
    EXPECT_EQ(value_of(co_await ch.recv(10s)), 7u);
    co_await moirai::sleep_for(50ms);  // the child is asleep again
    ::kill(child, SIGKILL);
    EXPECT_EQ(wait_child(child), 1000 + SIGKILL);
    co_await moirai::sleep_for(200ms);  // the dead child's ring, and its poll on the FIFO, are torn down
    std::uint32_t second = 8;
    try {
      co_await ch.send(bytes_of(second));  // its wake-up finds the FIFO without a reader
    } catch (const TransportError&) {      // or the death was already seen: closed
    }
    try {
      (void)co_await ch.recv(10s);
    } catch (const TransportError& e) {
      if (e.errc() == TransportErrc::closed) why = e.what();
    }
    went_on = true;
  });
  EXPECT_NE(why.find("pid " + std::to_string(child) + ") died"), std::string::npos) << why;
  EXPECT_TRUE(went_on);
  ::unlink(fifo.c_str());  // the killed child could not remove its FIFO
}

// The reader's shard sleeps (idle = sleep) before the writer even opens; the opener's arrival and then its
// messages must wake it, through the futex wait in the ring, the poll of its FIFO, or the bounded recheck.
// The child waits for the reader's "go" before it pauses, so the reader has nothing to do and sleeps however
// slowly either runtime started (sanitizers). With the futex or the FIFO nothing else bounds the shard's
// sleep, so a wake-up that did not come would end the receive in its timeout, not in a message.
void sleeping_reader_is_woken(IpcWake wake) {
  const std::string name = unique_name(moirai::transport::to_string(wake));
  IpcOptions o;
  o.wake = wake;
  IpcChannel ch = IpcChannel::create(name, o);
  const pid_t child = fork_child([&]() -> Task<int> {
    co_await moirai::sleep_for(20ms);  // the reader may fall asleep before anyone opened
    IpcChannel peer = IpcChannel::open(name, EndpointId{3, 0, 0}, o);
    std::uint32_t hello = 100;
    co_await peer.send(bytes_of(hello));
    if (value_of(co_await peer.recv(10s)) != 200) co_return 5;
    co_await moirai::sleep_for(20ms);  // the reader waits with nothing else to do: it sleeps
    for (std::uint32_t i = 0; i < 3; ++i) {
      co_await peer.send(bytes_of(i));
      co_await moirai::sleep_for(5ms);
    }
    co_return 0;
  });
  std::vector<std::uint32_t> got;
  bool fifo_while_asleep = false;
  moirai::Runtime rt(one_shard(0, moirai::IdleStrategy::sleep));
  rt.run([&]() -> Task<void> {
    got.push_back(value_of(co_await ch.recv(10s)));
    fifo_while_asleep = ::access(("/dev/shm/" + name + ".wake0").c_str(), F_OK) == 0;
    std::uint32_t go = 200;
    co_await ch.send(bytes_of(go));
    for (int i = 0; i < 3; ++i)
      got.push_back(value_of(co_await ch.recv(10s)));
  });
  EXPECT_GT(rt.stats(0).sleeps, 0u);
  EXPECT_EQ(wait_child(child), 0);
  EXPECT_EQ(got, (std::vector<std::uint32_t>{100, 0, 1, 2}));
  if (wake == IpcWake::recheck) {
    EXPECT_EQ(ch.wakeups(), 0u);
  } else {
    EXPECT_GT(ch.wakeups(), 0u) << "no wake-up came through " << moirai::transport::to_string(ch.wake());
  }
  if (wake == IpcWake::fifo) {
    EXPECT_EQ(ch.wake(), IpcWake::fifo);
    EXPECT_TRUE(fifo_while_asleep) << "the reader slept without its FIFO";
  } else if (wake == IpcWake::recheck) {
    EXPECT_EQ(ch.wake(), IpcWake::recheck);
    EXPECT_FALSE(fifo_while_asleep);
  } else {
    EXPECT_NE(ch.wake(), IpcWake::recheck) << "this kernel has io_uring's poll: the FIFO at least";
  }
  ch.close();
  EXPECT_NE(::access(("/dev/shm/" + name + ".wake0").c_str(), F_OK), 0) << "close left the FIFO";
}

TEST(Ipc, ASleepingReaderIsWokenThroughTheFutex) {
  sleeping_reader_is_woken(IpcWake::futex);
}

TEST(Ipc, ASleepingReaderIsWokenThroughItsFifo) {
  sleeping_reader_is_woken(IpcWake::fifo);
}

TEST(Ipc, ASleepingReaderIsWokenByTheBoundedRecheck) {
  sleeping_reader_is_woken(IpcWake::recheck);
}

// A writer that cannot reach the reader's FIFO (here: removed by hand while the reader sleeps on it) wakes
// nobody; the reader's safety recheck still finds every message. The child asks for a reply to each within
// 2 s, 200 times the recheck's period; without the recheck nothing would end the reader's sleep before its
// own 30 s timeout, so the child's receive would time out and it would exit with 101.
TEST(Ipc, ASleepingReaderWhoseFifoIsGoneStillGetsEveryMessage) {
  const std::string name = unique_name("fifo-gone");
  const std::string fifo = "/dev/shm/" + name + ".wake0";
  IpcOptions o;
  o.wake = IpcWake::fifo;
  IpcChannel ch = IpcChannel::create(name, o);
  const pid_t child = fork_child([&]() -> Task<int> {
    co_await until_made(fifo);  // the reader fell asleep
    if (::unlink(fifo.c_str()) != 0) co_return 6;
    IpcChannel peer = IpcChannel::open(name, EndpointId{3, 0, 0}, o);
    for (std::uint32_t i = 0; i < 3; ++i) {
      co_await peer.send(bytes_of(i));
      if (value_of(co_await peer.recv(2s)) != i + 100) co_return 7;
      co_await moirai::sleep_for(5ms);  // the reader sleeps again
    }
    co_return 0;
  });
  std::vector<std::uint32_t> got;
  moirai::Runtime rt(one_shard(0, moirai::IdleStrategy::sleep));
  rt.run([&]() -> Task<void> {
    for (int i = 0; i < 3; ++i) {
      const std::uint32_t v = value_of(co_await ch.recv(30s));
      got.push_back(v);
      const std::uint32_t reply = v + 100;
      co_await ch.send(bytes_of(reply));
    }
  });
  EXPECT_EQ(wait_child(child), 0);
  EXPECT_EQ(got, (std::vector<std::uint32_t>{0, 1, 2}));
  EXPECT_EQ(ch.wake(), IpcWake::fifo);
  EXPECT_EQ(ch.wakeups(), 0u) << "the FIFO was gone: no wake-up could come through it";
  EXPECT_GT(rt.stats(0).sleeps, 0u);
}

TEST(Ipc, ACancelledReceiveEndsAndTheChannelStaysUsable) {
  const std::string name = unique_name("cancel");
  IpcChannel a = IpcChannel::create(name);
  IpcChannel b = IpcChannel::open(name, EndpointId{});
  bool cancelled = false;
  std::uint32_t after = 0;
  moirai::Runtime rt(one_shard(0));
  rt.run([&]() -> Task<void> {
    auto waiting = moirai::spawn([&]() -> Task<void> { (void)co_await b.recv(); });
    co_await moirai::sleep_for(1ms);
    waiting.cancel();
    try {
      co_await waiting.join();
    } catch (const moirai::TaskCancelled&) {
      cancelled = true;
    }
    std::uint32_t v = 42;
    a.try_send(bytes_of(v));
    after = value_of(co_await b.recv());
  });
  EXPECT_TRUE(cancelled);
  EXPECT_EQ(after, 42u);
}

}  // namespace
