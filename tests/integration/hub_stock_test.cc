// edgesync-hub end to end: a real agent and a real mosquitto (mutual TLS) feeding the real hub
// binary on a real PostgreSQL (fsync on). Stock follows the rules of docs/HUB.md; a message
// received twice changes nothing; a count is a level as of its time, whatever order the events
// arrive in; gaps and dead-letter notices; a message the hub cannot read is kept apart and does
// not hold the next one back; a hub killed with SIGKILL in the middle of a stream, or inside a
// commit, loses nothing and applies nothing twice (stock checked against an independent sum in
// SQL); events the box counts delivered that never reached the hub are asked for and sent again,
// and what the box no longer has is shown as gone; two instances split the stream by shared
// subscription or by store.
#include <gtest/gtest.h>

#include <regex>
#include <thread>

#include "tests/harness/net_util.h"
#include "tests/harness/postgres_server.h"
#include "tests/support/events.h"
#include "tests/support/hub_fixture.h"
#include "tests/support/hub_process.h"
#include "tests/support/producer.h"

namespace edgesync::test {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

json sale(const std::string& receipt, const std::string& sku, int qty) {
  return sale_data(receipt, sku, qty);
}

json count(const std::string& sku, int on_hand) { return count_data(sku, on_hand); }

json give_back(const std::string& sku, int qty, bool restock) {
  return {{"return_id", "r-" + sku},
          {"till_id", "till-1"},
          {"operator_id", "op-7"},
          {"currency", "EUR"},
          {"lines", json::array({{{"line_no", 1},
                                  {"sku", sku},
                                  {"qty", qty},
                                  {"unit_price_minor", 250},
                                  {"line_total_minor", 250 * qty},
                                  {"reason", "unwanted"},
                                  {"restock", restock}}})},
          {"refund_total_minor", 250 * qty}};
}

std::string request(const std::string& type, const json& data, const std::string& occurred_at = "") {
  json r = {{"type", type}, {"data", data}};
  if (!occurred_at.empty()) r["occurred_at"] = occurred_at;
  return r.dump();
}

class HubStockTest : public HubFixture {
 protected:
  void SetUp() override {
    HubFixture::SetUp();
    agent_->config().extra["ingest"]["contracts_dir"] = source_dir() + "/config/contracts/events";
    pg_ = std::make_unique<PostgresServer>(make_subdir("pg"));
    pg_->start();
    pg_->create_database("hub");
    hub_process_ = std::make_unique<HubProcess>(make_subdir("hub"), hub_config());
  }

  void TearDown() override {
    if (HasFailure() && hub_process_) {
      std::cerr << "\n===== hub log (tail) =====\n" << hub_process_->log() << "\n";
    }
    hub_process_.reset();
    pg_.reset();
    HubFixture::TearDown();
  }

  std::string make_subdir(const std::string& name) {
    std::string d = (dir_->path() / name).string();
    std::filesystem::create_directories(d);
    return d;
  }

  static std::string source_dir() {
    const char* s = std::getenv("EDGESYNC_SOURCE_DIR");
    return s ? s : ".";
  }

  json hub_config() {
    return {{"broker",
             {{"uris", json::array({broker_->uri()})},
              {"client_id", "hub-test"},
              {"ca_file", tls_.ca_file},
              {"cert_file", tls_.client_cert_file},
              {"key_file", tls_.client_key_file}}},
            {"topic_prefix", "edgesync/v1"},
            {"database", pg_->conninfo("hub")}};
  }

  std::string sql(const std::string& query) { return pg_->psql(query, "hub"); }

  // Waits until the hub has committed `n` distinct events of the agent's device.
  bool wait_for_events(int n, std::chrono::milliseconds timeout = 60s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (std::stoi(sql("SELECT count(*) FROM hub_events")) >= n) return true;
      std::this_thread::sleep_for(100ms);
    }
    return false;
  }

  long on_hand(const std::string& sku) {
    json rows = hub_process_->run_json({"stock", "--store", "store-042", "--sku", sku});
    if (!rows.is_array() || rows.empty()) return -999999;
    return rows[0]["on_hand"].get<long>();
  }

