// With the hub away, the agent keeps accepting events up to storage.max_bytes, then refuses
// new ones with outbox_full, never dropping one it accepted; once the hub is back, everything
// accepted is delivered and new events are accepted again.
#include <gtest/gtest.h>

#include <thread>

#include "tests/support/hub_fixture.h"

namespace edgesync::test {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

class OutboxFullTest : public HubFixture {};

TEST_F(OutboxFullTest, RefusesWithOutboxFullThenRecoversAfterDelivery) {
  constexpr int64_t kMaxBytes = 1 << 20;
  const std::string blob(8000, 'x');
  agent_->config().max_bytes = kMaxBytes;
  broker_->stop();
  agent_->start();

  Producer producer(agent_->socket_path());
  int accepted = 0;
  json refused;
  for (int i = 0; i < 400 && refused.is_null(); ++i) {
    auto r = producer.request(
        make_request("full-" + std::to_string(i), "inventory.adjusted", json{{"blob", blob}}),
        20s);
    ASSERT_TRUE(r.is_object()) << r.dump();
    if (r.value("ok", false)) {
      ASSERT_EQ(r.value("seq", 0), accepted + 1) << r.dump();
      ++accepted;
    } else {
      refused = r;
    }
  }
  ASSERT_FALSE(refused.is_null()) << "400 events of 8 kB never filled a 1 MiB outbox";
  EXPECT_EQ(refused.value("error", ""), "outbox_full") << refused.dump();
  EXPECT_NE(refused.value("message", "").find("storage.max_bytes"), std::string::npos);
  EXPECT_GT(accepted * 8000, kMaxBytes * 9 / 10) << accepted << " accepted";
  EXPECT_LE(accepted * 8000, kMaxBytes) << accepted << " accepted";
  // Still full: a retry is refused the same way, and an accepted id is still a duplicate.
  auto again = producer.request(
      make_request("full-extra", "inventory.adjusted", json{{"blob", blob}}), 20s);
  EXPECT_EQ(again.value("error", ""), "outbox_full") << again.dump();
  auto dup = producer.request(
      make_request("full-0", "inventory.adjusted", json{{"blob", blob}}), 20s);
  EXPECT_EQ(dup.value("duplicate", false), true) << dup.dump();
  EXPECT_EQ(dup.value("seq", 0), 1) << dup.dump();

  broker_->start();
  ASSERT_TRUE(hub_->wait_for_distinct_seqs(static_cast<size_t>(accepted), 60s))
      << "hub has " << hub_->distinct_seq_count() << " of " << accepted;
  ASSERT_TRUE(first_arrivals_gap_free(events()));

  // Delivery frees room: the refused event goes in now (the watermark reaches disk within
  // a fraction of a second of the acks).
  json later;
  for (int i = 0; i < 100; ++i) {
    later = producer.request(
        make_request("full-extra", "inventory.adjusted", json{{"blob", blob}}), 20s);
    if (later.value("ok", false)) break;
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(later.value("ok", false), true) << later.dump();
  EXPECT_EQ(later.value("seq", 0), accepted + 1) << later.dump();
}

}  // namespace
}  // namespace edgesync::test
