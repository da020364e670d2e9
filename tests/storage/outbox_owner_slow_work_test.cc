// Regression: slow storage work ran on the ingest thread. commit_queued() committed a lone event
// on the owner's (ingest) thread even after a failed sync, so the reopen that follows a failure
// (open, migrate, the budget's full-table sums, calibration, the dead-letter prune) and the first
// commit on a slow disk ran there: every producer and the systemd watchdog waited for it. Now
// the owner commits a lone event only when nothing slow can come with it; otherwise it hands the
// round to the writer thread and returns at once.
#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>
#include <thread>

#include "tests/storage/fault_fixture.h"

namespace edgesync::test {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using Outcome = storage::AppendResult::Outcome;

class OwnerSlowWork : public FaultVfsTest {
 protected:
  struct Reply {
    bool done = false;
    storage::AppendResult result;
    std::thread::id thread;
  };

  // append_deferred + commit_queued, as the ingest loop does; returns how long commit_queued()
  // kept the calling (owner) thread.
  std::chrono::milliseconds defer_and_commit(const std::string& id, std::shared_ptr<Reply> r) {
    box_->append_deferred(event(id), [this, r](const storage::AppendResult& res) {
      std::lock_guard<std::mutex> lock(mu_);
      r->result = res;
      r->thread = std::this_thread::get_id();
      r->done = true;
      cv_.notify_all();
    });
    const auto t = Clock::now();
    box_->commit_queued();
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t);
  }
  Reply wait(const std::shared_ptr<Reply>& r) {
    std::unique_lock<std::mutex> lock(mu_);
    EXPECT_TRUE(cv_.wait_for(lock, 20s, [&] { return r->done; })) << "append never completed";
    return *r;
  }

  std::mutex mu_;
  std::condition_variable cv_;
};

TEST_F(OwnerSlowWork, CommitQueuedReturnsPromptlyWhileStorageRecoversOnASlowDisk) {
  options_.retry_after = 100ms;
  open_box();
  auto first = std::make_shared<Reply>();
  defer_and_commit("ok-1", first);
  ASSERT_EQ(wait(first).result.seq, 1);

  // A failed sync: the writer drops its connection and must reopen before it writes again.
  switches_->fail_sync = true;
  auto failed = std::make_shared<Reply>();
  defer_and_commit("fails", failed);
  ASSERT_EQ(wait(failed).result.outcome, Outcome::kStorageError);

  // The disk works again, slowly (a worn SD card): every sync takes 400 ms.
  switches_->fail_sync = false;
  switches_->sync_delay_ms = 400;
  std::this_thread::sleep_for(options_.retry_after + 50ms);

  auto recovers = std::make_shared<Reply>();
  const auto held = defer_and_commit("recovers", recovers);
  // Another producer's event while the writer is still reopening.
  auto meanwhile = std::make_shared<Reply>();
  const auto held_again = defer_and_commit("meanwhile", meanwhile);
  std::printf("commit_queued() held the owner thread %lld ms, then %lld ms (sync 400 ms)\n",
              static_cast<long long>(held.count()), static_cast<long long>(held_again.count()));
  // With the reopen and the commit on the owner thread this took 400 ms or more (a sync of its
  // own for the event, plus the reopen's); handed to the writer it is a lock and a notify.
  EXPECT_LT(held.count(), 100) << "the owner thread did the reopen or the slow commit";
  EXPECT_LT(held_again.count(), 100);

  Reply r = wait(recovers);
  ASSERT_EQ(r.result.outcome, Outcome::kStored) << r.result.message;
  EXPECT_EQ(r.result.seq, 2) << "no gap where the failed transaction was";
  EXPECT_NE(r.thread, std::this_thread::get_id()) << "the writer thread reopens, not the owner";
  Reply m = wait(meanwhile);
  ASSERT_EQ(m.result.outcome, Outcome::kStored) << m.result.message;
  EXPECT_EQ(m.result.seq, 3);
}

}  // namespace
}  // namespace edgesync::test
