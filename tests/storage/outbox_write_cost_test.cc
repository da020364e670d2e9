// What the outbox writes per event, the figure that wears out a store box's SD card or eMMC:
// the page size a new outbox gets, and the delivered watermark riding along with appends
// instead of costing a commit and a sync of its own.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <future>
#include <memory>
#include <vector>
#include <thread>

#include "storage/outbox_database.h"
#include "storage/schema.h"
#include "tests/storage/fault_fixture.h"

namespace edgesync::test {
namespace {

using namespace std::chrono_literals;

class OutboxWriteCost : public FaultVfsTest {
 protected:
  // An outbox as the previous release made it: 4 KiB pages, WAL, `events` rows of `data_bytes`.
  void make_old_outbox(int events, size_t data_bytes) {
    auto db = storage::Database::open(options_.path, {});
    ASSERT_TRUE(db.is_ok()) << db.status().to_string();
    storage::Database& d = **db;
    ASSERT_TRUE(d.exec("PRAGMA page_size=4096"));
    ASSERT_TRUE(d.exec("PRAGMA journal_mode=WAL"));
    ASSERT_TRUE(storage::migrate_schema(d));
    auto ins = d.prepare(storage::kInsertEventSql);
    ASSERT_TRUE(ins.is_ok());
    const std::string data(data_bytes, 'd');
    ASSERT_TRUE(d.exec("BEGIN"));
    for (int i = 1; i <= events; ++i) {
      const std::string id = "old-" + std::to_string(i);
      (*ins)->bind(1, i);
      (*ins)->bind_text(2, id);
      (*ins)->bind_text(3, "inventory.adjusted");
      (*ins)->bind_null(4);
      (*ins)->bind(5, 1700000000000 + i);
      (*ins)->bind_blob(6, data);
      ASSERT_TRUE((*ins)->run());
    }
    ASSERT_TRUE(d.exec("UPDATE state SET value = 1 WHERE key = 'delivered_seq'"));
    ASSERT_TRUE(d.exec("COMMIT"));
  }