  // Publishes a hand-made message on the agent's topics, as a device would.
  void publish_event(int64_t seq, const std::string& type, const json& data,
                     const std::string& occurred_at, const std::string& incarnation = "inc-a",
                     const std::string& store = "store-042", const std::string& device = "pos-99") {
    json m = {{"id", "hand-" + device + "-" + std::to_string(seq)},
              {"seq", seq},
              {"incarnation", incarnation},
              {"type", type},
              {"v", 1},
              {"device_id", device},
              {"store_id", store},
              {"occurred_at", occurred_at},
              {"received_at", occurred_at},
              {"data", data}};
    hub_->publish("edgesync/v1/" + store + "/" + device + "/events/" + type, m.dump(), false);
  }

  // A second instance beside hub_process_, with its own client id and `subscription`.
  std::unique_ptr<HubProcess> another_hub(const std::string& client_id, const json& subscription) {
    json c = hub_config();
    c["broker"]["client_id"] = client_id;
    c["subscription"] = subscription;
    return std::make_unique<HubProcess>(make_subdir(client_id), c);
  }

  // What an instance's closing line says it took from the broker and committed as new.
  struct Took {
    int messages = -1;
    int new_events = -1;
  };
  // Stops `hub` and reads its closing line.
  static Took stop_and_read(HubProcess& hub) {
    hub.terminate();
    std::smatch m;
    std::string log = hub.log();
    static const std::regex kLine(R"(stopped after (\d+) message\(s\).*: (\d+) new event\(s\))");
    if (!std::regex_search(log, m, kLine)) return {};
    return {std::stoi(m[1]), std::stoi(m[2])};
  }

  long on_hand_in(const std::string& store, const std::string& sku) {
    json rows = hub_process_->run_json({"stock", "--store", store, "--sku", sku});
    if (!rows.is_array() || rows.empty()) return -999999;
    return rows[0]["on_hand"].get<long>();
  }

  std::unique_ptr<PostgresServer> pg_;
  std::unique_ptr<HubProcess> hub_process_;
};

TEST_F(HubStockTest, SalesReturnsAndCountsFromATillBecomeStockLevels) {
  agent_->start();
  hub_process_->start();
  Producer till(agent_->socket_path());
  for (const std::string& line :
       {request("inventory.counted", count("SKU-A", 20), "2026-12-01T09:00:00Z"),
        request("pos.sale.completed", sale("R1", "SKU-A", 3), "2026-12-01T09:05:00Z"),
        request("pos.sale.completed", sale("R2", "SKU-B", 2), "2026-12-01T09:06:00Z"),
        request("pos.return.completed", give_back("SKU-A", 1, true), "2026-12-01T09:07:00Z"),
        request("pos.return.completed", give_back("SKU-B", 5, false), "2026-12-01T09:08:00Z")}) {
    json reply = till.request(line);
    ASSERT_TRUE(reply["ok"].get<bool>()) << reply.dump();
  }
  ASSERT_TRUE(wait_for_events(5)) << sql("SELECT count(*) FROM hub_events");
  EXPECT_EQ(on_hand("SKU-A"), 20 - 3 + 1);
  EXPECT_EQ(on_hand("SKU-B"), -2) << "a return written off (restock false) moves no stock";

  json lag = hub_process_->run_json({"lag"});
  ASSERT_TRUE(lag.is_array()) << lag;
  ASSERT_EQ(lag.size(), 1u) << lag.dump();
  EXPECT_EQ(lag[0]["device_id"], "pos-01");
  EXPECT_EQ(lag[0]["last_seq"], 5);
  CommandResult gaps = hub_process_->run({"gaps"});
  EXPECT_TRUE(gaps.exited_ok()) << gaps.describe();
  CommandResult table = hub_process_->run({"stock", "--store", "store-042"});
  EXPECT_NE(table.out.find("SKU-A"), std::string::npos) << table.out;
}

