// `edgesync reconcile` on what a real hub received from the real agent: a run through two broker
// restarts and a SIGKILL of the agent reconciles with nothing lost (duplicates and all); the
// same record with one event taken out names that seq as lost and exits 1; a live run against
// the broker reads the retained health message; a hand-written capture with JSON payloads and a
// mangled line; usage and connection errors exit 2.
#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <thread>

#include "tests/support/hub_fixture.h"
#include "tests/support/schema_check.h"
#include "tests/support/workload.h"

namespace edgesync::test {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

class ReconcileTest : public HubFixture {
 protected:
  void SetUp() override {
    HubFixture::SetUp();
    // Health every 5 s (the shortest allowed): the hub hears soon that everything was delivered.
    agent_->config().extra["health"] = {{"interval_s", 5}};
  }

  // The newest health message the hub has in which the box says the hub acknowledged every
  // seq it accepted, at least `at_least` of them; null if none yet.
  json caught_up_health(const HubSubscriber::Messages& messages, int64_t at_least) const {
    const std::string topic = agent_->config().topic_base() + "/health";
    for (auto it = messages.rbegin(); it != messages.rend(); ++it) {
      if (it->topic != topic) continue;
      json h = json::parse(it->payload, nullptr, false);
      if (!h.is_object()) continue;
      const int64_t accepted = h["outbox"].value("highest_accepted_seq", int64_t{-1});
      const int64_t delivered = h["outbox"].value("highest_delivered_seq", int64_t{-2});
      if (accepted >= at_least && accepted == delivered) return h;
    }
    return nullptr;
  }

  // The hub's record as a capture (every message, status included, payload as received),
  // without the event messages whose seq is `drop_seq` (0: none dropped).
  std::string write_capture(const std::string& name, const HubSubscriber::Messages& messages,
                            int64_t drop_seq = 0) const {
    const std::string path = dir_->path().string() + "/" + name;
    const std::string events_topic = agent_->config().topic_base() + "/events/";
    std::ofstream out(path);
    for (const auto& m : messages) {
      if (drop_seq > 0 && m.topic.rfind(events_topic, 0) == 0) {
        json p = json::parse(m.payload, nullptr, false);
        if (p.is_object() && p.value("seq", int64_t{0}) == drop_seq) continue;
      }
      out << json{{"topic", m.topic}, {"payload", m.payload}}.dump() << "\n";
    }
    out.close();
    EXPECT_TRUE(out.good()) << "cannot write " << path;
    return path;
  }

