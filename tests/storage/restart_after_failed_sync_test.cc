// Restart after a failed fsync: an append refused with kStorageError because its sync failed
// may or may not be on disk afterwards (the write can reach the disk without the sync
// succeeding; see docs/PROTOCOL.md). Either way there is exactly one copy or none, a resend of
// its id finds the copy, and the outbox keeps working with gap-free seqs.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "storage/outbox.h"
#include "storage/sqlite.h"
#include "tests/storage/crash_vfs.h"
#include "tests/storage/outbox_test_util.h"

namespace edgesync::test {
namespace {

using Outcome = storage::AppendResult::Outcome;

// What happens between the refused append and the restart.
enum class After {
  kCleanClose,          // the agent stops normally, the disk works again
  kPowerCutDiskKeptIt,  // the power goes; the refused write had reached the disk
  kPowerCutDiskLostIt,  // the power goes; it had not
  kStorageRecovers,     // the disk works again, the outbox retries and stores more, then stops
};

const char* name_of(After a) {
  switch (a) {
    case After::kCleanClose:
      return "CleanClose";
    case After::kPowerCutDiskKeptIt:
      return "PowerCutDiskKeptIt";
    case After::kPowerCutDiskLostIt:
      return "PowerCutDiskLostIt";
    case After::kStorageRecovers:
      return "StorageRecovers";
  }
  return "?";
}

class RestartAfterFailedSync : public ::testing::TestWithParam<After> {};

TEST_P(RestartAfterFailedSync, RefusedEventIsAbsentOrStoredOnceAndTheOutboxCarriesOn) {
  const After after = GetParam();
  TempPath dir;
  CrashVfs& vfs = CrashVfs::get();
  vfs.arm(CrashVfs::CutAt::kNever, 0);

  storage::Outbox::Options o;
  o.path = dir.file("outbox.db");
  o.vfs = CrashVfs::kName;
  o.retry_after =
      after == After::kStorageRecovers ? std::chrono::milliseconds(50) : std::chrono::hours(1);
  const auto refused_event = event("refused", std::string(300, 'r'));
  {
    auto opened = storage::Outbox::open(o, inline_dispatch());
    ASSERT_TRUE(opened.is_ok()) << opened.status().to_string();
    auto& box = **opened;
    ASSERT_EQ(append_wait(box, event("first")).seq, 1);

    vfs.fail_sync_once(1);  // the next commit's WAL sync
    auto refused = append_wait(box, refused_event);
    ASSERT_EQ(refused.outcome, Outcome::kStorageError) << "the sync failed: not acknowledged";

    switch (after) {
      case After::kCleanClose:
        break;
      case After::kPowerCutDiskKeptIt:
      case After::kPowerCutDiskLostIt:
        vfs.cut_power();
        break;
      case After::kStorageRecovers: {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        auto later = append_wait(box, event("later"));
        ASSERT_EQ(later.outcome, Outcome::kStored) << later.message;
        EXPECT_EQ(later.seq, 2) << "the refused event's seq is given back";
        break;
      }
    }
    box.close();
  }
  ASSERT_EQ(vfs.open_files(), 0);
  std::mt19937_64 rng(1);
  vfs.reboot(rng, after == After::kPowerCutDiskLostIt ? CrashVfs::Loss::kDropAll
                                                      : CrashVfs::Loss::kKeepAll);

  {
    storage::Database::Options dbo;
    dbo.create = false;
    auto db = storage::Database::open(o.path, dbo);
    ASSERT_TRUE(db.is_ok()) << db.status().to_string();
    auto check = (*db)->prepare("PRAGMA integrity_check");
    ASSERT_TRUE(check.is_ok());
    auto row = (*check)->step();
    ASSERT_TRUE(row.is_ok() && *row);
    EXPECT_EQ((*check)->column_text(0), "ok");
  }

  storage::Outbox::Options reopen;
  reopen.path = o.path;
  auto opened = storage::Outbox::open(reopen, inline_dispatch());
  ASSERT_TRUE(opened.is_ok()) << opened.status().to_string();
  auto& box = **opened;
  std::vector<storage::StoredEvent> all;
  ASSERT_TRUE(box.read_pending(0, 100, &all));
  int64_t refused_seq = 0;
  for (size_t i = 0; i < all.size(); ++i) {
    EXPECT_EQ(all[i].seq, static_cast<int64_t>(i) + 1) << "seqs must be gap-free";
    if (all[i].id == "refused") {
      EXPECT_EQ(refused_seq, 0) << "two copies of the refused event";
      refused_seq = all[i].seq;
      EXPECT_EQ(all[i].data, refused_event.data);
    }
  }
  ASSERT_FALSE(all.empty());
  EXPECT_EQ(all[0].id, "first");
  if (after == After::kStorageRecovers) {
    ASSERT_GE(all.size(), 2u);
    EXPECT_EQ(all[1].id, "later");
  }
  const int64_t n = static_cast<int64_t>(all.size());
  std::printf("restart after a failed sync (%s): the refused event is %s\n", name_of(after),
              refused_seq ? ("on disk at seq " + std::to_string(refused_seq)).c_str() : "absent");

  // The producer resends it: the copy on disk if there is one, else a new event.
  auto resent = append_wait(box, refused_event);
  if (refused_seq) {
    EXPECT_EQ(resent.outcome, Outcome::kDuplicate) << resent.message;
    EXPECT_EQ(resent.seq, refused_seq);
  } else {
    EXPECT_EQ(resent.outcome, Outcome::kStored) << resent.message;
    EXPECT_EQ(resent.seq, n + 1);
  }
  auto next = append_wait(box, event("next"));
  EXPECT_EQ(next.outcome, Outcome::kStored) << next.message;
  EXPECT_EQ(next.seq, refused_seq ? n + 1 : n + 2);
  ASSERT_TRUE(box.read_pending(0, 100, &all));
  int copies = 0;
  for (size_t i = 0; i < all.size(); ++i) {
    EXPECT_EQ(all[i].seq, static_cast<int64_t>(i) + 1);
    copies += all[i].id == "refused";
  }
  EXPECT_EQ(copies, 1);
}

INSTANTIATE_TEST_SUITE_P(, RestartAfterFailedSync,
                         ::testing::Values(After::kCleanClose, After::kPowerCutDiskKeptIt,
                                           After::kPowerCutDiskLostIt, After::kStorageRecovers),
                         [](const auto& info) { return std::string(name_of(info.param)); });

}  // namespace
}  // namespace edgesync::test
