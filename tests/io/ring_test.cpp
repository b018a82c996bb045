#include "moirai/io/ring.hpp"

#include <gtest/gtest.h>

namespace {

struct Recorder : moirai::io::Completion {
  int calls = 0;
  int res = 0;
  Recorder() {
    on_complete = [](Completion* self, int r, std::uint32_t) noexcept {
      auto* me = static_cast<Recorder*>(self);
      ++me->calls;
      me->res = r;
    };
  }
};

TEST(Ring, NopCompletesIntoItsWaiter) {
  moirai::io::Ring ring;
  Recorder rec;
  io_uring_sqe* sqe = ring.get_sqe();
  ASSERT_NE(sqe, nullptr);
  io_uring_prep_nop(sqe);
  moirai::io::Ring::set_completion(sqe, &rec);
  unsigned seen = 0;
  while (seen == 0)
    seen = ring.wait(-1);
  EXPECT_EQ(rec.calls, 1);
  EXPECT_EQ(rec.res, 0);
}

}  // namespace
