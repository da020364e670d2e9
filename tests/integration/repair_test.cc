// The technician's repairs (dead-letters retry|purge, outbox hold|release) with the real agent
// running (through its control socket) and stopped (on the outbox file), never beside another
// writer; and the health message the hub gets, checked against its schema.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "tests/support/hub_fixture.h"
#include "tests/support/schema_check.h"

namespace edgesync::test {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

class RepairTest : public HubFixture {
 protected:
  // The hub refuses messages over 4,000 bytes (PUBACK 0x95): an 8 KB event is dead-lettered.
  BrokerOptions broker_options() const override {
    BrokerOptions o;
    o.extra_config = "message_size_limit 4000";
    return o;
  }

  CommandResult cli(std::vector<std::string> args) {
    args.insert(args.end(), {"--config", agent_->config_path()});
    return AgentProcess::run_cli(args, "", 30s);
  }

  json cli_json(std::vector<std::string> args, int want_exit = 0) {
    args.push_back("--json");
    CommandResult r = cli(args);
    EXPECT_EQ(r.exit_code(), want_exit) << r.describe();
    json j = json::parse(r.out, nullptr, false);
    EXPECT_TRUE(j.is_object()) << r.describe();
    return j;
  }

  // Waits until the hub has the event `id` under `seq`.
  bool hub_gets(const std::string& id, int64_t seq, std::chrono::milliseconds timeout) {
    const std::string base = agent_->config().topic_base();
    return hub_->wait_for(
        [&](const HubSubscriber::Messages& msgs) {
          for (const auto& e : hub_events(msgs, base)) {
            if (e.id == id && e.seq == seq) return true;
          }
          return false;
        },
        timeout);
  }

  // Sends an event the hub refuses, and two it takes around it; waits until the refused one
  // is a dead letter that the hub has been told about. Returns its seq.
  int64_t make_dead_letter(Producer& producer) {
    auto big = producer.request(
        make_request("too-big", "inventory.adjusted", json{{"blob", std::string(8000, 'x')}}), 20s);
    auto after = producer.request(make_request("after", "inventory.adjusted", json{{"n", 1}}), 20s);
    EXPECT_TRUE(big.value("ok", false)) << big.dump();
    const int64_t seq = big.value("seq", 0);
    const int64_t last = after.value("seq", 0);
    for (int i = 0; i < 200; ++i) {
      json st = status_json();
      if (st["outbox"].value("last_delivered_seq", 0) >= last &&
          st["outbox"].value("dead_letters", 0) == 1) {
        return seq;
      }
      std::this_thread::sleep_for(100ms);
    }
    ADD_FAILURE() << "no dead letter for seq " << seq << ": " << status_json().dump(2);
    return seq;
  }

