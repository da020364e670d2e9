// A message the hub will never take (PUBACK 0x95, packet too large) goes to the dead-letter
// table with its reason, and delivery goes on with the next event instead of stalling.
#include <gtest/gtest.h>

#include <set>

#include "tests/support/hub_fixture.h"

namespace edgesync::test {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

class DeadLetterTest : public HubFixture {
 protected:
  BrokerOptions broker_options() const override {
    BrokerOptions o;
    o.extra_config = "message_size_limit 4000";
    return o;
  }
};

TEST_F(DeadLetterTest, RefusedEventIsDeadLetteredAndLaterEventsStillFlow) {
  agent_->start();
  Producer producer(agent_->socket_path());
  auto small = [](int n) { return json{{"n", n}}; };
  auto r1 = producer.request(make_request("small-1", "inventory.adjusted", small(1)), 20s);
  auto r2 = producer.request(
      make_request("too-big-2", "inventory.adjusted", json{{"blob", std::string(8000, 'x')}}), 20s);
  auto r3 = producer.request(make_request("small-3", "inventory.adjusted", small(3)), 20s);
  ASSERT_EQ(r1.value("seq", 0), 1) << r1.dump();
  ASSERT_EQ(r2.value("seq", 0), 2) << r2.dump() << ": the agent accepts it, the hub refuses it";
  ASSERT_EQ(r3.value("seq", 0), 3) << r3.dump();

  ASSERT_TRUE(hub_->wait_for_distinct_seqs(2, 30s));
  // Give a wrongly resent seq 2 a moment to show up before checking it never did.
  json status;
  for (int i = 0; i < 100; ++i) {
    status = status_json();
    if (status["outbox"].value("last_delivered_seq", 0) == 3) break;
    std::this_thread::sleep_for(100ms);
  }
  std::set<int64_t> seqs;
  for (const auto& e : events()) seqs.insert(e.seq);
  EXPECT_EQ(seqs, (std::set<int64_t>{1, 3}));
  EXPECT_EQ(status["outbox"].value("last_delivered_seq", 0), 3) << status.dump();
  EXPECT_EQ(status["outbox"].value("pending", -1), 0) << status.dump();
  EXPECT_EQ(status["outbox"].value("dead_letters", 0), 1) << status.dump();

  CommandResult dl = AgentProcess::run_cli(
      {"dead-letters", "--config", agent_->config_path(), "--json"}, "", 20s);
  ASSERT_TRUE(dl.exited_ok()) << dl.describe();
  json dead = json::parse(dl.out, nullptr, false);
  ASSERT_TRUE(dead.is_array()) << dl.out;
  ASSERT_EQ(dead.size(), 1u) << dl.out;
  EXPECT_EQ(dead[0]["seq"], 2);
  EXPECT_EQ(dead[0]["id"], "too-big-2");
  EXPECT_NE(dead[0]["reason"].get<std::string>().find("149"), std::string::npos)
      << "reason should carry the PUBACK reason code 0x95 (149): " << dead[0]["reason"];
  EXPECT_EQ(dead[0]["data"]["blob"].get<std::string>().size(), 8000u);

  // A restart does not resend it, and numbering goes on.
  ASSERT_EQ(agent_->terminate(20s), 0);
  hub_->clear();
  agent_->start();
  Producer again(agent_->socket_path());
  auto r4 = again.request(make_request("small-4", "inventory.adjusted", small(4)), 20s);
  EXPECT_EQ(r4.value("seq", 0), 4) << r4.dump();
  ASSERT_TRUE(hub_->wait_for_distinct_seqs(1, 30s));
  for (const auto& e : events()) EXPECT_NE(e.seq, 2) << "a dead letter was sent again";
}

}  // namespace
}  // namespace edgesync::test
