#include "storage/outbox.h"

#include <gtest/gtest.h>

#include <set>
#include <thread>

#include "tests/storage/outbox_test_util.h"

namespace edgesync::test {
namespace {

using Outcome = storage::AppendResult::Outcome;

TEST(Outbox, SeqStartsAtOneAndIsGapFreeUnderConcurrency) {
  TempPath dir;
  auto box = open_box(options(dir));
  std::vector<std::thread> threads;
  std::mutex mu;
  std::set<int64_t> seqs;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        auto r = append_wait(*box, event("p" + std::to_string(t) + "-" + std::to_string(i)));
        ASSERT_EQ(r.outcome, Outcome::kStored);
        std::lock_guard<std::mutex> lock(mu);
        EXPECT_TRUE(seqs.insert(r.seq).second) << "seq given twice: " << r.seq;
      }
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_EQ(seqs.size(), 200u);
  EXPECT_EQ(*seqs.begin(), 1);
  EXPECT_EQ(*seqs.rbegin(), 200);
  EXPECT_EQ(box->stats().next_seq, 201);
  EXPECT_EQ(box->stats().pending, 200);
}

TEST(Outbox, ResubmittedIdReturnsOriginalSeqAndStoresNothing) {
  TempPath dir;
  auto box = open_box(options(dir));
  auto first = append_wait(*box, event("sale-1"));
  ASSERT_EQ(first.outcome, Outcome::kStored);
  append_wait(*box, event("sale-2"));
  auto again = append_wait(*box, event("sale-1", "{\"different\":true}"));
  EXPECT_EQ(again.outcome, Outcome::kDuplicate);
  EXPECT_EQ(again.seq, first.seq);
  EXPECT_EQ(box->stats().next_seq, 3);
  std::vector<storage::StoredEvent> events;
  ASSERT_TRUE(box->read_pending(0, 10, &events));
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].data, "{\"n\":1}") << "the first submission's payload is kept";
}

TEST(Outbox, DuplicateInsideOneGroupCommitIsDetected) {
  TempPath dir;
  auto box = open_box(options(dir));
  std::vector<std::future<storage::AppendResult>> results;
  // Queued without waking the writer, then committed together: one round, one transaction.
  for (int i = 0; i < 20; ++i) {
    auto p = std::make_shared<std::promise<storage::AppendResult>>();
    results.push_back(p->get_future());
    box->append_deferred(event(i % 2 ? "same" : "u" + std::to_string(i)),
                         [p](const storage::AppendResult& r) { p->set_value(r); });
  }
  box->commit_queued();
  int stored = 0, dup = 0;
  int64_t same_seq = 0;
  for (int i = 0; i < 20; ++i) {
    auto r = results[i].get();
    if (r.outcome == Outcome::kStored) ++stored;
    if (r.outcome == Outcome::kDuplicate) ++dup;
    if (i % 2) {
      if (same_seq == 0) same_seq = r.seq;
      EXPECT_EQ(r.seq, same_seq);
    }
  }
  EXPECT_EQ(stored, 11);
  EXPECT_EQ(dup, 9);
  EXPECT_EQ(box->stats().next_seq, 12);
}

TEST(Outbox, ReadPendingReturnsEventsInSeqOrderAfterWatermark) {
  TempPath dir;
  auto box = open_box(options(dir));
  for (int i = 0; i < 10; ++i) {
    auto req = event("e" + std::to_string(i), "{\"i\":" + std::to_string(i) + "}");
    req.occurred_at = i % 2 ? "2026-11-23T08:00:00Z" : "";
    append_wait(*box, req);
  }
  std::vector<storage::StoredEvent> got;
  ASSERT_TRUE(box->read_pending(3, 4, &got));
  ASSERT_EQ(got.size(), 4u);
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].seq, int64_t(4 + i));
    EXPECT_EQ(got[i].id, "e" + std::to_string(3 + i));
    EXPECT_EQ(got[i].data, "{\"i\":" + std::to_string(3 + i) + "}");
    EXPECT_EQ(got[i].type, "inventory.adjusted");
  }
  EXPECT_EQ(got[0].occurred_at, "2026-11-23T08:00:00Z");
  EXPECT_EQ(got[1].occurred_at, "");
}

