// The events committed last, kept in memory for the publisher (storage/recent_events.h): what
// it answers must be exactly what SQLite would, and whatever it cannot answer goes to SQLite.
#include "storage/recent_events.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <thread>

#include "storage/outbox.h"
#include "tests/storage/outbox_test_util.h"

namespace edgesync::test {
namespace {

std::vector<storage::StoredEvent> run(int64_t first, int64_t last, size_t data_bytes = 10) {
  std::vector<storage::StoredEvent> v;
  for (int64_t s = first; s <= last; ++s) {
    storage::StoredEvent& e = v.emplace_back();
    e.seq = s;
    e.id = "id-" + std::to_string(s);
    e.type = "inventory.adjusted";
    e.data = std::string(data_bytes, 'x');
  }
  return v;
}

std::vector<int64_t> seqs(const std::vector<storage::StoredEvent>& v) {
  std::vector<int64_t> s;
  for (const auto& e : v) s.push_back(e.seq);
  return s;
}

TEST(RecentEvents, AnswersTheRunThatStartsRightAfterTheSeqAsked) {
  storage::RecentEvents r;
  r.append(run(1, 3));
  std::vector<storage::StoredEvent> got;
  ASSERT_TRUE(r.read(0, 10, &got));
  EXPECT_EQ(seqs(got), (std::vector<int64_t>{1, 2, 3}));
  EXPECT_EQ(got[1].id, "id-2");
  ASSERT_TRUE(r.read(1, 1, &got));
  EXPECT_EQ(seqs(got), (std::vector<int64_t>{2})) << "at most `limit`";
  ASSERT_TRUE(r.read(3, 10, &got)) << "past the last commit: nothing, without asking SQLite";
  EXPECT_TRUE(got.empty());
  EXPECT_FALSE(r.read(5, 10, &got)) << "a seq it does not know of";
}

TEST(RecentEvents, LeavesToSQLiteWhatItDoesNotHold) {
  storage::RecentEvents r;
  std::vector<storage::StoredEvent> got;
  EXPECT_FALSE(r.read(0, 10, &got)) << "nothing appended yet: the last commit is unknown";
  r.append(run(5, 7));
  EXPECT_FALSE(r.read(0, 10, &got)) << "seqs 1-4 were committed before it started";
  EXPECT_FALSE(r.read(3, 10, &got));
  ASSERT_TRUE(r.read(4, 10, &got));
  EXPECT_EQ(seqs(got), (std::vector<int64_t>{5, 6, 7}));
}

TEST(RecentEvents, ReadDropsWhatIsBehindTheSeqAsked) {
  storage::RecentEvents r;
  r.append(run(1, 3));
  std::vector<storage::StoredEvent> got;
  ASSERT_TRUE(r.read(2, 10, &got));
  EXPECT_EQ(r.size(), 1u);
  EXPECT_FALSE(r.read(0, 10, &got)) << "dropped events are read from SQLite";
}

TEST(RecentEvents, AGapInTheSeqsStartsANewRun) {
  storage::RecentEvents r;
  r.append(run(1, 3));
  r.append(run(5, 6));  // seq 4 was committed by another path
  std::vector<storage::StoredEvent> got;
  EXPECT_FALSE(r.read(2, 10, &got));
  EXPECT_FALSE(r.read(3, 10, &got)) << "seq 4 must come from SQLite, not be skipped";
  ASSERT_TRUE(r.read(4, 10, &got));
  EXPECT_EQ(seqs(got), (std::vector<int64_t>{5, 6}));
}

TEST(RecentEvents, ForgetAnswersNothingUntilTheNextAppend) {
  storage::RecentEvents r;
  r.append(run(1, 2));
  r.forget();
  std::vector<storage::StoredEvent> got;
  EXPECT_FALSE(r.read(0, 10, &got));
  EXPECT_FALSE(r.read(2, 10, &got)) << "after forget() the last commit is unknown";
  r.append(run(3, 3));
  ASSERT_TRUE(r.read(2, 10, &got));
  EXPECT_EQ(seqs(got), (std::vector<int64_t>{3}));
}

TEST(RecentEvents, KeepsOnlyTheNewestWithinItsBounds) {
  storage::RecentEvents r({/*max_events=*/4, /*max_bytes=*/100000});
  r.append(run(1, 10));
  EXPECT_EQ(r.size(), 4u);
  std::vector<storage::StoredEvent> got;
  EXPECT_FALSE(r.read(5, 10, &got));
  ASSERT_TRUE(r.read(6, 10, &got));
  EXPECT_EQ(seqs(got), (std::vector<int64_t>{7, 8, 9, 10}));

  storage::RecentEvents small({/*max_events=*/100, /*max_bytes=*/1000});
  auto events = run(1, 1);
  auto big = run(2, 2, 5000);
  events.push_back(std::move(big[0]));
  small.append(std::move(events));
  EXPECT_EQ(small.size(), 0u) << "an event larger than the bound is not kept";
  EXPECT_FALSE(small.read(0, 10, &got));
  EXPECT_FALSE(small.read(1, 10, &got)) << "seq 2 must come from SQLite";
  ASSERT_TRUE(small.read(2, 10, &got));
  EXPECT_TRUE(got.empty());
}

TEST(RecentEvents, DropThroughKeepsTheRunAndTheNewerEvents) {
  storage::RecentEvents r;
  r.append(run(1, 5));
  r.drop_through(3);  // delivered: history that may be pruned
  EXPECT_EQ(r.size(), 2u);
  std::vector<storage::StoredEvent> got;
  EXPECT_FALSE(r.read(2, 10, &got)) << "seq 3 must come from SQLite, which may have pruned it";
  ASSERT_TRUE(r.read(3, 10, &got));
  EXPECT_EQ(seqs(got), (std::vector<int64_t>{4, 5}));
  r.drop_through(5);
  ASSERT_TRUE(r.read(5, 10, &got)) << "all delivered: still the last seq handed in";
  EXPECT_TRUE(got.empty());
  r.append(run(6, 6));
  ASSERT_TRUE(r.read(5, 10, &got));
  EXPECT_EQ(seqs(got), (std::vector<int64_t>{6}));
}

// The outbox itself: the publisher's reads after a commit need no SQLite, and give the same
// events SQLite gives.

storage::Outbox::Options options(const TempPath& dir) {
  storage::Outbox::Options o;
  o.path = dir.file("outbox.db");
  o.watermark_flush = std::chrono::milliseconds(10);
  return o;
}

std::unique_ptr<storage::Outbox> open_box(const storage::Outbox::Options& o) {
  auto box = storage::Outbox::open(o, inline_dispatch());
  EXPECT_TRUE(box.is_ok()) << box.status().to_string();
  return box ? std::move(*box) : nullptr;
}

TEST(OutboxRecentEvents, EventsJustCommittedAreReadFromMemoryAsSQLiteHasThem) {
  TempPath dir;
  auto o = options(dir);
  auto box = open_box(o);
  for (int i = 1; i <= 3; ++i) {
    auto req = event("sale-" + std::to_string(i), "{\"n\":" + std::to_string(i) + "}");
    if (i == 2) {
      req.occurred_at = "2026-11-23T09:15:02.120Z";
      req.trace_id = "till-3/receipt-1001";
      req.contract_version = 2;
    }
    ASSERT_EQ(append_wait(*box, req).outcome, storage::AppendResult::Outcome::kStored);
  }
  std::vector<storage::StoredEvent> memory;
  ASSERT_TRUE(box->read_pending(0, 10, &memory));
  EXPECT_EQ(box->disk_reads(), 0u) << "read back from SQLite right after their commit";
  std::vector<storage::StoredEvent> none;
  ASSERT_TRUE(box->read_pending(3, 10, &none));
  EXPECT_TRUE(none.empty());
  EXPECT_EQ(box->disk_reads(), 0u) << "asked past the last commit";

  std::vector<storage::StoredEvent> disk;
  ASSERT_TRUE(storage::Outbox::list(o.path, /*pending_only=*/true, 10, &disk, nullptr));
  ASSERT_EQ(memory.size(), 3u);
  ASSERT_EQ(disk.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(memory[i].seq, disk[i].seq);
    EXPECT_EQ(memory[i].id, disk[i].id);
    EXPECT_EQ(memory[i].type, disk[i].type);
    EXPECT_EQ(memory[i].occurred_at, disk[i].occurred_at);
    EXPECT_EQ(memory[i].received_ms, disk[i].received_ms);
    EXPECT_EQ(memory[i].data, disk[i].data);
    EXPECT_EQ(memory[i].trace_id, disk[i].trace_id);
    EXPECT_EQ(memory[i].contract_version, disk[i].contract_version);
  }
  EXPECT_EQ(memory[1].trace_id, "till-3/receipt-1001");

  // A duplicate takes no seq and is not an event of the stream.
  ASSERT_EQ(append_wait(*box, event("sale-2")).outcome, storage::AppendResult::Outcome::kDuplicate);
  ASSERT_TRUE(box->read_pending(3, 10, &none));
  EXPECT_TRUE(none.empty());
}

TEST(OutboxRecentEvents, ADeadLetteredEventReadAgainComesWithItsReason) {
  TempPath dir;
  auto o = options(dir);
  auto box = open_box(o);
  append_wait(*box, event("ok-1"));
  append_wait(*box, event("bad-2"));
  std::vector<storage::StoredEvent> got;
  ASSERT_TRUE(box->read_pending(1, 1, &got));
  ASSERT_EQ(got.size(), 1u);
  box->dead_letter(got[0], "PUBACK reason code 153");
  // Queued before this append: on disk once it is.
  append_wait(*box, event("ok-3"));
  // As after a reconnect: the publisher reads from its last acknowledged seq again.
  ASSERT_TRUE(box->read_pending(1, 10, &got));
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].seq, 2);
  EXPECT_EQ(got[0].dead_reason, "PUBACK reason code 153")
      << "sent as an event again instead of its dead-letter notice";
  EXPECT_TRUE(got[1].dead_reason.empty());
}

