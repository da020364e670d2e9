// The technician's repairs on the outbox (Outbox::repair): dead letters put back into delivery
// or purged, and the delivery hold, each through the one writer.
#include <gtest/gtest.h>

#include <future>

#include "platform/clock.h"
#include "storage/outbox.h"
#include "storage/outbox_query.h"
#include "tests/storage/outbox_test_util.h"

namespace edgesync::test {
namespace {

using Kind = storage::RepairRequest::Kind;

storage::RepairResult repair_wait(storage::Outbox& box, storage::RepairRequest req) {
  auto p = std::make_shared<std::promise<storage::RepairResult>>();
  auto f = p->get_future();
  box.repair(std::move(req), [p](const storage::RepairResult& r) { p->set_value(r); });
  return f.get();
}

storage::RepairRequest retry(std::vector<int64_t> seqs = {}) {
  storage::RepairRequest r;
  r.kind = Kind::kRetryDeadLetters;
  r.seqs = std::move(seqs);
  return r;
}

// Stores an event and dead-letters it; with `announced`, the watermark passes it as the
// publisher's does once the hub acknowledged the notice. Returns its seq.
int64_t dead_letter(storage::Outbox& box, const std::string& id, bool announced = true) {
  auto req = event(id, "{\"sku\":\"" + id + "\"}");
  req.trace_id = "trace-" + id;
  auto r = append_wait(box, req);
  EXPECT_EQ(r.outcome, storage::AppendResult::Outcome::kStored);
  std::vector<storage::StoredEvent> one;
  EXPECT_TRUE(box.read_pending(r.seq - 1, 1, &one));
  EXPECT_EQ(one.size(), 1u);
  box.dead_letter(one.at(0), "PUBACK reason code 153");
  if (announced) box.mark_delivered(r.seq);
  return r.seq;
}

// Waits until the dead letters are on disk with the watermark past them (written by the writer
// on its own schedule).
void wait_persisted(const std::string& path, int64_t delivered, int64_t dead) {
  for (int i = 0; i < 500; ++i) {
    auto st = storage::Outbox::inspect(path);
    if (st && st->delivered_seq >= delivered && st->dead_letters == dead) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  FAIL() << "the watermark " << delivered << " and " << dead << " dead letters never reached disk";
}

TEST(OutboxRepair, RetriedDeadLetterIsPendingAgainUnderANewSeqWithTheSameEvent) {
  TempPath dir;
  auto o = options(dir);
  auto box = open_box(o);
  const int64_t a = dead_letter(*box, "sale-a");
  const int64_t b = dead_letter(*box, "sale-b");
  wait_persisted(o.path, b, 2);

  auto r = repair_wait(*box, retry({a}));
  ASSERT_TRUE(r.status) << r.status.to_string();
  ASSERT_EQ(r.retried.size(), 1u);
  EXPECT_EQ(r.retried[0].first, a);
  EXPECT_EQ(r.retried[0].second, b + 1) << "the next seq: the watermark stays gap-free";
  EXPECT_TRUE(r.skipped.empty());

  std::vector<storage::StoredEvent> pending;
  ASSERT_TRUE(box->read_pending(box->delivered_seq(), 10, &pending));
  ASSERT_EQ(pending.size(), 1u);
  EXPECT_EQ(pending[0].seq, b + 1);
  EXPECT_EQ(pending[0].id, "sale-a");
  EXPECT_EQ(pending[0].data, "{\"sku\":\"sale-a\"}");
  EXPECT_EQ(pending[0].received_ms, 1700000000000) << "the same event, not a new one";
  EXPECT_EQ(pending[0].trace_id, "trace-sale-a") << "the producer's trace goes with it";
  EXPECT_TRUE(pending[0].dead_reason.empty());

  // The id still de-duplicates a producer's resend, under its new seq.
  auto again = append_wait(*box, event("sale-a"));
  EXPECT_EQ(again.outcome, storage::AppendResult::Outcome::kDuplicate);
  EXPECT_EQ(again.seq, b + 1);

  std::vector<storage::DeadLetter> dead;
  ASSERT_TRUE(storage::Outbox::list_dead_letters(o.path, 10, &dead));
  ASSERT_EQ(dead.size(), 1u) << "only sale-b is still a dead letter";
  EXPECT_EQ(dead[0].event.id, "sale-b");
  EXPECT_EQ(dead[0].event.trace_id, "trace-sale-b");
}

TEST(OutboxRepair, RetryAllSurvivesAReopenAndSkipsWhatIsNotYetAnnounced) {
  TempPath dir;
  auto o = options(dir);
  int64_t unannounced = 0;
  {
    auto box = open_box(o);
    const int64_t a = dead_letter(*box, "count-1");
    const int64_t b = dead_letter(*box, "count-2");
    wait_persisted(o.path, b, 2);
    unannounced = dead_letter(*box, "count-3", /*announced=*/false);
    wait_persisted(o.path, b, 3);

    auto r = repair_wait(*box, retry());
    ASSERT_TRUE(r.status) << r.status.to_string();
    ASSERT_EQ(r.retried.size(), 2u);
    EXPECT_EQ(r.retried[0].first, a);
    EXPECT_EQ(r.retried[1].first, b);
    ASSERT_EQ(r.skipped.size(), 1u);
    EXPECT_NE(r.skipped[0].find("seq " + std::to_string(unannounced)), std::string::npos)
        << r.skipped[0];
    EXPECT_NE(r.skipped[0].find("still being sent"), std::string::npos) << r.skipped[0];
  }
  auto st = storage::Outbox::inspect(o.path);
  ASSERT_TRUE(st);
  EXPECT_EQ(st->dead_letters, 1);
  EXPECT_EQ(st->next_seq, unannounced + 3) << "two put back after the three";
  std::vector<storage::StoredEvent> pending;
  ASSERT_TRUE(storage::Outbox::list(o.path, true, 10, &pending, &*st));
  ASSERT_EQ(pending.size(), 3u);
  EXPECT_EQ(pending[1].id, "count-1");
  EXPECT_EQ(pending[2].id, "count-2");
}

TEST(OutboxRepair, RetryOfAnUnknownSeqSaysSoAndChangesNothing) {
  TempPath dir;
  auto o = options(dir);
  auto box = open_box(o);
  const int64_t a = dead_letter(*box, "void-1");
  wait_persisted(o.path, a, 1);
  auto r = repair_wait(*box, retry({a + 40}));
  ASSERT_TRUE(r.status);
  EXPECT_TRUE(r.retried.empty());
  ASSERT_EQ(r.skipped.size(), 1u);
  EXPECT_EQ(r.skipped[0], "seq " + std::to_string(a + 40) + ": no such dead letter");
  EXPECT_EQ(box->stats().next_seq, a + 1);
}

TEST(OutboxRepair, PurgeTakesOnlyAnnouncedDeadLettersOlderThanTheCutoff) {
  TempPath dir;
  auto o = options(dir);
  auto box = open_box(o);
  const int64_t a = dead_letter(*box, "old-1");
  const int64_t b = dead_letter(*box, "old-2");
  wait_persisted(o.path, b, 2);
  dead_letter(*box, "not-announced", /*announced=*/false);
  wait_persisted(o.path, b, 3);

  storage::RepairRequest none;
  none.kind = Kind::kPurgeDeadLetters;
  none.failed_before_ms = platform::unix_ms() - 3600 * 1000;  // older than an hour: none
  auto r = repair_wait(*box, none);
  ASSERT_TRUE(r.status);
  EXPECT_EQ(r.purged, 0);

  storage::RepairRequest all = none;
  all.failed_before_ms = platform::unix_ms() + 1000;
  r = repair_wait(*box, all);
  ASSERT_TRUE(r.status);
  EXPECT_EQ(r.purged, 2) << "the one still being announced stays";
  auto st = storage::Outbox::inspect(o.path);
  ASSERT_TRUE(st);
  EXPECT_EQ(st->dead_letters, 1);
  (void)a;
}

TEST(OutboxRepair, HoldIsPersistedKeepsItsFirstTimeAndReleaseClearsIt) {
  TempPath dir;
  auto o = options(dir);
  int64_t since = 0;
  {
    auto box = open_box(o);
    EXPECT_EQ(box->held_since_ms(), 0);
    storage::RepairRequest hold;
    hold.kind = Kind::kHold;
    auto r = repair_wait(*box, hold);
    ASSERT_TRUE(r.status);
    since = r.held_since_ms;
    EXPECT_GT(since, 0);
    EXPECT_EQ(box->held_since_ms(), since);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    r = repair_wait(*box, hold);
    EXPECT_EQ(r.held_since_ms, since) << "a second hold keeps the first one's time";
  }
  {
    auto box = open_box(o);
    EXPECT_EQ(box->held_since_ms(), since) << "a hold outlives a restart";
    EXPECT_EQ(storage::Outbox::inspect(o.path)->held_since_ms, since);
    storage::RepairRequest release;
    release.kind = Kind::kRelease;
    auto r = repair_wait(*box, release);
    ASSERT_TRUE(r.status);
    EXPECT_EQ(box->held_since_ms(), 0);
  }
  EXPECT_EQ(storage::Outbox::inspect(o.path)->held_since_ms, 0);
}

TEST(OutboxRepair, RepairAfterCloseIsRefusedCleanly) {
  TempPath dir;
  auto box = open_box(options(dir));
  box->close();
  auto r = repair_wait(*box, retry());
  EXPECT_FALSE(r.status);
  EXPECT_NE(r.status.message().find("shutting down"), std::string::npos);
}

// `edgesync outbox tail` started on a box with dead letters: those already there are not news.
// It reported every announced dead letter as new at its start.
TEST(OutboxTail, DeadLettersAlreadyThereAreNotReportedAsNew) {
  TempPath dir;
  auto o = options(dir);
  auto box = open_box(o);
  dead_letter(*box, "sale-a");
  const int64_t b = dead_letter(*box, "sale-b");
  wait_persisted(o.path, b, 2);
  for (size_t backlog : {size_t{0}, size_t{10}}) {
    storage::OutboxTail tail(o.path, backlog);
    auto first = tail.poll();
    EXPECT_EQ(first.kind, storage::OutboxTail::Poll::Kind::kOpened);
    EXPECT_TRUE(first.dead_letters.empty()) << "backlog " << backlog;
    // A new one is.
    const int64_t c = dead_letter(*box, "sale-c" + std::to_string(backlog));
    wait_persisted(o.path, c, 3);
    auto next = tail.poll();
    ASSERT_EQ(next.dead_letters.size(), 1u) << "backlog " << backlog;
    EXPECT_EQ(next.dead_letters[0].event.seq, c);
    ASSERT_TRUE(repair_wait(*box, retry({c})).status);  // back to two for the next round
    std::vector<storage::StoredEvent> pending;
    ASSERT_TRUE(box->read_pending(box->delivered_seq(), 10, &pending));
    for (const auto& e : pending) box->mark_delivered(e.seq);
    wait_persisted(o.path, box->delivered_seq(), 2);
  }
}

}  // namespace
}  // namespace edgesync::test
