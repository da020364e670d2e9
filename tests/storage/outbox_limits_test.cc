// Outbox::set_limits(): a configuration pushed while the agent runs changes storage.max_bytes,
// keep_delivered and the dead-letter bounds without a restart. A smaller budget refuses new
// events but never deletes pending ones; smaller history and dead-letter bounds are pruned by the
// writer soon after, with no append needed to trigger it.
#include <gtest/gtest.h>

#include <functional>
#include <future>
#include <memory>
#include <thread>
#include <vector>

#include "tests/storage/fault_fixture.h"

namespace edgesync::test {
namespace {

using Outcome = storage::AppendResult::Outcome;

class OutboxLimits : public FaultVfsTest {
 protected:
  void SetUp() override {
    FaultVfsTest::SetUp();
    options_.watermark_flush = std::chrono::milliseconds(10);
  }

  storage::Outbox::Limits limits() const {
    return {options_.max_bytes, options_.keep_delivered, options_.max_dead_letters,
            options_.dead_letter_max_age};
  }

  // As the event loop appends: queued on the owner's thread, then commit_queued().
  storage::AppendResult append_on_owner(storage::AppendRequest req) {
    auto p = std::make_shared<std::promise<storage::AppendResult>>();
    auto f = p->get_future();
    box_->append_deferred(std::move(req), [p](const storage::AppendResult& r) { p->set_value(r); });
    box_->commit_queued();
    return f.get();
  }

  // `n` appends in flight at once (group-committed); every outcome in order.
  std::vector<storage::AppendResult> append_burst(const std::string& prefix, int n) {
    std::vector<std::future<storage::AppendResult>> futures;
    for (int i = 0; i < n; ++i) {
      auto p = std::make_shared<std::promise<storage::AppendResult>>();
      futures.push_back(p->get_future());
      box_->append(event(prefix + std::to_string(i)),
                   [p](const storage::AppendResult& r) { p->set_value(r); });
    }
    std::vector<storage::AppendResult> out;
    for (auto& f : futures) out.push_back(f.get());
    return out;
  }

  // The figures another process sees (the CLI's read-only inspection).
  storage::OutboxStats inspect() const {
    auto st = storage::Outbox::inspect(options_.path);
    EXPECT_TRUE(st.is_ok()) << st.status().to_string();
    return st ? *st : storage::OutboxStats{};
  }

  // Polls `done` for up to ten seconds.
  static bool eventually(const std::function<bool()>& done) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      if (done()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return done();
  }

  // Stores an event and dead-letters it, as the publisher does with a permanent refusal.
  void append_and_dead_letter(const std::string& id) {
    auto r = append_wait(*box_, event(id));
    ASSERT_EQ(r.outcome, Outcome::kStored);
    std::vector<storage::StoredEvent> one;
    ASSERT_TRUE(box_->read_pending(r.seq - 1, 1, &one));
    ASSERT_EQ(one.size(), 1u);
    box_->dead_letter(one[0], "PUBACK reason code 149");
    box_->mark_delivered(r.seq);
  }
};

TEST_F(OutboxLimits, SmallerMaxBytesRefusesNewEventsAndKeepsEveryPendingOne) {
  const std::string payload = "\"" + std::string(300, 'x') + "\"";
  auto make = [&](int i) { return event("mb-" + std::to_string(100 + i), payload); };
  const int64_t size = storage::counted_size(make(0));
  open_box();  // the default budget: a gibibyte
  for (int i = 0; i < 10; ++i) ASSERT_EQ(append_wait(*box_, make(i)).outcome, Outcome::kStored);

  // Below what is already pending: nothing goes, new events are refused.
  auto small = limits();
  small.max_bytes = 5 * size;
  box_->set_limits(small);
  auto full = append_wait(*box_, make(10));
  EXPECT_EQ(full.outcome, Outcome::kOutboxFull);
  EXPECT_NE(full.message.find("outbox full"), std::string::npos) << full.message;
  EXPECT_NE(full.message.find("storage.max_bytes " + std::to_string(5 * size)), std::string::npos)
      << "the refusal names the new limit: " << full.message;
  EXPECT_EQ(append_on_owner(make(11)).outcome, Outcome::kOutboxFull)
      << "a lone event committed by the owner thread goes by the new limit too";
  EXPECT_EQ(append_wait(*box_, make(3)).outcome, Outcome::kDuplicate)
      << "a resubmission is still answered with its seq";

  std::vector<storage::StoredEvent> pending;
  ASSERT_TRUE(box_->read_pending(0, 100, &pending));
  ASSERT_EQ(pending.size(), 10u) << "a smaller budget never deletes pending events";
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(pending[i].seq, i + 1);
    EXPECT_EQ(pending[i].id, make(i).id);
    EXPECT_EQ(pending[i].data, payload);
  }
  EXPECT_EQ(box_->stats().pending_bytes, 10 * size);
  EXPECT_EQ(inspect().stored_events, 10);