  // The --json report's one incarnation of this fixture's device, after checking the document
  // against its schema.
  json only_incarnation(const CommandResult& r) const {
    json j = json::parse(r.out, nullptr, false);
    EXPECT_TRUE(j.is_object()) << r.describe();
    if (!j.is_object()) return nullptr;
    const auto violations = schema_violations("reconcile.schema.json", j);
    EXPECT_TRUE(violations.empty()) << ::testing::PrintToString(violations) << "\n" << r.out;
    const auto& devices = j["devices"];
    EXPECT_EQ(devices.size(), 1u) << r.out;
    if (devices.size() != 1) return nullptr;
    EXPECT_EQ(devices[0]["device_id"], agent_->config().device_id);
    EXPECT_EQ(devices[0]["store_id"], agent_->config().store_id);
    EXPECT_EQ(devices[0]["incarnations"].size(), 1u) << r.out;
    return devices[0]["incarnations"][0];
  }
};

TEST_F(ReconcileTest, RunThroughRestartsAndACrashReconcilesAndADroppedEventIsNamedLost) {
  agent_->start();

  // A producer sends one event at a time for the whole run, reconnecting while the agent is
  // down and resending an unanswered event with its id, while the broker restarts, the agent is
  // SIGKILLed and restarted, and the broker restarts again.
  std::atomic<bool> stop{false};
  std::atomic<int64_t> highest_acked{0};
  ReplyCounter acked;
  std::thread producer([&] {
    int i = 0;
    while (!stop) {
      try {
        Producer p(agent_->socket_path());
        while (!stop) {
          json r = p.request(make_request("r-" + std::to_string(i), "pos.sale", {{"n", i}}), 10s);
          if (!r.value("ok", false)) continue;
          highest_acked = std::max(highest_acked.load(), r.value("seq", int64_t{0}));
          ++i;
          acked.add();
        }
      } catch (const std::exception&) {
        std::this_thread::sleep_for(50ms);  // the agent is down: try again shortly
      }
    }
  });
  auto keep_sending = [&](size_t more) { return acked.wait_for(acked.value() + more, 30s); };
  bool flowing = keep_sending(300);
  broker_->restart();
  flowing = flowing && keep_sending(300);
  agent_->kill9();
  agent_->start();
  flowing = flowing && keep_sending(300);
  broker_->restart();
  flowing = flowing && keep_sending(300);
  stop = true;
  producer.join();
  ASSERT_TRUE(flowing) << "the producer stalled at " << acked.value() << " events";
  const int64_t acked_seq = highest_acked;

  // The box's own word that the hub has everything: a health message with delivered ==
  // accepted, covering every acknowledged event.
  json health;
  ASSERT_TRUE(hub_->wait_for(
      [&](const auto& msgs) { return !(health = caught_up_health(msgs, acked_seq)).is_null(); },
      60s))
      << "no health message saying every accepted seq was delivered (acked through " << acked_seq
      << ")";
  const int64_t accepted = health["outbox"]["highest_accepted_seq"].get<int64_t>();
  const auto messages = hub_->messages();

  // The whole record: nothing lost, one range, the box's figures.
  const std::string capture = write_capture("hub.ndjson", messages);
  CommandResult ok = AgentProcess::run_cli({"reconcile", "--capture", capture, "--json"});
  EXPECT_EQ(ok.exit_code(), 0) << ok.describe();
  json inc = only_incarnation(ok);
  ASSERT_TRUE(inc.is_object());
  EXPECT_EQ(inc["state"], "complete") << inc.dump(2);
  EXPECT_EQ(inc["incarnation"], health["outbox"]["incarnation"]);
  EXPECT_EQ(inc["received"], json::array({json::array({1, accepted})})) << inc.dump(2);
  EXPECT_EQ(inc["lost_count"], 0);
  EXPECT_EQ(inc["pending_count"], 0);
  EXPECT_EQ(inc["lag"], 0);
  EXPECT_EQ(inc["health"]["highest_accepted_seq"], accepted);
  EXPECT_EQ(inc["health"]["highest_delivered_seq"], accepted);

  CommandResult human = AgentProcess::run_cli({"reconcile", "--capture", capture});
  EXPECT_EQ(human.exit_code(), 0) << human.describe();
  EXPECT_NE(human.out.find("complete"), std::string::npos) << human.out;
  EXPECT_NE(human.out.find("nothing lost"), std::string::npos) << human.out;

  // One event taken out of the record (every copy of it), well below what the box says the hub
  // acknowledged: that seq, and only it, is lost.
  const int64_t dropped = accepted / 2;
  const std::string short_capture = write_capture("hub-short.ndjson", messages, dropped);
  CommandResult lost = AgentProcess::run_cli({"reconcile", "--capture", short_capture, "--json"});
  EXPECT_EQ(lost.exit_code(), 1) << lost.describe();
  inc = only_incarnation(lost);
  ASSERT_TRUE(inc.is_object());
  EXPECT_EQ(inc["state"], "lost");
  EXPECT_EQ(inc["lost"], json::array({json::array({dropped, dropped})})) << inc.dump(2);
  EXPECT_EQ(inc["pending_count"], 0);
  EXPECT_EQ(inc["highest_contiguous_seq"], dropped - 1);

  CommandResult named = AgentProcess::run_cli({"reconcile", "--capture", short_capture});
  EXPECT_EQ(named.exit_code(), 1) << named.describe();
  EXPECT_NE(named.out.find(std::to_string(dropped) + " (1 seq the hub acknowledged"),
            std::string::npos)
      << named.out;
  EXPECT_NE(named.out.find("LOST"), std::string::npos) << named.out;
}

TEST_F(ReconcileTest, LiveRunReadsTheRetainedHealth) {
  agent_->start();
  Producer producer(agent_->socket_path());
  for (int i = 1; i <= 20; ++i) {
    auto r = producer.request(make_request("live-" + std::to_string(i), "pos.sale", {{"n", i}}));
    ASSERT_EQ(r.value("seq", 0), i) << r.dump();
  }
  // The retained health is the last one published: wait until it says all 20 were delivered.
  ASSERT_TRUE(
      hub_->wait_for([&](const auto& msgs) { return !caught_up_health(msgs, 20).is_null(); }, 30s));

  const std::string saved = dir_->path().string() + "/window.ndjson";
  CommandResult live = AgentProcess::run_cli(
      {"reconcile", "--hub", broker_->uri(), "--ca", tls_.ca_file, "--cert", tls_.client_cert_file,
       "--key", tls_.client_key_file, "--duration", "2", "--save", saved, "--json"});
  EXPECT_EQ(live.exit_code(), 0) << live.describe();
  json doc = json::parse(live.out, nullptr, false);
  ASSERT_TRUE(doc.is_object()) << live.describe();
  EXPECT_EQ(doc["source"]["kind"], "hub");
  EXPECT_EQ(doc["checked_from"], "first_seen");
  EXPECT_GE(doc["messages"]["health"].get<int64_t>(), 1);
  json inc = only_incarnation(live);
  ASSERT_TRUE(inc.is_object());
  EXPECT_EQ(inc["health"]["highest_accepted_seq"], 20) << inc.dump(2);
  EXPECT_EQ(inc["health"]["highest_delivered_seq"], 20) << inc.dump(2);
  EXPECT_EQ(inc["state"], "complete") << inc.dump(2);

  // What it heard was saved as a capture that reads back the same.
  std::ifstream in(saved);
  std::string line;
  bool health_saved = false;
  while (std::getline(in, line)) {
    json j = json::parse(line, nullptr, false);
    ASSERT_TRUE(j.is_object() && j["payload"].is_string()) << line;
    if (j.value("topic", "") == agent_->config().topic_base() + "/health") health_saved = true;
  }
  EXPECT_TRUE(health_saved) << "no health line in " << saved;
  CommandResult again =
      AgentProcess::run_cli({"reconcile", "--capture", saved, "--from-first-seen", "--json"});
  EXPECT_EQ(again.exit_code(), 0) << again.describe();

  // A second --save to the same file is refused: a capture may be the only record.
  CommandResult refused = AgentProcess::run_cli(
      {"reconcile", "--hub", broker_->uri(), "--ca", tls_.ca_file, "--cert", tls_.client_cert_file,
       "--key", tls_.client_key_file, "--duration", "1", "--save", saved});
  EXPECT_EQ(refused.exit_code(), 2) << refused.describe();
}

TEST_F(ReconcileTest, HandWrittenCaptureWithPayloadsAsJson) {
  // A recorder may store payloads as JSON rather than as strings; a line it mangled is counted
  // and named, not fatal; blank lines are skipped.
  const std::string inc = "3f0c9a52-6f1e-4c8b-9d27-5b1e0a7c4d13";
  const std::string base = "edgesync/v1/store-042/pos-09";
  std::string text;
  for (int seq : {1, 2, 4}) {
    text += json{{"topic", base + "/events/pos.sale"},
                 {"payload", {{"id", "x"}, {"seq", seq}, {"incarnation", inc}}}}
                .dump() +
            "\n";
  }
  text += "\n{\"topic\": \"" + base + "/events/pos.sale\", \"payl\n";
  text +=
      json{{"topic", base + "/health"},
           {"payload",
            {{"at", "2026-11-23T09:15:02.120Z"},
             {"outbox",
              {{"incarnation", inc}, {"highest_accepted_seq", 5}, {"highest_delivered_seq", 4}}}}}}
          .dump() +
      "\n";
  const std::string path = dir_->path().string() + "/hand.ndjson";
  std::ofstream(path) << text;
  CommandResult r = AgentProcess::run_cli({"reconcile", "--capture", path, "--json"});
  EXPECT_EQ(r.exit_code(), 1) << r.describe();
  json j = json::parse(r.out, nullptr, false);
  ASSERT_TRUE(j.is_object()) << r.describe();
  EXPECT_TRUE(schema_violations("reconcile.schema.json", j).empty()) << r.out;
  EXPECT_EQ(j["messages"]["unreadable"], 1);
  ASSERT_EQ(j["problems"].size(), 1u);
  EXPECT_NE(j["problems"][0].get<std::string>().find("line 5"), std::string::npos) << r.out;
  const json& i = j["devices"][0]["incarnations"][0];
  EXPECT_EQ(i["lost"], json::parse("[[3,3]]")) << i.dump(2);
  EXPECT_EQ(i["pending"], json::parse("[[5,5]]")) << i.dump(2);

  // The same from standard input.
  CommandResult piped = AgentProcess::run_cli({"reconcile", "--capture", "-"}, text);
  EXPECT_EQ(piped.exit_code(), 1) << piped.describe();
  EXPECT_NE(piped.out.find("3 (1 seq the hub acknowledged"), std::string::npos) << piped.out;
}

TEST_F(ReconcileTest, UsageAndConnectionErrorsExitTwo) {
  // Neither source, both sources, a live-only option on a capture.
  EXPECT_EQ(AgentProcess::run_cli({"reconcile"}).exit_code(), 2);
  EXPECT_EQ(AgentProcess::run_cli(
                {"reconcile", "--capture", "x", "--hub", broker_->uri(), "--ca", tls_.ca_file})
                .exit_code(),
            2);
  EXPECT_EQ(AgentProcess::run_cli({"reconcile", "--capture", "x", "--duration", "3"}).exit_code(),
            2);
  EXPECT_EQ(AgentProcess::run_cli({"reconcile", "--capture", dir_->path().string() + "/absent"})
                .exit_code(),
            2);
  // The broker gone: the connection fails, and that is not a clean report.
  broker_->stop();
  CommandResult down = AgentProcess::run_cli({"reconcile", "--hub", broker_->uri(), "--ca",
                                              tls_.ca_file, "--cert", tls_.client_cert_file,
                                              "--key", tls_.client_key_file, "--duration", "1"});
  EXPECT_EQ(down.exit_code(), 2) << down.describe();
  EXPECT_NE(down.err.find("cannot connect"), std::string::npos) << down.describe();
  broker_->start();  // TearDown stops it
}

}  // namespace
}  // namespace edgesync::test
