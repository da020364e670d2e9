// What the outbox writes per event, the figure that wears out a store box's SD card or eMMC:
// the page size a new outbox gets, and the delivered watermark riding along with appends
// instead of costing a commit and a sync of its own.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "storage/outbox_database.h"
#include "tests/storage/fault_fixture.h"

namespace edgesync::test {
namespace {

using namespace std::chrono_literals;

class OutboxWriteCost : public FaultVfsTest {};

TEST_F(OutboxWriteCost, ANewOutboxUsesOneKibPages) {
  open_box();
  box_->close();
  storage::Database::Options ro;
  ro.read_only = true;
  auto db = storage::Database::open(options_.path, ro);
  ASSERT_TRUE(db.is_ok()) << db.status().to_string();
  auto page_size = (*db)->query_int64("PRAGMA page_size", 0);
  ASSERT_TRUE(page_size.is_ok());
  // With 4 KiB pages a lone event's commit wrote ~14.5 KB (frames of 4,120 bytes, each
  // dirtying two 4 KiB pages of the WAL file); with 1 KiB pages ~7.9 KB.
  EXPECT_EQ(*page_size, 1024);
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

}  // namespace
}  // namespace edgesync::test