TEST(OutboxRecentEvents, ARetriedDeadLetterIsReadUnderItsNewSeq) {
  TempPath dir;
  auto o = options(dir);
  auto box = open_box(o);
  auto a = append_wait(*box, event("sale-a"));
  std::vector<storage::StoredEvent> got;
  ASSERT_TRUE(box->read_pending(0, 1, &got));
  box->dead_letter(got.at(0), "PUBACK reason code 153");
  box->mark_delivered(a.seq);
  auto b = append_wait(*box, event("sale-b"));
  ASSERT_TRUE(box->read_pending(a.seq, 10, &got));  // the publisher has read everything
  box->mark_delivered(b.seq);
  for (int i = 0; i < 500 && storage::Outbox::inspect(o.path)->delivered_seq < a.seq; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }

  storage::RepairRequest req;
  req.kind = storage::RepairRequest::Kind::kRetryDeadLetters;
  req.seqs = {a.seq};
  auto p = std::make_shared<std::promise<storage::RepairResult>>();
  auto f = p->get_future();
  box->repair(std::move(req), [p](const storage::RepairResult& r) { p->set_value(r); });
  auto r = f.get();
  ASSERT_TRUE(r.status) << r.status.to_string();
  ASSERT_EQ(r.retried.size(), 1u);

  ASSERT_TRUE(box->read_pending(b.seq, 10, &got));
  ASSERT_EQ(got.size(), 1u) << "the retried event was never sent";
  EXPECT_EQ(got[0].seq, b.seq + 1);
  EXPECT_EQ(got[0].id, "sale-a");
}