  void let_the_hub_take_big_messages() {
    broker_->set_options(BrokerOptions{});
    broker_->restart();
  }
};

TEST_F(RepairTest, RetryThroughTheRunningAgentDeliversTheSameEventUnderTheNextSeq) {
  agent_->start();
  Producer producer(agent_->socket_path());
  const int64_t dead_seq = make_dead_letter(producer);
  ASSERT_EQ(dead_seq, 1);

  // Retrying before the hub is fixed would only be refused again: the technician fixes it.
  let_the_hub_take_big_messages();
  json r = cli_json({"dead-letters", "retry", std::to_string(dead_seq)});
  EXPECT_EQ(r.value("via", ""), "agent") << r.dump();
  ASSERT_EQ(r["retried"].size(), 1u) << r.dump();
  EXPECT_EQ(r["retried"][0]["seq"], dead_seq);
  EXPECT_EQ(r["retried"][0]["new_seq"], 3) << "the next seq after the two events";
  EXPECT_TRUE(r["skipped"].empty()) << r.dump();

  ASSERT_TRUE(hub_gets("too-big", 3, 30s))
      << "the hub never got the retried event";
  json dead = json::parse(cli({"dead-letters", "--json"}).out, nullptr, false);
  EXPECT_TRUE(dead.is_array() && dead.empty()) << dead.dump();

  // Nothing left to retry: said, and the exit status says it too.
  CommandResult again = cli({"dead-letters", "retry", std::to_string(dead_seq)});
  EXPECT_EQ(again.exit_code(), 1) << again.describe();
  EXPECT_NE(again.out.find("no such dead letter"), std::string::npos) << again.describe();
}

TEST_F(RepairTest, HoldKeepsEventsBackAcrossARestartAndReleaseSendsThem) {
  agent_->start();
  json held = cli_json({"outbox", "hold"});
  EXPECT_EQ(held.value("via", ""), "agent") << held.dump();
  ASSERT_TRUE(held["held_since"].is_string()) << held.dump();

  Producer producer(agent_->socket_path());
  auto r = producer.request(make_request("held-1", "pos.sale", json{{"n", 1}}), 20s);
  ASSERT_TRUE(r.value("ok", false)) << "a hold never refuses producers: " << r.dump();
  // Absence can only be shown by waiting: the agent publishes within milliseconds when free.
  EXPECT_FALSE(hub_gets("held-1", 1, 1500ms))
      << "delivered while held";

  CommandResult st = cli({"status"});
  EXPECT_EQ(st.exit_code(), 1) << "DEGRADED while held: " << st.describe();
  EXPECT_NE(st.out.find("DEGRADED: delivery held"), std::string::npos) << st.describe();

  // The hold is in the outbox: a restart keeps it.
  ASSERT_EQ(agent_->terminate(20s), 0);
  agent_->start();
  EXPECT_FALSE(hub_gets("held-1", 1, 1500ms))
      << "a restart lost the hold";

  json released = cli_json({"outbox", "release"});
  EXPECT_TRUE(released["held_since"].is_null()) << released.dump();
  ASSERT_TRUE(hub_gets("held-1", 1, 20s))
      << "release did not resume delivery";
}

TEST_F(RepairTest, WithTheAgentStoppedRepairsChangeTheOutboxFileAndTheAgentObeysThem) {
  agent_->start();
  Producer producer(agent_->socket_path());
  const int64_t dead_seq = make_dead_letter(producer);
  ASSERT_EQ(agent_->terminate(20s), 0);

  json held = cli_json({"outbox", "hold"});
  EXPECT_EQ(held.value("via", ""), "database") << held.dump();
  json retried = cli_json({"dead-letters", "retry", "--all"});
  EXPECT_EQ(retried.value("via", ""), "database") << retried.dump();
  ASSERT_EQ(retried["retried"].size(), 1u) << retried.dump();
  EXPECT_EQ(retried["retried"][0]["seq"], dead_seq);

  let_the_hub_take_big_messages();
  hub_->clear();
  agent_->start();
  json st = status_json();
  EXPECT_TRUE(st["outbox"].contains("held_since") && st["outbox"]["held_since"].is_string())
      << st.dump(2);
  EXPECT_FALSE(hub_gets("too-big", 3, 1500ms));
  cli_json({"outbox", "release"});
  ASSERT_TRUE(hub_gets("too-big", 3, 30s));
}

TEST_F(RepairTest, PurgeRemovesOnlyDeadLettersOlderThanAsked) {
  agent_->start();
  Producer producer(agent_->socket_path());
  make_dead_letter(producer);
  json none = cli_json({"dead-letters", "purge", "--older-than", "1h"});
  EXPECT_EQ(none.value("purged", -1), 0) << none.dump();
  std::this_thread::sleep_for(1100ms);  // older than 1 s
  json one = cli_json({"dead-letters", "purge", "--older-than", "1s"});
  EXPECT_EQ(one.value("purged", -1), 1) << one.dump();
  EXPECT_EQ(status_json()["outbox"].value("dead_letters", -1), 0);
  CommandResult bad = cli({"dead-letters", "purge", "--older-than", "soon"});
  EXPECT_EQ(bad.exit_code(), 2) << bad.describe();
}

TEST_F(RepairTest, AnAgentThatDoesNotAnswerIsNeverWrittenBeside) {
  agent_->start();
  Producer producer(agent_->socket_path());
  make_dead_letter(producer);
  // The control socket gone (deleted by hand, say) while the agent runs and writes the outbox.
  std::filesystem::remove(agent_->config().socket_path.substr(
                              0, agent_->config().socket_path.rfind('/')) +
                          "/control.sock");
  CommandResult r = cli({"dead-letters", "retry", "--all"});
  EXPECT_EQ(r.exit_code(), 1) << r.describe();
  EXPECT_NE(r.err.find("nothing was changed"), std::string::npos) << r.describe();
  EXPECT_EQ(status_json()["outbox"].value("dead_letters", -1), 1) << "the dead letter stayed";
}

TEST_F(RepairTest, ControlSocketIsTheAgentsGroupOnlyAndRefusesBadRequests) {
  agent_->start();
  const std::string path =
      agent_->config().socket_path.substr(0, agent_->config().socket_path.rfind('/')) +
      "/control.sock";
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0660u);
  EXPECT_EQ(st.st_gid, ::getegid());