TEST_F(HubStockTest, ARepeatedMessageAnOutOfOrderCountGapsAndABadMessage) {
  hub_process_->start();
  publish_event(1, "inventory.counted", count("SKU-C", 50), "2026-12-01T10:00:00Z");
  publish_event(2, "pos.sale.completed", sale("R9", "SKU-C", 4), "2026-12-01T10:01:00Z");
  publish_event(2, "pos.sale.completed", sale("R9", "SKU-C", 4), "2026-12-01T10:01:00Z");
  // Sold before the count but arriving after it: the count already saw it.
  publish_event(3, "pos.sale.completed", sale("R8", "SKU-C", 7), "2026-12-01T09:59:00Z");
  // A message the hub cannot read, then one it can: the second is not held back.
  hub_->publish("edgesync/v1/store-042/pos-99/events/pos.sale.completed", "{not json", false);
  // A field of an unexpected type (nlohmann would throw reading it) is kept apart the same way.
  hub_->publish("edgesync/v1/store-042/pos-99/status", R"({"online":"yes"})", false);
  // Forged messages nested 1,000,000 deep: copying "data" or dumping a status recursed once
  // per level and overflowed the hub's stack (no exception: the hub ended). Kept apart the same
  // way now. The event is whole but for its depth, so it would reach the copy of "data".
  const std::string deep = std::string(1000000, '[') + std::string(1000000, ']');
  json forged = {{"id", "deep-4"}, {"seq", 4}, {"incarnation", "inc-a"},
                 {"type", "pos.sale.completed"}, {"v", 1}, {"device_id", "pos-99"},
                 {"store_id", "store-042"}, {"occurred_at", "2026-12-01T10:01:30Z"},
                 {"received_at", "2026-12-01T10:01:30Z"}, {"data", json::object()}};
  std::string forged_text = forged.dump();
  forged_text.replace(forged_text.find("\"data\":{}"), 9, "\"data\":{\"x\":" + deep + "}");
  hub_->publish("edgesync/v1/store-042/pos-99/events/pos.sale.completed", forged_text, false);
  hub_->publish("edgesync/v1/store-042/pos-99/status", R"({"online":true,"x":)" + deep + "}",
                false);
  publish_event(5, "pos.sale.completed", sale("R10", "SKU-C", 1), "2026-12-01T10:02:00Z");
  ASSERT_TRUE(wait_for_events(4));
  EXPECT_EQ(on_hand("SKU-C"), 50 - 4 - 1);
  EXPECT_EQ(sql("SELECT count(*) FROM hub_rejected"), "4");
  EXPECT_EQ(sql("SELECT count(*) FROM hub_movements WHERE sku = 'SKU-C'"), "3");

  CommandResult gaps = hub_process_->run({"gaps", "--json"});
  EXPECT_EQ(gaps.exit_code(), 1) << gaps.describe();
  json g = json::parse(gaps.out, nullptr, false);
  ASSERT_TRUE(g.is_array() && g.size() == 1) << gaps.out;
  EXPECT_EQ(g[0]["from"], 4);
  EXPECT_EQ(g[0]["to"], 4);

  // Seq 4 was dead-lettered on the box: its notice fills the gap.
  json notice = {{"id", "hand-4"},       {"seq", 4},
                 {"incarnation", "inc-a"}, {"type", "pos.sale.completed"},
                 {"v", 1},               {"device_id", "pos-99"},
                 {"store_id", "store-042"}, {"reason", "payload too large for the broker"},
                 {"failed_at", "2026-12-01T10:03:00Z"}};
  hub_->publish("edgesync/v1/store-042/pos-99/deadletter", notice.dump(), false);
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (sql("SELECT count(*) FROM hub_dead_letters") != "1" &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(100ms);
  }
  CommandResult after = hub_process_->run({"gaps"});
  EXPECT_TRUE(after.exited_ok()) << after.describe();

  // A later count re-bases on the movements after it, the late sale of 09:59 not among them.
  publish_event(6, "inventory.counted", count("SKU-C", 30), "2026-12-01T10:01:30Z");
  ASSERT_TRUE(wait_for_events(5));
  EXPECT_EQ(on_hand("SKU-C"), 30 - 1);
}