TEST(OutboxRecentEvents, ReadsAfterCloseFailAsBefore) {
  TempPath dir;
  auto o = options(dir);
  auto box = open_box(o);
  append_wait(*box, event("sale-1"));
  box->close();
  std::vector<storage::StoredEvent> got;
  EXPECT_FALSE(box->read_pending(0, 10, &got).is_ok());
}

// The publisher's thread reads while rounds of every size commit (under TSan in CI): every seq
// once, in order, with its own content, whether it came from memory or from SQLite.
TEST(OutboxRecentEvents, AReaderBesideTheCommitsSeesEverySeqOnceInOrder) {
  TempPath dir;
  auto o = options(dir);
  auto box = open_box(o);
  static constexpr int64_t kEvents = 3000;
  std::atomic<int64_t> completed{0};
  std::thread reader([&box] {
    int64_t after = 0;
    std::vector<storage::StoredEvent> got;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (after < kEvents && std::chrono::steady_clock::now() < deadline) {
      ASSERT_TRUE(box->read_pending(after, 256, &got));
      for (const auto& e : got) {
        ASSERT_EQ(e.seq, after + 1);
        ASSERT_EQ(e.id, "c-" + std::to_string(e.seq));
        ASSERT_EQ(e.data, "{\"n\":" + std::to_string(e.seq) + "}");
        after = e.seq;
      }
      if (got.empty()) std::this_thread::yield();
    }
    EXPECT_EQ(after, kEvents);
  });
  // One appender, in order: seq i is "c-i". Appends without waiting form rounds of all sizes.
  for (int64_t i = 1; i <= kEvents; ++i) {
    box->append(event("c-" + std::to_string(i), "{\"n\":" + std::to_string(i) + "}"),
                [&completed](const storage::AppendResult& r) {
                  EXPECT_EQ(r.outcome, storage::AppendResult::Outcome::kStored) << r.message;
                  ++completed;
                });
    if (i % 97 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  reader.join();
  while (completed.load() < kEvents) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_GT(box->disk_reads(), 0u) << "bursts past the bound are read from SQLite";
}

}  // namespace
}  // namespace edgesync::test
