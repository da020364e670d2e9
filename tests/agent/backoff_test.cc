#include "agent/backoff.h"

#include <gtest/gtest.h>

#include <set>
#include <vector>

namespace edgesync::agent {
namespace {

TEST(Backoff, CapDoublesFromInitialUpToMax) {
  EXPECT_EQ(backoff_cap_ms(0, 500, 60000), 500);
  EXPECT_EQ(backoff_cap_ms(1, 500, 60000), 1000);
  EXPECT_EQ(backoff_cap_ms(4, 500, 60000), 8000);
  EXPECT_EQ(backoff_cap_ms(7, 500, 60000), 60000);
  EXPECT_EQ(backoff_cap_ms(1000, 500, 60000), 60000) << "no overflow after many failures";
}

TEST(Backoff, DelaysStayWithinInitialAndCapAndAreSpread) {
  std::mt19937_64 rng(42);
  std::set<int64_t> seen;
  for (int i = 0; i < 2000; ++i) {
    auto d = backoff_delay(4, 500, 60000, rng).count();
    ASSERT_GE(d, 500);
    ASSERT_LE(d, 16000);
    seen.insert(d / 1000);
  }
  // Full jitter: the whole range is used, not a narrow band around the cap.
  EXPECT_TRUE(seen.count(0) && seen.count(15)) << "spread over [0.5 s, 16 s]";
}

// A hub restart drops every box at once: their first retries must not all land together.
TEST(Backoff, FirstRetryIsAlreadySpread) {
  std::mt19937_64 rng(7);
  std::set<int64_t> tenths;
  for (int i = 0; i < 500; ++i) {
    auto d = backoff_delay(0, 500, 60000, rng).count();
    ASSERT_GE(d, 500);
    ASSERT_LE(d, 1000);
    tenths.insert(d / 100);
  }
  EXPECT_EQ(tenths.size(), 6u) << "spread over [0.5 s, 1 s]";
}

TEST(Backoff, MaxBelowTwiceInitialCapsTheRange) {
  std::mt19937_64 rng(1);
  for (int i = 0; i < 200; ++i) {
    auto d = backoff_delay(i % 3, 500, 700, rng).count();
    ASSERT_GE(d, 500);
    ASSERT_LE(d, 700);
  }
  EXPECT_EQ(backoff_delay(3, 500, 500, rng).count(), 500);
}

// A broker restart drops the fleet at once; a broker back within a second must not get the
// whole fleet's reconnects in that second: the retry after an established connection is spread
// over the whole window, evenly enough that no second takes much more than its share.
TEST(Backoff, ReconnectAfterALossIsSpreadOverTheWindow) {
  std::mt19937_64 rng(11);
  std::vector<int> per_second(10, 0);
  const int fleet = 5000;
  for (int i = 0; i < fleet; ++i) {
    auto d = delay_after_loss(0, 500, 60000, 10000, rng).count();
    ASSERT_GE(d, 500);
    ASSERT_LE(d, 10000);
    ++per_second[d / 1000 == 10 ? 9 : d / 1000];
  }
  // 9.5 s of window: about 526 a second (half that in the first, which starts at 0.5 s).
  for (int s = 1; s < 10; ++s) {
    EXPECT_LT(per_second[s], fleet / 7) << "second " << s;
    EXPECT_GT(per_second[s], fleet / 14) << "second " << s;
  }
}

// A second broker restart soon after the first (the connection was up less than 30 s, so the
// attempt count was not reset) is spread at least as widely, and longer once the backoff is.
TEST(Backoff, ASecondLossSoonAfterIsSpreadToo) {
  std::mt19937_64 rng(5);
  int in_first_second = 0;
  for (int i = 0; i < 1000; ++i) {
    auto d = delay_after_loss(1, 500, 60000, 10000, rng).count();
    ASSERT_GE(d, 500);
    ASSERT_LE(d, 10000);
    if (d < 1500) ++in_first_second;
  }
  EXPECT_LT(in_first_second, 200) << "a tenth of the window, not the backoff's [0.5 s, 2 s]";
  for (int i = 0; i < 200; ++i) {
    auto d = delay_after_loss(5, 500, 60000, 10000, rng).count();
    ASSERT_LE(d, 32000) << "the backoff's cap for retry 5: 500 ms * 2^6";
  }
}

TEST(Backoff, NoSpreadLeavesTheUsualBackoffAndMaxMsBoundsTheWindow) {
  std::mt19937_64 rng(3);
  for (int i = 0; i < 500; ++i) {
    auto d = delay_after_loss(0, 500, 60000, 0, rng).count();
    ASSERT_GE(d, 500);
    ASSERT_LE(d, 1000);
  }
  // A window shorter than the usual first range does not narrow it.
  for (int i = 0; i < 500; ++i) {
    auto d = delay_after_loss(0, 500, 60000, 700, rng).count();
    ASSERT_GE(d, 500);
    ASSERT_LE(d, 1000);
  }
  // retry.max_ms stays the bound of every wait: an operator who set it low is not made to wait
  // the default window.
  for (int i = 0; i < 500; ++i) {
    auto d = delay_after_loss(0, 100, 2000, 10000, rng).count();
    ASSERT_GE(d, 100);
    ASSERT_LE(d, 2000);
  }
  EXPECT_EQ(delay_after_loss(0, 500, 500, 0, rng).count(), 500);
}

}  // namespace
}  // namespace edgesync::agent
