// Events the hub cannot take go to the dead-letter table with their reason, a notice takes
// their place in the stream (so the hub's "highest contiguous seq" moves on), and delivery goes
// on with the next event instead of stalling:
//  - a PUBACK that says the message can never be taken (0x95, packet too large): at once;
//  - bigger than the broker's Maximum Packet Size (mosquitto would drop the connection): before
//    it is sent;
//  - refused by the hub's ACL (0x87, not authorized): retried for hub.refused_retry_s while the
//    events behind it flow, then dead-lettered.
#include <gtest/gtest.h>
#include <signal.h>

#include <set>

#include "tests/support/hub_fixture.h"

namespace edgesync::test {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

// The dead-letter notices among `messages`, parsed.
std::vector<json> notices(const HubSubscriber::Messages& messages, const std::string& topic_base) {
  std::vector<json> out;
  for (const auto& m : messages) {
    if (m.topic == topic_base + "/deadletter") out.push_back(json::parse(m.payload, nullptr, false));
  }
  return out;
}

bool has_notice_for(const HubSubscriber::Messages& messages, const std::string& topic_base,
                    int64_t seq) {
  for (const auto& n : notices(messages, topic_base)) {
    if (n.is_object() && n.value("seq", 0) == seq) return true;
  }
  return false;
}

// Seqs of the events (not notices) the hub received.
std::set<int64_t> event_seqs(const std::vector<HubEvent>& events) {
  std::set<int64_t> seqs;
  for (const auto& e : events) seqs.insert(e.seq);
  return seqs;
}

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
  EXPECT_EQ(event_seqs(events()), (std::set<int64_t>{1, 3}));
  // The hub hears of seq 2 as a notice, with the same incarnation as the events around it.
  const std::string base = agent_->config().topic_base();
  ASSERT_TRUE(hub_->wait_for([&](const auto& msgs) { return has_notice_for(msgs, base, 2); }, 10s));
  json notice = notices(hub_->messages(), base).front();
  EXPECT_EQ(notice.value("id", ""), "too-big-2");
  EXPECT_EQ(notice.value("incarnation", "x"), events().front().payload.value("incarnation", "y"));
  EXPECT_NE(notice.value("reason", "").find("149"), std::string::npos) << notice.dump();
  EXPECT_FALSE(notice.contains("data")) << "the event's data stays on the box";
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

// The broker announces a Maximum Packet Size of 4096 bytes and disconnects a client that sends
// more. An 8 KB event must not be sent (it would be resent after every reconnect, forever, and
// nothing behind it would arrive): it is dead-lettered before sending, the 20 behind it arrive.
class OversizeTest : public HubFixture {
 protected:
  BrokerOptions broker_options() const override {
    BrokerOptions o;
    o.extra_config = "max_packet_size 4096";
    return o;
  }
};

TEST_F(OversizeTest, EventOverTheBrokersMaximumPacketSizeIsDeadLetteredNotResentForever) {
  agent_->start();
  Producer producer(agent_->socket_path());
  auto big = producer.request(
      make_request("big-1", "inventory.adjusted", json{{"blob", std::string(8000, 'x')}}), 20s);
  ASSERT_EQ(big.value("seq", 0), 1) << big.dump();
  for (int i = 2; i <= 21; ++i) {
    auto r = producer.request(
        make_request("small-" + std::to_string(i), "inventory.adjusted", json{{"n", i}}), 20s);
    ASSERT_EQ(r.value("seq", 0), i) << r.dump();
  }
  const std::string base = agent_->config().topic_base();
  ASSERT_TRUE(hub_->wait_for(
      [&](const auto& msgs) { return event_seqs(hub_events(msgs, base)).size() == 20; }, 30s))
      << "events behind the oversized one did not arrive; agent log:\n" << agent_->log();
  EXPECT_EQ(event_seqs(events()).count(1), 0u);
  ASSERT_TRUE(hub_->wait_for([&](const auto& msgs) { return has_notice_for(msgs, base, 1); }, 10s));
  EXPECT_NE(notices(hub_->messages(), base).front().value("reason", "").find("Maximum Packet Size"),
            std::string::npos);
  // Never sent, so the broker never had a reason to drop the connection.
  EXPECT_EQ(broker_->log().find("oversize"), std::string::npos) << broker_->log();

  CommandResult dl = AgentProcess::run_cli(
      {"dead-letters", "--config", agent_->config_path(), "--json"}, "", 20s);
  ASSERT_TRUE(dl.exited_ok()) << dl.describe();
  json dead = json::parse(dl.out, nullptr, false);
  ASSERT_TRUE(dead.is_array() && dead.size() == 1u) << dl.out;
  EXPECT_EQ(dead[0]["id"], "big-1");
  EXPECT_NE(dead[0]["reason"].get<std::string>().find("4096"), std::string::npos) << dl.out;
}

// A hub ACL refuses one event type (PUBACK 0x87, not authorized). The refused event is retried
// for hub.refused_retry_s while the events behind it keep arriving (no reconnect loop resending
// a window each time), then dead-lettered with the reason code, and announced.
class RefusedTest : public HubFixture {
 protected:
  BrokerOptions broker_options() const override {
    BrokerOptions o;
    o.acl = "topic deny edgesync/v1/+/+/events/price.changed\n"
            "topic readwrite edgesync/v1/#\n";
    return o;
  }
};

TEST_F(RefusedTest, EventRefusedByTheHubsAclIsRetriedThenDeadLetteredWhileOthersFlow) {
  agent_->config().refused_retry_s = 6;
  agent_->start();
  Producer producer(agent_->socket_path());
  const std::string base = agent_->config().topic_base();
  auto r1 = producer.request(make_request("ok-1", "inventory.adjusted", json{{"n", 1}}), 20s);
  auto r2 = producer.request(make_request("refused-2", "price.changed", json{{"sku", "A"}}), 20s);
  ASSERT_EQ(r2.value("seq", 0), 2) << r2.dump() << ": the agent accepts it, the hub refuses it";
  const auto sent_at = std::chrono::steady_clock::now();
  for (int i = 3; i <= 10; ++i) {
    auto r = producer.request(
        make_request("ok-" + std::to_string(i), "inventory.adjusted", json{{"n", i}}), 20s);
    ASSERT_EQ(r.value("seq", 0), i) << r.dump();
  }
  // The nine behind and around it arrive while it is still being retried.
  ASSERT_TRUE(hub_->wait_for(
      [&](const auto& msgs) { return event_seqs(hub_events(msgs, base)).size() == 9; }, 5s))
      << "events behind a refused one were held up; agent log:\n" << agent_->log();
  EXPECT_LT(std::chrono::steady_clock::now() - sent_at, 5s);
  EXPECT_FALSE(has_notice_for(hub_->messages(), base, 2)) << "dead-lettered before hub.refused_retry_s";

  // Then it is given up on, with the reason code, and announced.
  ASSERT_TRUE(hub_->wait_for([&](const auto& msgs) { return has_notice_for(msgs, base, 2); }, 20s))
      << agent_->log();
  EXPECT_GE(std::chrono::steady_clock::now() - sent_at, 5s);
  json notice = notices(hub_->messages(), base).front();
  EXPECT_NE(notice.value("reason", "").find("135"), std::string::npos) << notice.dump();
  EXPECT_EQ(event_seqs(events()).count(2), 0u);
  json status;
  for (int i = 0; i < 50; ++i) {
    status = status_json();
    if (status["outbox"].value("last_delivered_seq", 0) == 10) break;
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(status["outbox"].value("last_delivered_seq", 0), 10) << status.dump();
  EXPECT_EQ(status["outbox"].value("dead_letters", 0), 1) << status.dump();
  // Retried on the one connection, not by reconnecting and resending a window each time.
  const std::string log = agent_->log();
  size_t connects = 0;
  for (size_t at = log.find("connected to"); at != std::string::npos;
       at = log.find("connected to", at + 1)) {
    ++connects;
  }
  EXPECT_EQ(connects, 1u) << log;
}

// The hub's ACL also refuses the dead-letter topic (a fleet upgraded without allowing it): the
// notice must not be dropped (the hub's contiguous seq would stall at the gap for good); it is
// retried until the ACL is fixed, and the watermark waits for it.
class RefusedNoticeTest : public HubFixture {
 protected:
  BrokerOptions broker_options() const override {
    BrokerOptions o;
    o.acl = kStrictAcl;
    return o;
  }
  static constexpr const char* kStrictAcl =
      "topic deny edgesync/v1/+/+/events/price.changed\n"
      "topic deny edgesync/v1/+/+/deadletter\n"
      "topic readwrite edgesync/v1/#\n";
};

TEST_F(RefusedNoticeTest, ARefusedNoticeIsRetriedUntilTheHubTakesIt) {
  agent_->config().refused_retry_s = 1;
  agent_->start();
  Producer producer(agent_->socket_path());
  const std::string base = agent_->config().topic_base();
  ASSERT_EQ(producer.request(make_request("refused-1", "price.changed", json{{"sku", "A"}}), 20s)
                .value("seq", 0),
            1);
  ASSERT_EQ(producer.request(make_request("ok-2", "inventory.adjusted", json{{"n", 2}}), 20s)
                .value("seq", 0),
            2);
  ASSERT_TRUE(hub_->wait_for(
      [&](const auto& msgs) { return event_seqs(hub_events(msgs, base)).count(2) == 1; }, 10s));
  // Dead-lettered after a second, its notice refused: the watermark must stay before seq 1.
  for (int i = 0; i < 100 && agent_->log().find("dead-letter notice for seq 1 refused") ==
                                 std::string::npos;
       ++i) {
    std::this_thread::sleep_for(100ms);
  }
  ASSERT_NE(agent_->log().find("dead-letter notice for seq 1 refused"), std::string::npos)
      << agent_->log();
  EXPECT_EQ(status_json()["outbox"].value("last_delivered_seq", -1), 0);

  // The operator fixes the ACL; mosquitto reloads it on SIGHUP.
  write_file(dir_->path() / "acl",
             "topic deny edgesync/v1/+/+/events/price.changed\ntopic readwrite edgesync/v1/#\n");
  ASSERT_EQ(::kill(broker_->pid(), SIGHUP), 0);
  ASSERT_TRUE(hub_->wait_for([&](const auto& msgs) { return has_notice_for(msgs, base, 1); }, 30s))
      << agent_->log();
  json status;
  for (int i = 0; i < 50; ++i) {
    status = status_json();
    if (status["outbox"].value("last_delivered_seq", 0) == 2) break;
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(status["outbox"].value("last_delivered_seq", 0), 2) << status.dump();
}

}  // namespace
}  // namespace edgesync::test
