// Requests refused on arrival (a spool file's invalid lines) kept in the dead-letter table:
// outside the event stream, found again by id when a file is read twice, never retried into
// delivery, and bounded with the other dead letters.
#include <gtest/gtest.h>

#include <future>

#include "platform/clock.h"
#include "storage/outbox.h"
#include "tests/storage/outbox_test_util.h"

namespace edgesync::test {
namespace {

using Outcome = storage::AppendResult::Outcome;

// Received now: dead letters older than storage.dead_letter_days go at once.
storage::AppendRequest refusal(const std::string& key, int64_t received_ms = platform::unix_ms()) {
  storage::AppendRequest r;
  r.id = key;
  r.type = "pos.sale.completed";
  r.received_ms = received_ms;
  r.data = R"({"type":"pos.sale.completed","data":{"lines":[{"qty":"two"}]}})";
  r.refused_reason = "refused on arrival (spool file " + key +
                     "): invalid_event: /data/lines/0/qty type (expected \"integer\")";
  return r;
}

std::vector<storage::DeadLetter> dead_letters(const std::string& path) {
  std::vector<storage::DeadLetter> dead;
  EXPECT_TRUE(storage::Outbox::list_dead_letters(path, 100, &dead));
  return dead;
}

TEST(OutboxRefusal, IsADeadLetterBelowZeroAndTakesNoPlaceInTheStream) {
  TempPath dir;
  auto o = options(dir);
  auto box = open_box(o);
  const int64_t now = platform::unix_ms();
  auto first = append_wait(*box, refusal("a.ndjson:2", now));
  EXPECT_EQ(first.outcome, Outcome::kStored);
  EXPECT_EQ(first.seq, -1);
  auto second = append_wait(*box, refusal("a.ndjson:5"));
  EXPECT_EQ(second.outcome, Outcome::kStored);
  EXPECT_EQ(second.seq, -2);

  auto ev = append_wait(*box, event("sale-1"));
  EXPECT_EQ(ev.outcome, Outcome::kStored);
  EXPECT_EQ(ev.seq, 1) << "refusals take no seq: the stream stays gap-free";
  std::vector<storage::StoredEvent> pending;
  ASSERT_TRUE(box->read_pending(0, 10, &pending));
  ASSERT_EQ(pending.size(), 1u) << "a refusal is never sent";
  EXPECT_EQ(pending[0].id, "sale-1");
  EXPECT_EQ(box->stats().pending, 1);

  auto dead = dead_letters(o.path);
  ASSERT_EQ(dead.size(), 2u);
  EXPECT_EQ(dead[0].event.seq, -1) << "listed oldest first";
  EXPECT_EQ(dead[1].event.seq, -2);
  EXPECT_EQ(dead[0].event.id, "a.ndjson:2");
  EXPECT_EQ(dead[0].event.type, "pos.sale.completed");
  EXPECT_NE(dead[0].reason.find("/data/lines/0/qty"), std::string::npos) << dead[0].reason;
  EXPECT_EQ(dead[0].event.data, refusal("x").data) << "the line as it came, for the technician";
  EXPECT_EQ(dead[0].failed_ms, now);
}

TEST(OutboxRefusal, TheSameKeyAgainIsADuplicateAcrossAReopen) {
  TempPath dir;
  auto o = options(dir);
  {
    auto box = open_box(o);
    EXPECT_EQ(append_wait(*box, refusal("a.ndjson:2")).seq, -1);
    EXPECT_EQ(append_wait(*box, refusal("a.ndjson:3")).seq, -2);
  }
  auto box = open_box(o);
  auto again = append_wait(*box, refusal("a.ndjson:2"));
  EXPECT_EQ(again.outcome, Outcome::kDuplicate) << "its file read again after a crash";
  EXPECT_EQ(again.seq, -1);
  auto next = append_wait(*box, refusal("b.ndjson:1"));
  EXPECT_EQ(next.outcome, Outcome::kStored);
  EXPECT_EQ(next.seq, -3) << "keys go on counting down after a restart";
  EXPECT_EQ(dead_letters(o.path).size(), 3u);

  // An event may carry the same id as a refusal: they live apart.
  auto ev = append_wait(*box, event("a.ndjson:2"));
  EXPECT_EQ(ev.outcome, Outcome::kStored);
  EXPECT_EQ(ev.seq, 1);
}

storage::RepairResult retry_wait(storage::Outbox& box, std::vector<int64_t> seqs) {
  storage::RepairRequest req;
  req.kind = storage::RepairRequest::Kind::kRetryDeadLetters;
  req.seqs = std::move(seqs);
  auto p = std::make_shared<std::promise<storage::RepairResult>>();
  auto f = p->get_future();
  box.repair(req, [p](const storage::RepairResult& r) { p->set_value(r); });
  return f.get();
}

TEST(OutboxRefusal, RetryLeavesItWhereItIsAndSaysWhy) {
  TempPath dir;
  auto o = options(dir);
  auto box = open_box(o);
  ASSERT_EQ(append_wait(*box, refusal("a.ndjson:2")).seq, -1);
  // Asked for by its key: skipped, with why.
  auto r = retry_wait(*box, {-1});
  ASSERT_TRUE(r.status) << r.status.to_string();
  EXPECT_TRUE(r.retried.empty()) << "an invalid line would reach the hub unchecked";
  ASSERT_EQ(r.skipped.size(), 1u);
  EXPECT_NE(r.skipped[0].find("refused on arrival"), std::string::npos) << r.skipped[0];
  // `retry --all` means the hub's dead letters: refusals are neither retried nor listed as
  // skipped (thousands of them would drown the answer).
  auto all = retry_wait(*box, {});
  ASSERT_TRUE(all.status) << all.status.to_string();
  EXPECT_TRUE(all.retried.empty());
  EXPECT_TRUE(all.skipped.empty()) << all.skipped.size();
  EXPECT_EQ(dead_letters(o.path).size(), 1u);
  EXPECT_EQ(box->stats().pending, 0);
}

TEST(OutboxRefusal, BoundedApartFromTheHubsDeadLettersKeepingTheNewest) {
  TempPath dir;
  auto o = options(dir);
  o.max_dead_letters = 2;
  auto box = open_box(o);
  // One the hub refused, announced.
  auto ev = append_wait(*box, event("sale-1"));
  ASSERT_EQ(ev.outcome, Outcome::kStored);
  std::vector<storage::StoredEvent> one;
  ASSERT_TRUE(box->read_pending(0, 1, &one));
  box->dead_letter(one.at(0), "PUBACK reason code 153");
  box->mark_delivered(ev.seq);
  // A flood of invalid lines, all in one millisecond.
  const int64_t now = platform::unix_ms();
  for (int i = 1; i <= 5; ++i) {
    ASSERT_EQ(append_wait(*box, refusal("a:" + std::to_string(i), now)).seq, -i);
  }
  auto dead = dead_letters(o.path);
  ASSERT_EQ(dead.size(), 3u) << "storage.max_dead_letters holds for each kind";
  EXPECT_EQ(dead[0].event.id, "sale-1") << "invalid lines never push out what the hub refused";
  EXPECT_EQ(dead[1].event.id, "a:4") << "the newest refusals stay";
  EXPECT_EQ(dead[2].event.id, "a:5");
  EXPECT_EQ(storage::Outbox::inspect(o.path)->dead_letters_pruned, 3);
}

}  // namespace
}  // namespace edgesync::test