TEST(Outbox, WatermarkAndSeqSurviveReopen) {
  TempPath dir;
  auto o = options(dir);
  {
    auto box = open_box(o);
    for (int i = 0; i < 5; ++i) append_wait(*box, event("e" + std::to_string(i)));
    box->mark_delivered(3);
    box->close();
  }
  auto stats = storage::Outbox::inspect(o.path);
  ASSERT_TRUE(stats.is_ok()) << stats.status().to_string();
  EXPECT_EQ(stats->delivered_seq, 3);
  EXPECT_EQ(stats->pending, 2);
  EXPECT_EQ(stats->next_seq, 6);
  auto box = open_box(o);
  EXPECT_EQ(box->delivered_seq(), 3);
  std::vector<storage::StoredEvent> got;
  ASSERT_TRUE(box->read_pending(box->delivered_seq(), 100, &got));
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].seq, 4);
  EXPECT_EQ(append_wait(*box, event("new")).seq, 6);
}

TEST(Outbox, FullOutboxRefusesNewEventsAndKeepsStoredOnes) {
  TempPath dir;
  auto o = options(dir);
  std::string payload(300, 'x');
  payload = "\"" + payload + "\"";
  o.max_bytes = 3 * storage::counted_size(event("f0", payload)) + 10;
  auto box = open_box(o);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(append_wait(*box, event("f" + std::to_string(i), payload)).outcome,
              Outcome::kStored);
  }
  auto full = append_wait(*box, event("f3", payload));
  EXPECT_EQ(full.outcome, Outcome::kOutboxFull);
  EXPECT_NE(full.message.find("storage.max_bytes"), std::string::npos) << full.message;
  // A resubmission of a stored id is still answered as a duplicate when full.
  EXPECT_EQ(append_wait(*box, event("f1", payload)).outcome, Outcome::kDuplicate);
  // Delivering frees room.
  box->mark_delivered(2);
  auto later = append_wait(*box, event("f4", payload));
  for (int i = 0; i < 50 && later.outcome != Outcome::kStored; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    later = append_wait(*box, event("f4", payload));
  }
  EXPECT_EQ(later.outcome, Outcome::kStored);
  EXPECT_EQ(later.seq, 4);
}

// storage.max_bytes is about the disk: ids, types and headers count, not only the data.
TEST(Outbox, BudgetCountsTheWholeRowNotJustTheData) {
  TempPath dir;
  auto o = options(dir);
  const std::string long_id(100, 'i');
  auto make = [&](int i) { return event(long_id.substr(0, 90) + std::to_string(1000 + i), "{}"); };
  const int64_t size = storage::counted_size(make(0));
  EXPECT_GT(size, 2 * 94 + 40) << "id counted twice (row and index) plus headers";
  o.max_bytes = 20 * size;
  auto box = open_box(o);
  for (int i = 0; i < 20; ++i) ASSERT_EQ(append_wait(*box, make(i)).outcome, Outcome::kStored);
  EXPECT_EQ(append_wait(*box, make(20)).outcome, Outcome::kOutboxFull);
  EXPECT_EQ(box->stats().pending_bytes, 20 * size);
}

// Delivered history (kept for de-duplication) shares the budget but never crowds out a new
// event: it is pruned, oldest first, before anything is refused. Pending events are never
// pruned.
TEST(Outbox, DeliveredHistoryGivesWayBeforeAnEventIsRefused) {
  TempPath dir;
  auto o = options(dir);
  o.keep_delivered = 1000000;  // only the budget limits history here
  auto make = [](const std::string& prefix, int i) {
    return event(prefix + std::to_string(100 + i), std::string(200, '7'));
  };
  const int64_t size = storage::counted_size(make("h", 0));
  o.max_bytes = 10 * size;
  {
    auto box = open_box(o);
    for (int i = 0; i < 10; ++i) ASSERT_EQ(append_wait(*box, make("h", i)).outcome, Outcome::kStored);
    box->mark_delivered(10);
    for (int i = 0; i < 10; ++i) {
      auto r = append_wait(*box, make("p", i));
      ASSERT_EQ(r.outcome, Outcome::kStored) << "history should have made room for p" << i;
      EXPECT_EQ(r.seq, 11 + i);
    }
    auto full = append_wait(*box, make("p", 10));
    EXPECT_EQ(full.outcome, Outcome::kOutboxFull) << "pending events alone fill the budget";
    auto st = box->stats();
    EXPECT_EQ(st.pending, 10);
    EXPECT_EQ(st.pending_bytes, 10 * size);
    std::vector<storage::StoredEvent> got;
    ASSERT_TRUE(box->read_pending(10, 100, &got));
    ASSERT_EQ(got.size(), 10u);
    EXPECT_EQ(got.front().seq, 11);
  }
  // After a restart the history and pending figures are recounted from the rows: delivering
  // five makes room for five more, through pruning the history they became.
  auto box = open_box(o);
  EXPECT_EQ(box->stats().pending_bytes, 10 * size);
  EXPECT_EQ(append_wait(*box, make("q", 0)).outcome, Outcome::kOutboxFull);
  box->mark_delivered(15);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(append_wait(*box, make("q", i)).outcome, Outcome::kStored) << "q" << i;
  }
  EXPECT_EQ(append_wait(*box, make("q", 5)).outcome, Outcome::kOutboxFull);
  auto inspected = storage::Outbox::inspect(o.path);
  ASSERT_TRUE(inspected.is_ok());
  EXPECT_EQ(inspected->pending_bytes, 10 * size) << "the CLI counts like the agent";
}