// The hub holds a message it cannot commit (PostgreSQL is down) and is killed: the broker must
// still have it, because the hub acknowledges a message only once its effect is committed.
TEST_F(HubStockTest, AHubKilledInsideACommitLosesNothing) {
  hub_process_->start();
  pg_->stop();
  publish_event(1, "pos.sale.completed", sale("C1", "SKU-Z", 3), "2026-12-01T11:00:00Z");
  // The hub has the message and is retrying its commit.
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (hub_process_->log().find("not committed") == std::string::npos &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_NE(hub_process_->log().find("not committed"), std::string::npos) << hub_process_->log();
  hub_process_->kill9();
  pg_->start();
  hub_process_->start();
  ASSERT_TRUE(wait_for_events(1)) << "the message the killed hub held is lost\n"
                                  << hub_process_->log();
  EXPECT_EQ(on_hand("SKU-Z"), -3);
}

TEST_F(HubStockTest, AHubKilledMidStreamLosesNothingAndAppliesNothingTwice) {
  agent_->start();
  hub_process_->start();
  constexpr int kEvents = 400;
  std::vector<std::string> lines;
  for (int i = 0; i < kEvents; ++i) {
    lines.push_back(request("pos.sale.completed",
                            sale("K" + std::to_string(i), i % 2 ? "SKU-K1" : "SKU-K2", 1 + i % 3)));
  }
  Producer till(agent_->socket_path());
  std::thread sender([&] { till.send_all(lines); });
  // Kill the hub with SIGKILL once it is part way through the stream.
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (std::stoi(sql("SELECT count(*) FROM hub_events")) < kEvents / 4 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);
  }
  hub_process_->kill9();
  int at_kill = std::stoi(sql("SELECT count(*) FROM hub_events"));
  sender.join();
  hub_process_->start();
  ASSERT_TRUE(wait_for_events(kEvents, 120s)) << sql("SELECT count(*) FROM hub_events");
  EXPECT_LT(at_kill, kEvents) << "the kill came after the whole stream: it proves nothing";
  EXPECT_EQ(sql("SELECT count(*) FROM hub_events"), std::to_string(kEvents));
  // The independent sum: straight from the stored events' lines, not from the movements.
  std::string expected = sql(
      "SELECT string_agg(sku || '=' || total, ',' ORDER BY sku) FROM ("
      " SELECT l->>'sku' AS sku, -sum((l->>'qty')::bigint) AS total"
      " FROM hub_events, jsonb_array_elements(data->'lines') AS l GROUP BY 1) s");
  std::string actual = sql(
      "SELECT string_agg(sku || '=' || on_hand, ',' ORDER BY sku) FROM hub_stock"
      " WHERE store_id = 'store-042'");
  EXPECT_EQ(actual, expected);
  long k1 = 0, k2 = 0;
  for (int i = 0; i < kEvents; ++i) (i % 2 ? k1 : k2) += 1 + i % 3;
  EXPECT_EQ(on_hand("SKU-K1"), -k1);
  EXPECT_EQ(on_hand("SKU-K2"), -k2);
  CommandResult gaps = hub_process_->run({"gaps"});
  EXPECT_TRUE(gaps.exited_ok()) << gaps.describe();
}

// Events a box counts delivered (the broker acknowledged them) that never reached the hub: here
// the hub had no session on the broker yet. The box's health message says how far it delivered;
// the hub sees the tail it lacks, asks the box for it, and the box sends it again from its
// outbox, same ids and seqs. Nothing is left to find for gaps.
TEST_F(HubStockTest, EventsPublishedBeforeTheHubHadASessionAreAskedForAndSentAgain) {
  agent_->config().extra["health"] = {{"interval_s", 5}};
  agent_->start();
  constexpr int kEvents = 60;
  std::vector<std::string> lines;
  for (int i = 0; i < kEvents; ++i) {
    lines.push_back(request("pos.sale.completed", sale("T" + std::to_string(i), "SKU-T", 1 + i % 2)));
  }
  Producer till(agent_->socket_path());
  till.send_all(lines);
  // The broker acknowledged them all: the box will not send them again by itself.
  ASSERT_TRUE(hub_->wait_for_distinct_seqs(kEvents, 30s));
  hub_process_->config()["resend"] = {{"interval_s", 1}};
  hub_process_->start();
  ASSERT_TRUE(wait_for_events(kEvents, 60s))
      << sql("SELECT count(*) FROM hub_events") << "\n" << hub_process_->log();
  long sold = 0;
  for (int i = 0; i < kEvents; ++i) sold += 1 + i % 2;
  EXPECT_EQ(on_hand("SKU-T"), -sold);
  // Through the box, not by some other path: the hub asked, the box answered.
  EXPECT_NE(hub_process_->log().find("asked store-042/pos-01 for seqs 1-"), std::string::npos)
      << hub_process_->log();
  EXPECT_TRUE(std::regex_search(agent_->log(), std::regex(R"(: sent again [1-9])")))
      << agent_->log();
  CommandResult gaps = hub_process_->run({"gaps"});
  EXPECT_TRUE(gaps.exited_ok()) << gaps.describe();
}

