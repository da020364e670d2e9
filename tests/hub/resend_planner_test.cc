// When the hub asks a box for seqs again (hub/resend_sweep.h): only for what was missing at two
// looks in a row, for a tail only while the hub's highest seq stands still, never for what the
// box said is gone, and no more than max_seqs at once.
#include <gtest/gtest.h>

#include "hub/resend_sweep.h"

namespace edgesync::hub {
namespace {

using json = nlohmann::json;
using Ranges = std::vector<events::SeqRange>;

json gap(int64_t from, int64_t to, const char* where, const char* state = "missing",
         const char* device = "pos-1") {
  return {{"store_id", "s1"}, {"device_id", device}, {"incarnation", "inc"}, {"from", from},
          {"to", to},         {"where", where},       {"state", state},       {"reason", nullptr}};
}

TEST(ResendPlanner, AHoleIsAskedForOnlyWhenItIsStillThereAtTheNextLook) {
  ResendPlanner p(1000);
  EXPECT_TRUE(p.look(json::array({gap(5, 9, "hole")})).empty());
  // 5-6 arrived meanwhile: only 7-9 are asked for.
  auto asked = p.look(json::array({gap(7, 9, "hole")}));
  ASSERT_EQ(asked.size(), 1u);
  EXPECT_EQ(asked[0].store_id, "s1");
  EXPECT_EQ(asked[0].device_id, "pos-1");
  EXPECT_EQ(asked[0].request.incarnation, "inc");
  EXPECT_EQ(asked[0].request.ranges, (Ranges{{7, 9}}));
}

TEST(ResendPlanner, ATailIsLeftAloneWhileTheStreamCatchesUp) {
  ResendPlanner p(1000);
  EXPECT_TRUE(p.look(json::array({gap(11, 50, "tail")})).empty());
  // The hub's highest moved from 10 to 20: events are still arriving.
  EXPECT_TRUE(p.look(json::array({gap(21, 50, "tail")})).empty());
  // It stood still since the last look: asked for.
  auto asked = p.look(json::array({gap(21, 50, "tail")}));
  ASSERT_EQ(asked.size(), 1u);
  EXPECT_EQ(asked[0].request.ranges, (Ranges{{21, 50}}));
}

TEST(ResendPlanner, GoneSeqsAreNeverAskedFor) {
  ResendPlanner p(1000);
  json gaps = json::array({gap(1, 100, "hole", "gone"), gap(150, 160, "hole")});
  p.look(gaps);
  auto asked = p.look(gaps);
  ASSERT_EQ(asked.size(), 1u);
  EXPECT_EQ(asked[0].request.ranges, (Ranges{{150, 160}}));
}

TEST(ResendPlanner, ARequestStopsAtMaxSeqsAndEachDeviceGetsItsOwn) {
  ResendPlanner p(25);
  json gaps = json::array({gap(1, 20, "hole"), gap(30, 60, "hole"),
                           gap(1, 5, "hole", "missing", "pos-2")});
  p.look(gaps);
  auto asked = p.look(gaps);
  ASSERT_EQ(asked.size(), 2u);
  EXPECT_EQ(asked[0].request.ranges, (Ranges{{1, 20}, {30, 34}}));
  EXPECT_EQ(asked[1].device_id, "pos-2");
  EXPECT_EQ(asked[1].request.ranges, (Ranges{{1, 5}}));
}

// A seq the box sends but the hub never keeps (it rejects the message) is asked for kMaxAsks
// times, then left to gaps and the log.
TEST(ResendPlanner, ASeqThatNeverArrivesIsAskedForAFewTimesThenLeftAlone) {
  ResendPlanner p(1000);
  json gaps = json::array({gap(7, 7, "hole")});
  p.look(gaps);
  for (int i = 1; i <= ResendPlanner::kMaxAsks; ++i) {
    auto asked = p.look(gaps);
    ASSERT_EQ(asked.size(), 1u) << "ask " << i;
    EXPECT_EQ(asked[0].request.ranges, (Ranges{{7, 7}}));
    EXPECT_EQ(asked[0].last_ask.empty(), i < ResendPlanner::kMaxAsks) << "ask " << i;
  }
  EXPECT_TRUE(p.look(gaps).empty());
  // A new hole in the same stream is still asked for.
  json more = json::array({gap(7, 7, "hole"), gap(20, 21, "hole")});
  p.look(more);
  auto asked = p.look(more);
  ASSERT_EQ(asked.size(), 1u);
  EXPECT_EQ(asked[0].request.ranges, (Ranges{{20, 21}}));
}

TEST(ResendPlanner, ATailSplitByGonePiecesIsOneTail) {
  ResendPlanner p(1000);
  json gaps = json::array({gap(11, 20, "tail"), gap(21, 30, "tail", "gone"), gap(31, 40, "tail")});
  p.look(gaps);
  auto asked = p.look(gaps);
  ASSERT_EQ(asked.size(), 1u);
  EXPECT_EQ(asked[0].request.ranges, (Ranges{{11, 20}, {31, 40}}));
  // The tail's first piece came in: the tail moved, nothing is asked for this time.
  EXPECT_TRUE(p.look(json::array({gap(21, 30, "tail", "gone"), gap(31, 40, "tail")})).empty());
}

TEST(ResendPlanner, ARequestCarriesNoMoreRangesThanABoxReads) {
  ResendPlanner p(1000000);
  json gaps = json::array();
  for (int64_t s = 2; s < 2 * 1500; s += 2) gaps.push_back(gap(s, s, "hole"));
  p.look(gaps);
  auto asked = p.look(gaps);
  ASSERT_EQ(asked.size(), 1u);
  EXPECT_EQ(asked[0].request.ranges.size(), events::kMaxResendRanges);
}

}  // namespace
}  // namespace edgesync::hub
