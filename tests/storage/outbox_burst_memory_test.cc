// What a burst costs in memory is freed when it is over: producers outrunning the disk fill
// rounds of thousands of appends, and the vectors those rounds used must not stay allocated at
// that size for the life of the agent.
#include <gtest/gtest.h>
#include <malloc.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "tests/storage/outbox_test_util.h"

namespace edgesync::test {
namespace {

// Bytes the process has allocated and not freed.
size_t heap_in_use() {
  const struct mallinfo2 m = mallinfo2();
  return m.uordblks + m.hblkhd;
}

// Queues `n` appends and commits them as the ingest loop does (append_deferred, then
// commit_queued): they meet in rounds of up to max_batch. Returns when every one is stored.
void burst(storage::Outbox& box, int first, int n) {
  std::atomic<int> stored{0};
  for (int i = 0; i < n; ++i) {
    box.append_deferred(event("burst-" + std::to_string(first + i), std::string(200, 'x')),
                        [&stored](const storage::AppendResult& r) {
                          EXPECT_EQ(r.outcome, storage::AppendResult::Outcome::kStored)
                              << r.message;
                          ++stored;
                        });
  }
  box.commit_queued();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (stored.load() < n && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_EQ(stored.load(), n);
  // The last callback runs before its round has let go of the round's buffers; the round after
  // it waits for the writer token, so once this one is stored the burst's round is all done.
  auto fence = append_wait(box, event("fence-" + std::to_string(first)));
  ASSERT_EQ(fence.outcome, storage::AppendResult::Outcome::kStored) << fence.message;
}

TEST(OutboxBurstMemory, RoundsOfThousandsLeaveNoLargeBuffersBehind) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "the sanitizer's allocator is not glibc's heap, which mallinfo2 reports";
#endif
  TempPath dir;
  storage::Outbox::Options o;
  o.path = dir.file("outbox.db");
  auto opened = storage::Outbox::open(o, inline_dispatch());
  ASSERT_TRUE(opened.is_ok()) << opened.status().to_string();
  auto& box = **opened;
  // Small rounds first, until SQLite's page cache has reached its size: what it holds is not
  // the burst's.
  for (int r = 0; r < 20; ++r) ASSERT_NO_FATAL_FAILURE(burst(box, r * 200, 200));
  const size_t before = heap_in_use();

  ASSERT_NO_FATAL_FAILURE(burst(box, 10000, 4000));
  // A round's vectors of 4,000 appends and their results hold about a megabyte.
  const size_t after = heap_in_use();
  EXPECT_LT(after, before + 128 * 1024) << "in use before the burst " << before << " B, after "
                                        << after << " B";
}

}  // namespace
}  // namespace edgesync::test
