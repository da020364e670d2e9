// The events committed last, kept in memory for the publisher (storage/recent_events.h): what
// it answers must be exactly what SQLite would, and whatever it cannot answer goes to SQLite.
#include "storage/recent_events.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <future>
#include <memory>
#include <mutex>
#include <thread>

#include "storage/outbox.h"
#include "tests/storage/outbox_test_util.h"

namespace edgesync::test {
namespace {

std::vector<storage::RecentEvents::Entry> run(int64_t first, int64_t last,
                                               size_t data_bytes = 10) {
  std::vector<storage::RecentEvents::Entry> v;
  for (int64_t s = first; s <= last; ++s) {
    storage::StoredEvent e;
    e.seq = s;
    e.id = "id-" + std::to_string(s);
    e.type = "inventory.adjusted";
    e.data = std::string(data_bytes, 'x');
    v.push_back(std::make_shared<const storage::StoredEvent>(std::move(e)));
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

}  // namespace
}  // namespace edgesync::test

namespace edgesync::storage {

// Holds the ring's lock from another thread, as a reader in the middle of a read does (a
// thread may not try a std::mutex it holds itself).
class RecentEventsPeer {
 public:
  explicit RecentEventsPeer(RecentEvents& r) : r_(r) {
    // Shared: the holder may still be inside set_value() when the wait below returns.
    auto held = std::make_shared<std::promise<void>>();
    auto f = held->get_future();
    holder_ = std::thread([this, held] {
      r_.mu_.lock();
      held->set_value();
      release_.get_future().wait();
      r_.mu_.unlock();
    });
    f.wait();
  }
  ~RecentEventsPeer() { release(); }
  void release() {
    if (!holder_.joinable()) return;
    release_.set_value();
    holder_.join();
  }

 private:
  RecentEvents& r_;
  std::promise<void> release_;
  std::thread holder_;
};

}  // namespace edgesync::storage

namespace edgesync::test {
namespace {

using storage::RecentEventsPeer;

// Runs `fn` on another thread; false if it has not returned within 10 s (it waited for the
// lock). It is then left to finish once the lock is released.
template <typename Fn>
bool returns_at_once(Fn fn, std::future<void>* running) {
  *running = std::async(std::launch::async, fn);
  return running->wait_for(std::chrono::seconds(10)) == std::future_status::ready;
}

TEST(RecentEvents, ACommitThatFindsTheLockHeldLeavesTheNextReadsToSQLite) {
  storage::RecentEvents r;
  r.append(run(1, 3));
  std::future<void> appending;  // before the peer: destroyed after it has let go
  RecentEventsPeer peer(r);
  EXPECT_TRUE(returns_at_once([&r] { r.append(run(4, 5)); }, &appending))
      << "the committer waited for a reader";
  peer.release();
  appending.wait();
  std::vector<storage::StoredEvent> got;
  EXPECT_FALSE(r.read(3, 10, &got)) << "answered from a run that lacks seqs 4 and 5";
  EXPECT_FALSE(r.read(0, 10, &got));
  EXPECT_EQ(r.size(), 0u) << "emptied by the next holder";
  r.append(run(6, 7));
  ASSERT_TRUE(r.read(5, 10, &got)) << "a new run starts with the next round";
  EXPECT_EQ(seqs(got), (std::vector<int64_t>{6, 7}));
}

TEST(RecentEvents, ForgetAndDropThatFindTheLockHeldEmptyTheRun) {
  for (bool forget : {true, false}) {
    SCOPED_TRACE(forget ? "forget" : "drop_through");
    storage::RecentEvents r;
    r.append(run(1, 3));
    std::future<void> changing;
    RecentEventsPeer peer(r);
    EXPECT_TRUE(returns_at_once(
        [&r, forget] {
          if (forget) {
            r.forget();
          } else {
            r.drop_through(1);
          }
        },
        &changing));
    peer.release();
    changing.wait();
    std::vector<storage::StoredEvent> got;
    EXPECT_FALSE(r.read(1, 10, &got)) << "answered from a run that was to change";
    EXPECT_EQ(r.size(), 0u);
  }
}

TEST(RecentEvents, AnAppendAfterAMissedForgetStartsANewRun) {
  storage::RecentEvents r;
  r.append(run(1, 3));
  {
    std::future<void> forgetting;
    RecentEventsPeer peer(r);
    EXPECT_TRUE(returns_at_once([&r] { r.forget(); }, &forgetting));
    peer.release();
    forgetting.wait();
  }
  r.append(run(4, 5));  // the next holder, continuing the seqs as if nothing had changed
  std::vector<storage::StoredEvent> got;
  EXPECT_FALSE(r.read(0, 10, &got)) << "seqs 1-3 were to be forgotten";
  ASSERT_TRUE(r.read(3, 10, &got));
  EXPECT_EQ(seqs(got), (std::vector<int64_t>{4, 5}));
}

TEST(RecentEvents, AReadThatFindsTheLockHeldGoesToSQLite) {
  storage::RecentEvents r;
  r.append(run(1, 3));
  std::vector<storage::StoredEvent> got;
  {
    std::future<void> reading;
    RecentEventsPeer peer(r);
    bool answered = true;
    EXPECT_TRUE(returns_at_once([&] { answered = r.read(0, 10, &got); }, &reading));
    peer.release();
    reading.wait();
    EXPECT_FALSE(answered);
  }
  ASSERT_TRUE(r.read(0, 10, &got)) << "a read that found the lock held changes nothing";
  EXPECT_EQ(seqs(got), (std::vector<int64_t>{1, 2, 3}));
}

// The outbox itself: the publisher's reads after a commit need no SQLite, and give the same
// events SQLite gives.

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

// The publisher's thread reads while rounds commit (under TSan in CI): every seq once, in
// order, with its own content, whether it came from memory or from SQLite.
class Reader {
 public:
  explicit Reader(storage::Outbox& box) : box_(box), thread_([this] { run(); }) {}
  ~Reader() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
      go_ = true;
      paused_ = false;
    }
    changed_.notify_all();
    thread_.join();
  }
  void go() {
    std::lock_guard<std::mutex> lock(mu_);
    go_ = true;
    changed_.notify_all();
  }
  // Stops reading until resume(); returns once the reader holds nothing (or has stopped on a
  // failed assertion).
  void pause() {
    std::unique_lock<std::mutex> lock(mu_);
    paused_ = true;
    changed_.wait(lock, [this] { return idle_ || exited_; });
  }
  // Reads on from `after`.
  void resume(int64_t after) {
    std::lock_guard<std::mutex> lock(mu_);
    after_ = after;
    paused_ = false;
    idle_ = false;
    changed_.notify_all();
  }
  int64_t through() const { return after_.load(); }
  // Waits until the reader has read through `seq`.
  bool reaches(int64_t seq) const {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (through() < seq && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return through() >= seq;
  }

 private:
  void run() {
    read_all();
    std::lock_guard<std::mutex> lock(mu_);
    exited_ = true;
    changed_.notify_all();
  }

  // Returns at stop, or at the first failed assertion.
  void read_all() {
    {
      std::unique_lock<std::mutex> lock(mu_);
      changed_.wait(lock, [this] { return go_; });
    }
    std::vector<storage::StoredEvent> got;
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mu_);
        if (stop_) return;
        if (paused_) {
          idle_ = true;
          changed_.notify_all();
          changed_.wait(lock, [this] { return !paused_ || stop_; });
          continue;
        }
      }
      ASSERT_TRUE(box_.read_pending(after_, 256, &got));
      for (const auto& e : got) {
        ASSERT_EQ(e.seq, after_ + 1);
        ASSERT_EQ(e.id, "c-" + std::to_string(e.seq));
        ASSERT_EQ(e.data, "{\"n\":" + std::to_string(e.seq) + "}");
        after_ = e.seq;
      }
      if (got.empty()) std::this_thread::yield();
    }
  }