// The same loss, but the box pruned part of that history (storage.keep_delivered 50): it sends
// what it still has and says which seqs it no longer has. gaps shows those as gone, with the
// box's reason, and fails; the hub stops asking for them.
TEST_F(HubStockTest, SeqsTheBoxNoLongerHasAreShownGoneAndNotAskedForAgain) {
  agent_->config().extra["health"] = {{"interval_s", 5}};
  agent_->config().extra["storage"] = {{"keep_delivered", 50}};
  agent_->start();
  constexpr int kEvents = 1100;  // pruning waits for 1,000 rows beyond keep_delivered
  std::vector<std::string> lines;
  for (int i = 0; i < kEvents; ++i) {
    lines.push_back(request("pos.sale.completed", sale("P" + std::to_string(i), "SKU-P", 1)));
  }
  Producer till(agent_->socket_path());
  till.send_all(lines);
  ASSERT_TRUE(hub_->wait_for_distinct_seqs(kEvents, 60s));
  // The box has pruned part of what it delivered before the hub comes.
  auto stored = [&] { return status_json()["outbox"].value("stored_events", int64_t{-1}); };
  auto until = std::chrono::steady_clock::now() + 30s;
  while (stored() == kEvents && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(200ms);
  }
  const int64_t kept = stored();
  ASSERT_GT(kept, 0);
  ASSERT_LT(kept, kEvents) << "nothing was pruned";
  const int64_t pruned = kEvents - kept;

  hub_process_->config()["resend"] = {{"interval_s", 1}};
  hub_process_->start();
  // Settled: what the box kept is in, the rest is recorded as gone.
  json g;
  until = std::chrono::steady_clock::now() + 90s;
  while (std::chrono::steady_clock::now() < until) {
    g = json::parse(hub_process_->run({"gaps", "--json"}).out, nullptr, false);
    if (g.is_array() && g.size() == 1 && g[0]["state"] == "gone" &&
        sql("SELECT count(*) FROM hub_events") == std::to_string(kept)) {
      break;
    }
    std::this_thread::sleep_for(300ms);
  }
  ASSERT_TRUE(g.is_array() && g.size() == 1) << g << "\n" << hub_process_->log();
  EXPECT_EQ(g[0]["state"], "gone") << g;
  EXPECT_EQ(g[0]["from"], 1);
  EXPECT_EQ(g[0]["to"], pruned);
  EXPECT_NE(g[0].value("reason", "").find("keep_delivered"), std::string::npos) << g;
  EXPECT_EQ(sql("SELECT count(*) FROM hub_events"), std::to_string(kept));
  EXPECT_EQ(sql("SELECT min(seq) FROM hub_events"), std::to_string(pruned + 1));
  EXPECT_EQ(on_hand("SKU-P"), -kept);
  CommandResult gaps = hub_process_->run({"gaps"});
  EXPECT_EQ(gaps.exit_code(), 1) << gaps.describe();
  EXPECT_NE(gaps.out.find("gone, as the box said"), std::string::npos) << gaps.out;

  // Not asked for again once the box has answered.
  auto asked = [&] {
    std::string log = hub_process_->log();
    size_t n = 0;
    for (size_t at = log.find("asked store-042/pos-01"); at != std::string::npos;
         at = log.find("asked store-042/pos-01", at + 1)) {
      ++n;
    }
    return n;
  };
  const size_t before = asked();
  std::this_thread::sleep_for(3500ms);
  EXPECT_EQ(asked(), before) << hub_process_->log();
}