TEST(Outbox, DeliveredHistoryIsPrunedButSeqNeverRestarts) {
  TempPath dir;
  auto o = options(dir);
  o.keep_delivered = 0;
  o.prune_step = 1;
  {
    auto box = open_box(o);
    for (int i = 0; i < 30; ++i) append_wait(*box, event("h" + std::to_string(i)));
    box->mark_delivered(30);
    // The next commit carries the watermark; pruning follows it.
    append_wait(*box, event("h30"));
    box->mark_delivered(31);
    box->close();
  }
  auto stats = storage::Outbox::inspect(o.path);
  ASSERT_TRUE(stats.is_ok());
  EXPECT_EQ(stats->stored_events, 0);
  EXPECT_EQ(stats->next_seq, 32);
  auto box = open_box(o);
  EXPECT_EQ(append_wait(*box, event("after-prune")).seq, 32);
}

TEST(Outbox, HistoryIsKeptUntilAWholePruneStepIsDue) {
  TempPath dir;
  auto o = options(dir);
  o.keep_delivered = 5;
  o.prune_step = 10;
  auto box = open_box(o);
  for (int i = 0; i < 30; ++i) append_wait(*box, event("k" + std::to_string(i)));
  box->mark_delivered(14);  // 9 rows beyond keep_delivered: below the step, nothing pruned
  append_wait(*box, event("k30"));
  EXPECT_EQ(storage::Outbox::inspect(o.path)->stored_events, 31);
  // A resubmission inside the kept history is still recognised.
  EXPECT_EQ(append_wait(*box, event("k3")).outcome, Outcome::kDuplicate);
  box->mark_delivered(25);  // 20 beyond: more than a step, all of it goes
  append_wait(*box, event("k31"));
  box->close();
  auto stats = storage::Outbox::inspect(o.path);
  EXPECT_EQ(stats->stored_events, 32 - 20);
  EXPECT_EQ(stats->delivered_seq, 25);
}

TEST(Outbox, DeadLetterIsKeptWithItsReason) {
  TempPath dir;
  auto o = options(dir);
  {
    auto box = open_box(o);
    append_wait(*box, event("ok-1"));
    append_wait(*box, event("bad-2"));
    std::vector<storage::StoredEvent> got;
    ASSERT_TRUE(box->read_pending(1, 1, &got));
    box->dead_letter(got[0], "PUBACK reason code 153");
    box->mark_delivered(2);
    box->close();
  }
  std::vector<storage::DeadLetter> dead;
  ASSERT_TRUE(storage::Outbox::list_dead_letters(o.path, 10, &dead));
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].event.id, "bad-2");
  EXPECT_EQ(dead[0].event.seq, 2);
  EXPECT_EQ(dead[0].reason, "PUBACK reason code 153");
  auto stats = storage::Outbox::inspect(o.path);
  EXPECT_EQ(stats->dead_letters, 1);
  EXPECT_EQ(stats->pending, 0);
}

TEST(Outbox, InspectWorksWhileTheWriterHasItOpen) {
  TempPath dir;
  auto o = options(dir);
  auto box = open_box(o);
  for (int i = 0; i < 7; ++i) append_wait(*box, event("r" + std::to_string(i)));
  auto stats = storage::Outbox::inspect(o.path);
  ASSERT_TRUE(stats.is_ok()) << stats.status().to_string();
  EXPECT_EQ(stats->pending, 7);
  ASSERT_TRUE(stats->oldest_pending_received_ms.has_value());
  EXPECT_EQ(*stats->oldest_pending_received_ms, 1700000000000);
  std::vector<storage::StoredEvent> listed;
  storage::OutboxStats st;
  ASSERT_TRUE(storage::Outbox::list(o.path, true, 100, &listed, &st));
  EXPECT_EQ(listed.size(), 7u);
}

