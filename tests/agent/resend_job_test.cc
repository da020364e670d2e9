// How a box answers the hub's resend request (agent/resend_job.h): delivered seqs are looked up
// and sent again, undelivered ones are left to the stream, pruned ones are reported gone, a
// request of another incarnation is gone whole, and a large request is cut at the box's limit.
#include "agent/resend_job.h"

#include <gtest/gtest.h>

namespace edgesync::agent {
namespace {

using events::SeqRange;
using Ranges = std::vector<SeqRange>;

events::ResendRequest asking(Ranges ranges, std::string incarnation = "inc-1") {
  return {"req-1", std::move(incarnation), std::move(ranges)};
}

// The rows an outbox holding `first`..`last` (minus `missing`) returns for a read after `after`.
std::vector<storage::StoredEvent> outbox_rows(int64_t first, int64_t last, int64_t after,
                                              size_t limit, std::vector<int64_t> missing = {}) {
  std::vector<storage::StoredEvent> out;
  for (int64_t s = std::max(first, after + 1); s <= last && out.size() < limit; ++s) {
    if (std::find(missing.begin(), missing.end(), s) != missing.end()) continue;
    storage::StoredEvent e;
    e.seq = s;
    out.push_back(e);
  }
  return out;
}

// Drives the job as the publisher does, `room` rows at a time; returns the seqs sent again.
std::vector<int64_t> run(ResendJob& job, int64_t first, int64_t last, size_t room,
                         std::vector<int64_t> missing = {}) {
  std::vector<int64_t> sent;
  for (int guard = 0; !job.done() && guard < 10000; ++guard) {
    const size_t asked = std::min<int64_t>(room, job.range_last() - job.cursor() + 1);
    auto rows = outbox_rows(first, last, job.cursor() - 1, asked, missing);
    std::vector<size_t> to_send;
    job.take(rows, asked, &to_send);
    for (size_t i : to_send) sent.push_back(rows[i].seq);
  }
  EXPECT_TRUE(job.done());
  return sent;
}

TEST(ResendJob, DeliveredSeqsAreSentAgainAndUndeliveredOnesLeftToTheStream) {
  ResendJob job(asking({{3, 5}, {9, 14}}), "inc-1", /*delivered_through=*/12, 1000);
  std::vector<int64_t> sent = run(job, 1, 14, 2);
  EXPECT_EQ(sent, (std::vector<int64_t>{3, 4, 5, 9, 10, 11, 12}));
  events::ResendReply r = job.reply("s1", "d1");
  EXPECT_EQ(r.request_id, "req-1");
  EXPECT_EQ(r.resent, (Ranges{{3, 5}, {9, 12}}));
  EXPECT_EQ(r.pending, (Ranges{{13, 14}}));
  EXPECT_TRUE(r.gone.empty());
  EXPECT_TRUE(r.gone_reason.empty());
}

TEST(ResendJob, PrunedHistoryAndHolesAreGoneWithTheReason) {
  // The outbox keeps 50..100; seq 60 is not in it either.
  ResendJob job(asking({{1, 70}}), "inc-1", 100, 1000);
  std::vector<int64_t> sent = run(job, 50, 100, 7, {60});
  EXPECT_EQ(sent.size(), 20u);
  EXPECT_EQ(sent.front(), 50);
  events::ResendReply r = job.reply("s1", "d1");
  EXPECT_EQ(r.resent, (Ranges{{50, 59}, {61, 70}}));
  EXPECT_EQ(r.gone, (Ranges{{1, 49}, {60, 60}}));
  EXPECT_NE(r.gone_reason.find("keep_delivered"), std::string::npos) << r.gone_reason;
}

TEST(ResendJob, ARangeBeyondEverythingKeptIsGoneInOneRead) {
  ResendJob job(asking({{1, 10}, {20, 30}}), "inc-1", 500, 1000);
  EXPECT_TRUE(run(job, 400, 500, 64).empty());
  EXPECT_EQ(job.reply("s", "d").gone, (Ranges{{1, 10}, {20, 30}}));
}

TEST(ResendJob, AnotherIncarnationsSeqsAreGoneAtOnce) {
  ResendJob job(asking({{1, 5}}, "inc-old"), "inc-new", 100, 1000);
  EXPECT_TRUE(job.done());
  events::ResendReply r = job.reply("s", "d");
  EXPECT_EQ(r.gone, (Ranges{{1, 5}}));
  EXPECT_EQ(r.incarnation, "inc-old");
  EXPECT_NE(r.gone_reason.find("inc-new"), std::string::npos);
}

TEST(ResendJob, ARequestOverTheLimitIsCutAndTheRestDeferred) {
  ResendJob job(asking({{1, 30}, {40, 60}}), "inc-1", 100, 35);
  run(job, 1, 100, 16);
  events::ResendReply r = job.reply("s", "d");
  EXPECT_EQ(r.resent, (Ranges{{1, 30}, {40, 44}}));
  EXPECT_EQ(r.deferred, (Ranges{{45, 60}}));
}

TEST(ResendJob, ARowThatCannotBeSentNowIsDeferredNotGone) {
  ResendJob job(asking({{1, 3}, {10, 12}}), "inc-1", 100, 4);
  run(job, 1, 100, 8);
  job.not_now(2);
  events::ResendReply r = job.reply("s", "d");
  EXPECT_EQ(r.resent, (Ranges{{1, 1}, {3, 3}, {10, 10}}));
  EXPECT_EQ(r.deferred, (Ranges{{2, 2}, {11, 12}}));
  EXPECT_TRUE(r.gone.empty());
}

}  // namespace
}  // namespace edgesync::agent