  storage::Outbox& box_;
  std::mutex mu_;
  std::condition_variable changed_;
  bool go_ = false;      // guarded by mu_
  bool stop_ = false;    // guarded by mu_
  bool paused_ = false;  // guarded by mu_
  bool idle_ = false;    // guarded by mu_: paused, and holds nothing
  bool exited_ = false;  // guarded by mu_
  std::atomic<int64_t> after_{0};
  std::thread thread_;
};

// One appender, in order: seq i is "c-i".
storage::AppendRequest numbered(int64_t i) {
  return event("c-" + std::to_string(i), "{\"n\":" + std::to_string(i) + "}");
}

void append_all(storage::Outbox& box, int64_t first, int64_t last, bool pause_now_and_then) {
  auto completed = std::make_shared<std::atomic<int64_t>>(0);
  for (int64_t i = first; i <= last; ++i) {
    box.append(numbered(i), [completed](const storage::AppendResult& r) {
      EXPECT_EQ(r.outcome, storage::AppendResult::Outcome::kStored) << r.message;
      ++*completed;
    });
    if (pause_now_and_then && i % 97 == 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (*completed < last - first + 1 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_EQ(*completed, last - first + 1);
}

TEST(OutboxRecentEvents, AReaderBesideTheCommitsSeesEverySeqOnceInOrder) {
  TempPath dir;
  auto o = options(dir);
  auto box = open_box(o);
  Reader reader(*box);

  // A backlog past what memory holds: read from SQLite, then from memory.
  ASSERT_NO_FATAL_FAILURE(append_all(*box, 1, 1000, false));
  reader.go();
  ASSERT_TRUE(reader.reaches(1000));
  const uint64_t disk_after_backlog = box->disk_reads();
  EXPECT_GT(disk_after_backlog, 0u) << "seq 1 is no longer in memory";

  // A steady pace, as the publisher reads: once after each commit. Every read from memory.
  reader.pause();
  std::vector<storage::StoredEvent> got;
  for (int64_t i = 1001; i <= 1100; ++i) {
    ASSERT_EQ(append_wait(*box, numbered(i)).outcome, storage::AppendResult::Outcome::kStored);
    ASSERT_TRUE(box->read_pending(i - 1, 256, &got));
    ASSERT_EQ(got.size(), 1u);
    ASSERT_EQ(got[0].id, "c-" + std::to_string(i));
  }
  EXPECT_EQ(box->disk_reads(), disk_after_backlog)
      << "an event read right after its commit went to SQLite";

  // Rounds of all sizes while the reader reads flat out: commits that find the lock held leave
  // the run stale, and those reads go to SQLite.
  reader.resume(1100);
  ASSERT_NO_FATAL_FAILURE(append_all(*box, 1101, 4000, true));
  ASSERT_TRUE(reader.reaches(4000));
  EXPECT_EQ(reader.through(), 4000);
}

}  // namespace
}  // namespace edgesync::test