  int64_t page_size() {
    storage::Database::Options ro;
    ro.read_only = true;
    auto db = storage::Database::open(options_.path, ro);
    if (!db.is_ok()) return -1;
    auto size = (*db)->query_int64("PRAGMA page_size", 0);
    return size.is_ok() ? *size : -1;
  }
};

TEST_F(OutboxWriteCost, ANewOutboxUsesOneKibPages) {
  open_box();
  box_->close();
  // With 4 KiB pages a lone event's commit wrote ~14.5 KB (frames of 4,120 bytes, each
  // dirtying two 4 KiB pages of the WAL file); with 1 KiB pages ~7.9 KB.
  EXPECT_EQ(page_size(), 1024);
}

TEST_F(OutboxWriteCost, ASmallOutboxFromAnEarlierReleaseIsRewrittenWithOneKibPagesIntact) {
  make_old_outbox(3, 200);
  ASSERT_EQ(page_size(), 4096);
  open_box();
  auto stats = box_->stats();
  EXPECT_EQ(stats.next_seq, 4);
  EXPECT_EQ(stats.delivered_seq, 1);
  std::vector<storage::StoredEvent> pending;
  ASSERT_TRUE(box_->read_pending(1, 10, &pending));
  ASSERT_EQ(pending.size(), 2u);
  EXPECT_EQ(pending[0].id, "old-2");
  EXPECT_EQ(pending[1].id, "old-3");
  EXPECT_EQ(pending[1].data, std::string(200, 'd'));
  auto r = append_wait(*box_, event("new-1"));
  EXPECT_EQ(r.outcome, storage::AppendResult::Outcome::kStored);
  EXPECT_EQ(r.seq, 4);
  box_->close();
  EXPECT_EQ(page_size(), 1024);
}

TEST_F(OutboxWriteCost, ALargeOutboxFromAnEarlierReleaseKeepsItsPagesAndWorks) {
  make_old_outbox(20, 1 << 20);  // 20 MiB: over what is rewritten at start
  open_box();
  auto r = append_wait(*box_, event("new-1"));
  EXPECT_EQ(r.outcome, storage::AppendResult::Outcome::kStored);
  EXPECT_EQ(r.seq, 21);
  box_->close();
  EXPECT_EQ(page_size(), 4096);
}

// Regression: the watermark of events delivered at once was written in a commit of its own
// every watermark_flush, one more sync (and flash page) for every few events at 20 ev/s.
TEST_F(OutboxWriteCost, WatermarkRidesAlongWithAppendsInsteadOfASyncOfItsOwn) {
  options_.watermark_flush = 50ms;
  open_box();
  const int before = switches_->syncs.load();
  constexpr int kEvents = 60;
  for (int i = 1; i <= kEvents; ++i) {
    auto r = append_wait(*box_, event("ride-" + std::to_string(i)));
    ASSERT_EQ(r.outcome, storage::AppendResult::Outcome::kStored);
    box_->mark_delivered(r.seq);  // delivered at once, as with a hub on line
    std::this_thread::sleep_for(10ms);
  }
  const int syncs = switches_->syncs.load() - before;
  // One sync per commit of an event; the watermark goes with them (every 50 ms here). Written
  // on its own, it added a sync every 50 ms: ~12 more over these ~0.7 s.
  EXPECT_LE(syncs, kEvents + 1) << syncs << " syncs for " << kEvents << " lone events";
  // And it does reach the disk while events flow.
  auto stats = storage::Outbox::inspect(options_.path);
  ASSERT_TRUE(stats.is_ok());
  EXPECT_GE(stats->delivered_seq, kEvents - 10) << "the watermark did not ride along";
}

TEST_F(OutboxWriteCost, AWatermarkWithNoAppendsToRideIsStillWrittenOnItsOwn) {
  options_.watermark_flush = 50ms;
  open_box();
  auto r = append_wait(*box_, event("alone"));
  ASSERT_EQ(r.outcome, storage::AppendResult::Outcome::kStored);
  box_->mark_delivered(r.seq);
  int64_t persisted = 0;
  for (int i = 0; i < 50 && persisted != r.seq; ++i) {
    std::this_thread::sleep_for(20ms);
    auto stats = storage::Outbox::inspect(options_.path);
    ASSERT_TRUE(stats.is_ok());
    persisted = stats->delivered_seq;
  }
  EXPECT_EQ(persisted, r.seq) << "a lone watermark must reach the disk within 2 x flush";
}

// storage.max_bytes is the disk budget an operator sizes the partition by: the database file must
// stay near it with the page size the outbox now uses (more page and cell overhead per row than
// with 4 KiB pages), through fills, deliveries (history pruned to make room) and refills.
TEST_F(OutboxWriteCost, DatabaseFileStaysNearTheBudgetThroughFillsAndRefills) {
  options_.vfs.clear();  // no fault VFS: real sizes, and fast
  options_.max_bytes = 4 << 20;
  options_.checkpoint_bytes = 256 << 10;
  for (size_t data_bytes : {size_t{300}, size_t{8000}}) {
    TempPath dir;
    options_.path = dir.file("outbox.db");
    open_box();
    int64_t n = 0;
    for (int refill = 0; refill < 3; ++refill) {
      // In rounds of 64 appends (group commits: quick) until the outbox refuses.
      bool full = false;
      while (!full) {
        std::vector<std::future<storage::AppendResult>> round;
        for (int i = 0; i < 64; ++i) {
          auto p = std::make_shared<std::promise<storage::AppendResult>>();
          round.push_back(p->get_future());
          box_->append(event("b-" + std::to_string(++n), std::string(data_bytes, 'x')),
                       [p](const storage::AppendResult& r) { p->set_value(r); });
        }
        for (auto& f : round) {
          auto r = f.get();
          full = full || r.outcome == storage::AppendResult::Outcome::kOutboxFull;
          ASSERT_TRUE(r.outcome == storage::AppendResult::Outcome::kStored ||
                      r.outcome == storage::AppendResult::Outcome::kOutboxFull);
        }
      }
      box_->mark_delivered(box_->stats().next_seq - 1);  // the hub took everything
    }
    box_.reset();  // closing the last connection folds the WAL into the file
    const auto size = std::filesystem::file_size(options_.path);
    std::printf("%zu-byte events: database file %ju bytes for a budget of %jd\n", data_bytes,
                static_cast<uintmax_t>(size), static_cast<intmax_t>(options_.max_bytes));
    EXPECT_LE(static_cast<double>(size), 1.10 * options_.max_bytes) << data_bytes << "-byte events";
  }
}

}  // namespace
}  // namespace edgesync::test