  Producer control(path);
  json bad = control.request("{not json", 10s);
  EXPECT_EQ(bad.value("error", ""), "bad_request") << bad.dump();
  json unknown = control.request(R"({"v":1,"cmd":"format_disk"})", 10s);
  EXPECT_EQ(unknown.value("error", ""), "unknown_command") << unknown.dump();
  json future = control.request(R"({"v":2,"cmd":"status"})", 10s);
  EXPECT_EQ(future.value("error", ""), "bad_request") << future.dump();
  json no_seqs = control.request(R"({"v":1,"cmd":"retry_dead_letters","seqs":[]})", 10s);
  EXPECT_EQ(no_seqs.value("error", ""), "bad_request") << no_seqs.dump();
  // A member of the wrong type made value() throw, and nothing caught it: the agent ended.
  for (const char* wrong : {R"({"v":1,"cmd":1})", R"({"v":1,"cmd":"log_level","level":[]})",
                            R"({"v":1,"cmd":"retry_dead_letters","all":"yes"})"}) {
    json r = control.request(wrong, 10s);
    EXPECT_EQ(r.value("error", ""), "bad_request") << wrong << " -> " << r.dump();
  }
  // "v" nested 30,000 deep was echoed with a recursive dump(): refused before the parse now.
  json deep = control.request(
      R"({"v":)" + std::string(30000, '[') + std::string(30000, ']') + "}", 10s);
  EXPECT_EQ(deep.value("error", ""), "bad_request") << deep.dump().substr(0, 200);
  EXPECT_NE(deep.value("message", "").find("nests deeper than 16 levels"), std::string::npos)
      << deep.dump().substr(0, 200);
  // The connection stays usable after refusals.
  json status = control.request(R"({"v":1,"cmd":"status"})", 10s);
  EXPECT_EQ(status.value("ok", false), true) << status.dump();
  EXPECT_EQ(status["status"]["format"], 1) << status.dump();

  // The log level, changed while the agent runs, and refused without one.
  CommandResult level = cli({"log-level", "debug"});
  EXPECT_EQ(level.exit_code(), 0) << level.describe();
  EXPECT_NE(agent_->log().find("log level info -> debug"), std::string::npos) << agent_->log();
  EXPECT_EQ(cli({"log-level", "loud"}).exit_code(), 2);
  ASSERT_EQ(agent_->terminate(20s), 0);
  CommandResult stopped = cli({"log-level", "info"});
  EXPECT_EQ(stopped.exit_code(), 1) << stopped.describe();
  EXPECT_NE(stopped.err.find("no running agent"), std::string::npos) << stopped.describe();
}