// broker.uris lists brokers in order: with the first one down the hub starts on the next, and
// says which one it could not reach.
TEST_F(HubStockTest, AHubWhoseFirstBrokerIsDownConsumesFromTheNext) {
  const std::string dead = "ssl://127.0.0.1:" + std::to_string(pick_free_port());
  hub_process_->config()["broker"]["uris"] = json::array({dead, broker_->uri()});
  hub_process_->start();
  publish_event(1, "pos.sale.completed", sale("F1", "SKU-F", 2), "2026-12-01T12:00:00Z");
  ASSERT_TRUE(wait_for_events(1)) << hub_process_->log();
  EXPECT_EQ(on_hand("SKU-F"), -2);
  std::string log = hub_process_->log();
  EXPECT_NE(log.find(dead), std::string::npos) << log;
  EXPECT_NE(log.find("connected to " + broker_->uri()), std::string::npos) << log;
}

// Scale out with a shared subscription: two instances in one group split the events between
// them (each commits a part), and the unique keys keep the stock exact.
TEST_F(HubStockTest, TwoInstancesInASharedGroupSplitTheStreamAndCountEachEventOnce) {
  hub_process_->config()["broker"]["client_id"] = "hub-a";
  hub_process_->config()["subscription"] = {{"shared_group", "hubs"}};
  std::unique_ptr<HubProcess> b = another_hub("hub-b", {{"shared_group", "hubs"}});
  hub_process_->start();
  b->start();
  constexpr int kEvents = 200;
  publish_event(1, "inventory.counted", count("SKU-S", 1000), "2026-12-01T08:00:00Z");
  for (int seq = 2; seq <= kEvents; ++seq) {
    publish_event(seq, "pos.sale.completed", sale("S" + std::to_string(seq), "SKU-S", 1),
                  "2026-12-01T09:00:00Z");
  }
  ASSERT_TRUE(wait_for_events(kEvents)) << sql("SELECT count(*) FROM hub_events");
  EXPECT_EQ(on_hand("SKU-S"), 1000 - (kEvents - 1));
  EXPECT_EQ(sql("SELECT count(*) FROM hub_events"), std::to_string(kEvents));
  Took by_a = stop_and_read(*hub_process_);
  Took by_b = stop_and_read(*b);
  EXPECT_GT(by_a.new_events, 0) << hub_process_->log();
  EXPECT_GT(by_b.new_events, 0) << b->log();
  // Each message went to one member of the group only: none reached both.
  EXPECT_EQ(by_a.messages + by_b.messages, kEvents);
  EXPECT_EQ(by_a.new_events + by_b.new_events, kEvents);
}

// Scale out without shared subscriptions (ejabberd's mod_mqtt): each instance is given its
// stores and commits only theirs.
TEST_F(HubStockTest, TwoInstancesPartitionedByStoreEachCommitOnlyTheirStores) {
  hub_process_->config()["broker"]["client_id"] = "hub-north";
  hub_process_->config()["subscription"] = {{"stores", json::array({"store-042"})}};
  std::unique_ptr<HubProcess> south =
      another_hub("hub-south", {{"stores", json::array({"store-043"})}});
  hub_process_->start();
  south->start();
  constexpr int kPerStore = 60;
  for (const std::string store : {"store-042", "store-043"}) {
    const std::string device = "pos-" + store.substr(6);
    for (int seq = 1; seq <= kPerStore; ++seq) {
      publish_event(seq, "pos.sale.completed", sale("P" + std::to_string(seq), "SKU-P", 2),
                    "2026-12-01T09:00:00Z", "inc-a", store, device);
    }
  }
  ASSERT_TRUE(wait_for_events(2 * kPerStore)) << sql("SELECT count(*) FROM hub_events");
  EXPECT_EQ(on_hand_in("store-042", "SKU-P"), -2 * kPerStore);
  EXPECT_EQ(on_hand_in("store-043", "SKU-P"), -2 * kPerStore);
  Took north = stop_and_read(*hub_process_);
  Took by_south = stop_and_read(*south);
  EXPECT_EQ(north.messages, kPerStore) << hub_process_->log();
  EXPECT_EQ(north.new_events, kPerStore) << hub_process_->log();
  EXPECT_EQ(by_south.messages, kPerStore) << south->log();
  EXPECT_EQ(by_south.new_events, kPerStore) << south->log();
}

}  // namespace
}  // namespace edgesync::test