TEST(Outbox, InspectOfMissingDatabaseSaysSo) {
  TempPath dir;
  auto stats = storage::Outbox::inspect(dir.file("nope.db"));
  ASSERT_FALSE(stats.is_ok());
  EXPECT_EQ(stats.status().code(), Status::Code::kNotFound);
}

TEST(Outbox, AppendAfterCloseFailsCleanly) {
  TempPath dir;
  auto box = open_box(options(dir));
  box->close();
  auto r = append_wait(*box, event("late"));
  EXPECT_EQ(r.outcome, Outcome::kStorageError);
  EXPECT_FALSE(r.message.empty());
}

}  // namespace
}  // namespace edgesync::test

namespace edgesync::test {
namespace {

// Regression: "PRAGMA wal_autocheckpoint" removed the WAL hook that tells the writer when to
// checkpoint, so the WAL grew without bound and every commit slowed down.
TEST(Outbox, WalIsCheckpointedAndStaysBounded) {
  TempPath dir;
  auto o = options(dir);
  o.checkpoint_bytes = 100 * 1048;  // ~100 frames of 1 KiB pages
  auto box = open_box(o);
  for (int i = 0; i < 1500; ++i) append_wait(*box, event("wal-" + std::to_string(i)));
  auto wal = std::filesystem::file_size(o.path + "-wal");
  // 1500 one-event commits write ~4,500 frames (4.7 MB) without checkpoints; with them the WAL
  // is reused from its start and holds about checkpoint_bytes.
  EXPECT_LT(wal, 1024u * 1024) << wal << " bytes of WAL";
  EXPECT_EQ(box->stats().next_seq, 1501);
}

}  // namespace
}  // namespace edgesync::test

namespace edgesync::test {
namespace {

// Stores an event and dead-letters it at once, as the publisher does with a permanent refusal.
void append_and_dead_letter(storage::Outbox& box, const std::string& id) {
  auto r = append_wait(box, event(id));
  ASSERT_EQ(r.outcome, storage::AppendResult::Outcome::kStored);
  std::vector<storage::StoredEvent> one;
  ASSERT_TRUE(box.read_pending(r.seq - 1, 1, &one));
  ASSERT_EQ(one.size(), 1u);
  box.dead_letter(one[0], "PUBACK reason code 149");
  box.mark_delivered(r.seq);
}

// Regression: dead letters were never pruned, so a hub whose size limit is below a common event
// filled the disk with them until every append failed with storage_error.
TEST(OutboxDeadLetters, OnlyTheNewestMaxDeadLettersAreKeptAndStatusCountsThePruned) {
  TempPath dir;
  auto o = options(dir);
  o.max_dead_letters = 3;
  auto box = open_box(o);
  for (int i = 1; i <= 5; ++i) append_and_dead_letter(*box, "refused-" + std::to_string(i));
  box->close();
  std::vector<storage::DeadLetter> dead;
  ASSERT_TRUE(storage::Outbox::list_dead_letters(o.path, 100, &dead));
  ASSERT_EQ(dead.size(), 3u);
  EXPECT_EQ(dead[0].event.seq, 3);
  EXPECT_EQ(dead[2].event.seq, 5);
  auto st = storage::Outbox::inspect(o.path);
  ASSERT_TRUE(st.is_ok());
  EXPECT_EQ(st->dead_letters, 3);
  EXPECT_EQ(st->dead_letters_pruned, 2);
  EXPECT_EQ(st->pending, 0);
}

TEST(OutboxDeadLetters, DeadLettersOlderThanTheirMaximumAgeArePrunedAtOpen) {
  TempPath dir;
  auto o = options(dir);
  {
    auto box = open_box(o);
    append_and_dead_letter(*box, "old-refused");
    box->close();
  }
  auto st = storage::Outbox::inspect(o.path);
  ASSERT_TRUE(st.is_ok());
  ASSERT_EQ(st->dead_letters, 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  o.dead_letter_max_age = std::chrono::seconds(1);
  auto box = open_box(o);
  box->close();
  st = storage::Outbox::inspect(o.path);
  ASSERT_TRUE(st.is_ok());
  EXPECT_EQ(st->dead_letters, 0);
  EXPECT_EQ(st->dead_letters_pruned, 1);
}

}  // namespace
}  // namespace edgesync::test