TEST_F(RepairTest, HealthMessageIsRetainedFollowsTheSchemaAndCountsWhatHappened) {
  agent_->config().extra["health"] = {{"interval_s", 5}};
  agent_->start();
  Producer producer(agent_->socket_path());
  make_dead_letter(producer);
  producer.request(make_request("after", "inventory.adjusted", json{{"n", 2}}), 20s);  // duplicate
  producer.request("{not json", 20s);
  const std::string topic = agent_->config().topic_base() + "/health";
  // The verdict names the dead letter; wait for a health message that has seen all of it.
  json health;
  ASSERT_TRUE(hub_->wait_for(
      [&](const auto& msgs) {
        for (auto it = msgs.rbegin(); it != msgs.rend(); ++it) {
          if (it->topic != topic) continue;
          health = json::parse(it->payload, nullptr, false);
          return health.is_object() && health["since_start"].value("dead_lettered", 0) == 1;
        }
        return false;
      },
      30s))
      << "no health message with the dead letter";
  // Retained: a hub service that subscribes later still learns this box's health at once.
  auto late = make_subscriber(topic, /*persistent=*/false);
  ASSERT_TRUE(late->wait_for_count(1, 10s)) << "no retained message on " << topic;
  EXPECT_TRUE(late->messages().front().retained);
  const auto violations = schema_violations("health.schema.json", health);
  EXPECT_TRUE(violations.empty()) << ::testing::PrintToString(violations) << "\n" << health.dump(2);
  EXPECT_EQ(health["outbox"]["highest_accepted_seq"], 2) << health.dump(2);
  EXPECT_EQ(health["verdict"]["level"], "DEGRADED") << health.dump(2);

  // The same figures, live, through the control socket (what edgesync status shows).
  json st = status_json();
  const auto status_violations = schema_violations("status.schema.json", st);
  EXPECT_TRUE(status_violations.empty()) << ::testing::PrintToString(status_violations);
  EXPECT_TRUE(schema_violations("health.schema.json", st["live"]).empty());
  ASSERT_TRUE(st.contains("live")) << st.dump(2);
  EXPECT_EQ(st["live"]["since_start"]["refused"]["bad_json"], 1) << st.dump(2);
  EXPECT_EQ(st["live"]["since_start"]["duplicates"], 1) << st.dump(2);
  EXPECT_EQ(st["live"]["last_hour"]["accepted"], 2) << st.dump(2);
}