  // Delivering six leaves four pending: room for one more under the new limit, not two.
  box_->mark_delivered(6);
  auto after_delivery = append_wait(*box_, make(12));
  for (int i = 0; i < 50 && after_delivery.outcome != Outcome::kStored; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    after_delivery = append_wait(*box_, make(12));
  }
  EXPECT_EQ(after_delivery.outcome, Outcome::kStored);
  EXPECT_EQ(after_delivery.seq, 11);
  EXPECT_EQ(append_wait(*box_, make(13)).outcome, Outcome::kOutboxFull);

  // Raised again: appends are accepted, on both paths.
  auto large = limits();
  large.max_bytes = 100 * size;
  box_->set_limits(large);
  auto stored = append_wait(*box_, make(13));
  EXPECT_EQ(stored.outcome, Outcome::kStored) << stored.message;
  EXPECT_EQ(stored.seq, 12);
  auto on_owner = append_on_owner(make(14));
  EXPECT_EQ(on_owner.outcome, Outcome::kStored) << on_owner.message;
  EXPECT_EQ(on_owner.seq, 13);
  std::vector<storage::StoredEvent> all;
  ASSERT_TRUE(box_->read_pending(6, 100, &all));
  EXPECT_EQ(all.size(), 7u);
}

// Lowered from far above to 100 over 5,000 delivered events: more than one prune slice (2,000
// rows when idle), and no append comes after the change to carry the pruning.
TEST_F(OutboxLimits, SmallerKeepDeliveredPrunesHistoryDownToItWhileIdle) {
  options_.keep_delivered = 1000000;
  options_.prune_step = 100;
  open_box();
  for (const auto& r : append_burst("kd-", 5000)) ASSERT_EQ(r.outcome, Outcome::kStored);
  box_->mark_delivered(5000);
  ASSERT_TRUE(eventually([&] { return inspect().delivered_seq == 5000; }))
      << "the watermark was never written";
  ASSERT_EQ(inspect().stored_events, 5000) << "kept: below the old keep_delivered";

  auto smaller = limits();
  smaller.keep_delivered = 100;
  box_->set_limits(smaller);
  int64_t stored = 0;
  auto within_bound = [&] {
    stored = inspect().stored_events;
    return stored < 100 + options_.prune_step;
  };
  EXPECT_TRUE(eventually(within_bound)) << stored << " rows still stored";
  EXPECT_GE(stored, 100) << "the newest keep_delivered delivered events stay";

  // The kept history still recognises a resubmission, and seq goes on.
  EXPECT_EQ(append_wait(*box_, event("kd-4999")).outcome, Outcome::kDuplicate);
  EXPECT_EQ(append_wait(*box_, event("kd-after")).seq, 5001);
}

TEST_F(OutboxLimits, SmallerDeadLetterBoundsPruneTheDeadLetters) {
  open_box();  // keeps 10,000 dead letters for 30 days
  for (int i = 1; i <= 6; ++i) append_and_dead_letter("dl-" + std::to_string(i));
  ASSERT_TRUE(eventually([&] { return inspect().dead_letters == 6; }));

  auto fewer = limits();
  fewer.max_dead_letters = 2;
  box_->set_limits(fewer);
  EXPECT_TRUE(eventually([&] { return inspect().dead_letters == 2; }))
      << inspect().dead_letters << " dead letters after max_dead_letters became 2";
  std::vector<storage::DeadLetter> dead;
  ASSERT_TRUE(storage::Outbox::list_dead_letters(options_.path, 100, &dead));
  ASSERT_EQ(dead.size(), 2u);
  EXPECT_EQ(dead[0].event.seq, 5) << "the newest are kept";
  EXPECT_EQ(dead[1].event.seq, 6);
  EXPECT_EQ(inspect().dead_letters_pruned, 4);

  // A shorter maximum age: both are older than a second by now.
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  auto younger = fewer;
  younger.dead_letter_max_age = std::chrono::seconds(1);
  box_->set_limits(younger);
  EXPECT_TRUE(eventually([&] { return inspect().dead_letters == 0; }))
      << inspect().dead_letters << " dead letters older than dead_letter_max_age";
  EXPECT_EQ(inspect().dead_letters_pruned, 6);
  EXPECT_EQ(inspect().pending, 0) << "dead-lettered events stay passed by the watermark";
}

}  // namespace
}  // namespace edgesync::test