// A repair with the agent stopped never quarantines the outbox: a damaged file is the agent's to
// move aside at its start. It opened the outbox fully, which moved the file and started a fresh
// one as a side effect of "outbox hold".
TEST_F(RepairTest, ARepairOnADamagedOutboxChangesNothingAndSaysStartTheAgent) {
  agent_->start();
  ASSERT_EQ(agent_->terminate(20s), 0);
  const std::string db = agent_->config().storage_path;
  const std::string junk(64 * 1024, '\x5a');
  {
    FILE* f = std::fopen(db.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    std::fwrite(junk.data(), 1, junk.size(), f);
    std::fclose(f);
  }
  CommandResult r = cli({"outbox", "hold"});
  EXPECT_NE(r.exit_code(), 0) << r.describe();
  EXPECT_NE(r.err.find("Start the agent"), std::string::npos) << r.describe();
  std::ifstream in(db, std::ios::binary);
  const std::string after((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(after, junk) << "the file was changed";
  for (const auto& e : std::filesystem::directory_iterator(std::filesystem::path(db).parent_path())) {
    EXPECT_EQ(e.path().filename().string().find("quarantined"), std::string::npos) << e.path();
  }
}

// The health verdict and edgesync status agree after a restart: the day's dead letters from the
// run before still count (health kept them in memory only, and said OK where status said
// DEGRADED).
TEST_F(RepairTest, AfterARestartHealthStillCountsTheDaysDeadLetters) {
  agent_->start();
  {
    Producer producer(agent_->socket_path());
    make_dead_letter(producer);
  }
  ASSERT_EQ(agent_->terminate(20s), 0);
  agent_->start();
  json st = status_json();
  ASSERT_TRUE(st["live"].is_object()) << st.dump(2);
  EXPECT_EQ(st["live"]["verdict"]["level"], "DEGRADED") << st.dump(2);
  EXPECT_EQ(st["verdict"]["level"], "DEGRADED") << st.dump(2);
  bool named = false;
  for (const auto& r : st["live"]["verdict"]["reasons"]) {
    named |= r.get<std::string>().find("1 dead letter in the last 24 h") != std::string::npos;
  }
  EXPECT_TRUE(named) << st["live"]["verdict"].dump(2);
}

// What a technician sees with a dead letter on the box: DEGRADED, the count and where to look.
TEST_F(RepairTest, StatusNamesADeadLetterInItsVerdictAndItsFigures) {
  agent_->start();
  Producer producer(agent_->socket_path());
  make_dead_letter(producer);
  CommandResult st = cli({"status"});
  EXPECT_EQ(st.exit_code(), 1) << st.describe();
  const std::string first = st.out.substr(0, st.out.find('\n'));
  EXPECT_EQ(first.rfind("DEGRADED: ", 0), 0u) << st.out;
  EXPECT_NE(first.find("1 dead letter in the last 24 h (edgesync dead-letters)"), std::string::npos)
      << st.out;
  json j = status_json();
  EXPECT_EQ(j["outbox"]["dead_letters"], 1) << j.dump(2);
  const auto v = schema_violations("status.schema.json", j);
  EXPECT_TRUE(v.empty()) << ::testing::PrintToString(v) << "\n" << j.dump(2);
}

// `edgesync status`: the verdict first, its exit status, plain text when piped, the JSON against
// its schema, in the states a technician meets.
class StatusTest : public HubFixture {};

TEST_F(StatusTest, AStoppedAgentWithABacklogIsDownAndSaysWhatIsWaiting) {
  broker_->stop();  // nothing delivered: a backlog
  agent_->start();
  Producer producer(agent_->socket_path());
  for (int i = 1; i <= 3; ++i) {
    auto r = producer.request(make_request("sale-" + std::to_string(i), "pos.sale", json{{"n", i}}), 20s);
    ASSERT_TRUE(r.value("ok", false)) << r.dump();
  }
  ASSERT_EQ(agent_->terminate(20s), 0);
  CommandResult st = AgentProcess::run_cli({"status", "--config", agent_->config_path()}, "", 20s);
  EXPECT_EQ(st.exit_code(), 2) << st.describe();
  const std::string first = st.out.substr(0, st.out.find('\n'));
  EXPECT_EQ(first.rfind("DOWN: agent not running, 3 events waiting, oldest ", 0), 0u) << st.out;
  EXPECT_EQ(st.out.find('\033'), std::string::npos) << "no colour codes when piped";
  EXPECT_NE(st.out.find("free disk"), std::string::npos) << st.out;

  json j = status_json();
  EXPECT_EQ(j["verdict"]["level"], "DOWN");
  EXPECT_TRUE(j["live"].is_null()) << "no agent to ask";
  const auto v = schema_violations("status.schema.json", j);
  EXPECT_TRUE(v.empty()) << ::testing::PrintToString(v) << "\n" << j.dump(2);
}

// The hub down while the agent runs: past the reconnect grace it is DEGRADED with what waits,
// and the hub's state, last error and next retry come from the agent itself.
TEST_F(StatusTest, HubDownWhileTheAgentRunsIsDegradedWithTheBacklog) {
  broker_->stop();
  agent_->start();
  Producer producer(agent_->socket_path());
  for (int i = 1; i <= 3; ++i) {
    auto r = producer.request(make_request("sale-" + std::to_string(i), "pos.sale", json{{"n", i}}), 20s);
    ASSERT_TRUE(r.value("ok", false)) << r.dump();
  }
  std::this_thread::sleep_for(32s);  // agent/verdict.h: kHubGraceMs, 30 s, is a reconnect
  CommandResult st = AgentProcess::run_cli({"status", "--config", agent_->config_path()}, "", 20s);
  EXPECT_EQ(st.exit_code(), 1) << st.describe();
  const std::string first = st.out.substr(0, st.out.find('\n'));
  EXPECT_EQ(first.rfind("DEGRADED: hub unreachable for ", 0), 0u) << st.out;
  EXPECT_NE(first.find("3 events waiting, oldest "), std::string::npos) << st.out;
  json j = status_json();
  EXPECT_EQ(j["verdict"]["level"], "DEGRADED");
  EXPECT_NE(j["live"]["hub"]["state"], "connected") << j.dump(2);
  EXPECT_TRUE(j["live"]["hub"]["last_error"].is_string()) << j.dump(2);
  EXPECT_EQ(j["outbox"]["pending"], 3) << j.dump(2);
  const auto v = schema_violations("status.schema.json", j);
  EXPECT_TRUE(v.empty()) << ::testing::PrintToString(v) << "\n" << j.dump(2);
}

TEST_F(StatusTest, ARunningAgentShowsLiveFiguresAndTheCertificateWarning) {
  agent_->start();
  Producer producer(agent_->socket_path());
  auto r = producer.request(make_request("sale-1", "pos.sale", json{{"n", 1}}), 20s);
  ASSERT_TRUE(r.value("ok", false)) << r.dump();
  ASSERT_TRUE(hub_->wait_for_distinct_seqs(1, 20s));
  // The test CA's client certificate is made to expire within days: that alone is DEGRADED.
  CommandResult st = AgentProcess::run_cli({"status", "--config", agent_->config_path()}, "", 20s);
  EXPECT_EQ(st.exit_code(), 1) << st.describe();
  EXPECT_EQ(st.out.rfind("DEGRADED: client certificate expires in ", 0), 0u) << st.out;
  EXPECT_NE(st.out.find("last minute"), std::string::npos) << st.out;
  EXPECT_NE(st.out.find("1 accepted, 1 delivered"), std::string::npos) << st.out;
  json j = status_json();
  const auto v = schema_violations("status.schema.json", j);
  EXPECT_TRUE(v.empty()) << ::testing::PrintToString(v) << "\n" << j.dump(2);
  EXPECT_EQ(j["live"]["hub"]["state"], "connected") << j.dump(2);
}

// The health message's totals add up every run: the central team sees how much a box has done,
// not only since its last restart.
TEST_F(StatusTest, HealthTotalsCarryOverACleanRestart) {
  agent_->config().extra["health"] = {{"interval_s", 5}};
  const std::string topic = agent_->config().topic_base() + "/health";
  auto latest_health = [&](auto accept) {
    json found;
    EXPECT_TRUE(hub_->wait_for(
        [&](const auto& msgs) {
          for (auto it = msgs.rbegin(); it != msgs.rend(); ++it) {
            if (it->topic != topic) continue;
            json h = json::parse(it->payload, nullptr, false);
            if (h.is_object() && accept(h)) {
              found = h;
              return true;
            }
            return false;
          }
          return false;
        },
        30s));
    return found;
  };
  agent_->start();
  {
    Producer producer(agent_->socket_path());
    for (int i = 1; i <= 3; ++i) {
      ASSERT_TRUE(producer.request(make_request("a-" + std::to_string(i), "pos.sale", json{{"n", i}}), 20s)
                      .value("ok", false));
    }
    producer.request("{not json", 20s);
  }
  json first = latest_health([](const json& h) { return h["since_start"].value("accepted", 0) == 3; });
  EXPECT_EQ(first["totals"]["accepted"], 3) << first.dump(2);
  ASSERT_EQ(agent_->terminate(20s), 0);
  agent_->start();
  {
    Producer producer(agent_->socket_path());
    ASSERT_TRUE(producer.request(make_request("b-1", "pos.sale", json{{"n", 1}}), 20s).value("ok", false));
  }
  json second = latest_health([](const json& h) { return h["since_start"].value("accepted", 0) == 1; });
  EXPECT_EQ(second["totals"]["accepted"], 4) << second.dump(2);
  EXPECT_EQ(second["totals"]["refused"]["bad_json"], 1) << second.dump(2);
  EXPECT_EQ(second["since_start"]["refused"]["bad_json"], 0) << second.dump(2);
  const auto v = schema_violations("health.schema.json", second);
  EXPECT_TRUE(v.empty()) << ::testing::PrintToString(v);
}

TEST_F(StatusTest, ACorruptOutboxIsDownWithTheReason) {
  agent_->start();
  ASSERT_EQ(agent_->terminate(20s), 0);
  const std::string db = agent_->config().storage_path;
  {
    std::string junk(64 * 1024, '\x5a');
    FILE* f = std::fopen(db.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    std::fwrite(junk.data(), 1, junk.size(), f);
    std::fclose(f);
  }
  CommandResult st = AgentProcess::run_cli({"status", "--config", agent_->config_path()}, "", 20s);
  EXPECT_EQ(st.exit_code(), 2) << st.describe();
  EXPECT_NE(st.out.find("outbox unreadable"), std::string::npos) << st.out;
}

}  // namespace
}  // namespace edgesync::test
