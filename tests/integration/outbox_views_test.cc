// The technician's views of the outbox against the real agent and broker: `outbox show` in each
// state (pending behind a hub that is down, delivered, dead-lettered, pruned, never stored), the
// listing's --type and --since filters, `outbox tail` following events from acceptance to
// delivery (and across a missing and a replaced outbox), and `export` taken while a producer
// keeps sending.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "storage/sqlite.h"
#include "tests/support/hub_fixture.h"

namespace edgesync::test {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

// Polls `pred` every 100 ms until it holds or `timeout` passes; returns its last value.
template <typename Pred>
bool eventually(Pred pred, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (true) {
    if (pred()) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(100ms);
  }
}

std::vector<json> json_lines(const std::string& text) {
  std::vector<json> v;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    auto j = json::parse(line, nullptr, false);
    v.push_back(j.is_discarded() ? json(line) : j);
  }
  return v;
}

class OutboxViewsTest : public HubFixture {
 protected:
  CommandResult cli(std::vector<std::string> args) {
    args.push_back("--config");
    args.push_back(agent_->config_path());
    return AgentProcess::run_cli(args, "", 30s);
  }
  // `outbox show WHAT --json`, parsed (a non-object on failure, with the output in the trace).
  json show(const std::string& what, int* exit_code = nullptr) {
    auto r = cli({"outbox", "show", what, "--json"});
    if (exit_code) *exit_code = r.exit_code();
    auto j = json::parse(r.out, nullptr, false);
    return j.is_discarded() ? json(r.describe()) : j;
  }
  std::vector<json> send(Producer& p, const std::vector<std::string>& lines) {
    auto replies = p.send_all(lines, 60s);
    EXPECT_EQ(replies.size(), lines.size());
    for (const auto& r : replies) EXPECT_TRUE(r.value("ok", false)) << r.dump();
    return replies;
  }
};

// The broker refuses messages over 4000 bytes (PUBACK 0x95): a big event is dead-lettered.
class ShowTest : public OutboxViewsTest {
 protected:
  BrokerOptions broker_options() const override {
    BrokerOptions o;
    o.extra_config = "message_size_limit 4000";
    return o;
  }
};

TEST_F(ShowTest, EachStateBySeqAndIdAndWhyNotFound) {
  // History beyond 5 delivered events is pruned once 1,000 more are due.
  agent_->config().keep_delivered = 5;
  agent_->start();
  Producer producer(agent_->socket_path());
  std::vector<std::string> old;
  for (int i = 1; i <= 1010; ++i) {
    old.push_back(make_request("old-" + std::to_string(i), "pos.sale", json{{"n", i}}));
  }
  send(producer, old);
  ASSERT_TRUE(hub_->wait_for_distinct_seqs(1010, 60s));

  // Pruned: delivered, then gone from the kept history; by seq the answer says so.
  json pruned;
  ASSERT_TRUE(eventually([&] { return (pruned = show("1")).value("reason", "") == "pruned"; }, 20s))
      << pruned.dump();
  EXPECT_EQ(pruned["found"], false) << pruned.dump();
  EXPECT_EQ(pruned["keep_delivered"], 5) << pruned.dump();
  EXPECT_GT(pruned.value("oldest_stored_seq", 0), 1) << pruned.dump();
  auto human = cli({"outbox", "show", "1"});
  EXPECT_EQ(human.exit_code(), 1) << human.describe();
  EXPECT_NE(human.out.find("pruned"), std::string::npos) << human.describe();
  EXPECT_NE(human.out.find("storage.keep_delivered"), std::string::npos) << human.describe();
  // By id it cannot tell pruned from never stored, and says both.
  int code = 0;
  json by_old_id = show("old-1", &code);
  EXPECT_EQ(code, 1);
  EXPECT_EQ(by_old_id.value("reason", ""), "unknown_id") << by_old_id.dump();

  // Dead-lettered (seq 1011) and delivered (1012).
  auto big = producer.request(
      make_request("too-big", "pos.sale", json{{"blob", std::string(8000, 'x')}}), 20s);
  ASSERT_EQ(big.value("seq", 0), 1011) << big.dump();
  auto after = producer.request(make_request("after-big", "pos.refund", json{{"n", 1}}), 20s);
  ASSERT_EQ(after.value("seq", 0), 1012) << after.dump();
  json dead;
  ASSERT_TRUE(eventually(
      [&] {
        dead = show("1011");
        return dead.contains("dead_letter") && dead["dead_letter"].value("announced", false);
      },
      20s))
      << dead.dump();
  EXPECT_EQ(dead["state"], "dead_letter");
  EXPECT_EQ(dead["id"], "too-big");
  EXPECT_NE(dead["dead_letter"].value("reason", "").find("149"), std::string::npos)
      << "the PUBACK reason code 0x95: " << dead.dump();
  EXPECT_EQ(dead["data"]["blob"].get<std::string>().size(), 8000u);
  EXPECT_EQ(show("too-big")["seq"], 1011);
  json delivered;
  ASSERT_TRUE(eventually(
      [&] { return (delivered = show("after-big")).value("state", "") == "delivered"; }, 20s))
      << delivered.dump();
  EXPECT_EQ(delivered["seq"], 1012);
  EXPECT_EQ(delivered["type"], "pos.refund");
  EXPECT_EQ(delivered["data"], (json{{"n", 1}}));
  auto human_dead = cli({"outbox", "show", "too-big"});
  EXPECT_TRUE(human_dead.exited_ok()) << human_dead.describe();
  EXPECT_NE(human_dead.out.find("dead-lettered"), std::string::npos) << human_dead.describe();
  EXPECT_NE(human_dead.out.find("the hub has its notice"), std::string::npos)
      << human_dead.describe();

  // Pending behind a hub that is down: how many go first.
  broker_->stop();
  send(producer, {make_request("wait-1", "pos.sale", json{{"n", 1}}),
                  make_request("wait-2", "pos.sale", json{{"n", 2}}),
                  make_request("wait-3", "pos.sale", json{{"n", 3}})});
  json pending = show("1015");
  EXPECT_EQ(pending.value("state", ""), "pending") << pending.dump();
  EXPECT_EQ(pending.value("id", ""), "wait-3") << pending.dump();
  EXPECT_EQ(pending.value("pending_ahead", -1), 2) << pending.dump();
  EXPECT_EQ(pending.value("delivered_seq", -1), 1012) << pending.dump();
  auto human_pending = cli({"outbox", "show", "wait-1"});
  EXPECT_TRUE(human_pending.exited_ok()) << human_pending.describe();
  EXPECT_NE(human_pending.out.find("pending: 0 events ahead"), std::string::npos)
      << human_pending.describe();
  EXPECT_NE(human_pending.out.find("\"n\": 1"), std::string::npos)
      << "the data, pretty-printed: " << human_pending.describe();

  // The plain listing: the pending ones only.
  auto listing = cli({"outbox", "--json"});
  ASSERT_TRUE(listing.exited_ok()) << listing.describe();
  json pending_list = json::parse(listing.out, nullptr, false);
  ASSERT_TRUE(pending_list.is_array() && pending_list.size() == 3u) << listing.describe();
  EXPECT_EQ(pending_list[0].value("id", ""), "wait-1");
  EXPECT_EQ(pending_list[0].value("state", ""), "pending");

  // Never stored.
  json ahead_of_all = show("1016", &code);
  EXPECT_EQ(code, 1);
  EXPECT_EQ(ahead_of_all.value("reason", ""), "never_stored") << ahead_of_all.dump();
  json unknown = show("no-such-event", &code);
  EXPECT_EQ(code, 1);
  EXPECT_EQ(unknown.value("found", true), false) << unknown.dump();
  EXPECT_EQ(unknown.value("id", ""), "no-such-event") << unknown.dump();

  // Usage.
  EXPECT_EQ(cli({"outbox", "show"}).exit_code(), 2);
}

TEST_F(OutboxViewsTest, ListingFiltersByTypePrefixAndAge) {
  agent_->start();
  Producer producer(agent_->socket_path());
  send(producer, {make_request("a-1", "pos.sale", json{{"n", 1}}),
                  make_request("a-2", "possum.seen", json{{"n", 2}}),
                  make_request("a-3", "inventory.adjusted", json{{"n", 3}})});
  // --since is about the time the agent received events: let the first ones grow old.
  std::this_thread::sleep_for(3s);
  send(producer, {make_request("b-1", "pos.refund", json{{"n", 4}}),
                  make_request("b-2", "pos.sale", json{{"n", 5}})});

  auto ids = [&](std::vector<std::string> args) {
    // --all: delivered or not, whichever the hub has got to by now.
    args.insert(args.begin(), {"outbox", "--all"});
    args.push_back("--json");
    auto r = cli(args);
    EXPECT_TRUE(r.exited_ok()) << r.describe();
    std::vector<std::string> out;
    json arr = json::parse(r.out, nullptr, false);
    EXPECT_TRUE(arr.is_array()) << r.describe();
    if (arr.is_array()) {
      for (const auto& e : arr) out.push_back(e.value("id", ""));
    }
    return out;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(ids({}), (V{"a-1", "a-2", "a-3", "b-1", "b-2"}));
  EXPECT_EQ(ids({"--type", "pos.sale"}), (V{"a-1", "b-2"}));
  EXPECT_EQ(ids({"--type", "pos.*"}), (V{"a-1", "b-1", "b-2"})) << "possum.seen is not pos.*";
  EXPECT_EQ(ids({"--since", "2s"}), (V{"b-1", "b-2"}));
  EXPECT_EQ(ids({"--since", "2s", "--type", "pos.sale"}), (V{"b-2"}));
  EXPECT_EQ(ids({"--since", "1h", "--limit", "2"}), (V{"a-1", "a-2"}));

  auto table = cli({"outbox", "--all", "--type", "pos.*"});
  EXPECT_TRUE(table.exited_ok()) << table.describe();
  EXPECT_NE(table.out.find("3 shown of type pos.*"), std::string::npos) << table.describe();

  EXPECT_EQ(cli({"outbox", "--since", "yesterday"}).exit_code(), 2);
  EXPECT_EQ(cli({"outbox", "--type", "p*s.sale"}).exit_code(), 2);
}

// A damaged or hand-edited outbox can hold text that is not UTF-8 (the agent stores only what
// it validated). The technician's views print it with U+FFFD in its place; the CLI must not end
// on it half-way through a listing.
TEST_F(OutboxViewsTest, TextThatIsNotUtf8InAnOutboxRowIsShownNotFatal) {
  agent_->start();
  {
    Producer producer(agent_->socket_path());
    send(producer, {make_request("u-1", "pos.sale", json{{"n", 1}})});
  }
  ASSERT_TRUE(agent_->terminate(15s).has_value());
  {
    auto db = storage::Database::open(agent_->config().storage_path, storage::Database::Options{});
    ASSERT_TRUE(db) << db.status().to_string();
    ASSERT_TRUE(
        (*db)->exec("UPDATE events SET id = CAST(X'752DFC31' AS TEXT), "
                    "type = CAST(X'706F732EFC' AS TEXT) WHERE id = 'u-1'"));
  }
  const std::string id = "u-\xEF\xBF\xBD" "1";
  auto listed = cli({"outbox", "--all", "--json"});
  EXPECT_EQ(listed.exit_code(), 0) << listed.describe();
  const json arr = json::parse(listed.out, nullptr, false);
  ASSERT_TRUE(arr.is_array() && arr.size() == 1) << listed.describe();
  EXPECT_EQ(arr[0].value("id", ""), id);
  EXPECT_EQ(arr[0].value("type", ""), "pos.\xEF\xBF\xBD");
  auto table = cli({"outbox", "--all"});
  EXPECT_EQ(table.exit_code(), 0) << table.describe();
  int code = -1;
  const json shown = show("1", &code);
  EXPECT_EQ(code, 0);
  EXPECT_EQ(shown.value("id", ""), id) << shown.dump();
}

TEST_F(OutboxViewsTest, TailFollowsAcceptanceThenDeliveryAndAReplacedOutbox) {
  broker_->stop();
  // Started before the agent ever ran: there is no outbox yet.
  const std::string tail_log = dir_->file("tail.log");
  ChildProcess tail;
  tail.spawn(edgesync_argv({"outbox", "tail", "--json", "--config", agent_->config_path()}),
             tail_log);
  auto lines = [&] { return json_lines(read_file(tail_log)); };
  auto has = [&](const std::function<bool(const json&)>& pred) {
    for (const auto& l : lines()) {
      if (l.is_object() && pred(l)) return true;
    }
    return false;
  };
  auto event_is = [](const char* name) {
    return [name](const json& l) { return l.value("event", "") == name; };
  };
  ASSERT_TRUE(eventually([&] { return has(event_is("waiting")); }, 10s)) << read_file(tail_log);

  agent_->start();
  ASSERT_TRUE(eventually([&] { return has(event_is("following")); }, 10s)) << read_file(tail_log);
  Producer producer(agent_->socket_path());
  std::vector<std::string> batch;
  for (int i = 1; i <= 5; ++i) {
    batch.push_back(make_request("t-" + std::to_string(i), "pos.sale", json{{"n", i}}));
  }
  send(producer, batch);
  auto accepted_seqs = [&] {
    std::vector<int64_t> seqs;
    for (const auto& l : lines()) {
      if (l.is_object() && l.value("event", "") == "accepted") seqs.push_back(l.value("seq", 0));
    }
    return seqs;
  };
  ASSERT_TRUE(eventually([&] { return accepted_seqs().size() >= 5; }, 10s)) << read_file(tail_log);
  EXPECT_EQ(accepted_seqs(), (std::vector<int64_t>{1, 2, 3, 4, 5})) << read_file(tail_log);
  for (const auto& l : lines()) {
    if (l.is_object() && l.value("event", "") == "accepted" && l.value("seq", 0) == 3) {
      EXPECT_EQ(l.value("id", ""), "t-3") << l.dump();
      EXPECT_EQ(l.value("type", ""), "pos.sale") << l.dump();
      EXPECT_TRUE(l.contains("received_at")) << l.dump();
    }
  }
  EXPECT_FALSE(has(event_is("delivered"))) << "nothing is delivered with the hub down\n"
                                           << read_file(tail_log);

  // The hub comes back: the watermark moves, in lines per poll, not per event.
  broker_->start();
  ASSERT_TRUE(eventually(
      [&] {
        return has([](const json& l) {
          return l.value("event", "") == "delivered" && l.value("through_seq", 0) == 5;
        });
      },
      30s))
      << read_file(tail_log);
  size_t delivered_lines = 0;
  int64_t last_through = 0;
  for (const auto& l : lines()) {
    if (!l.is_object() || l.value("event", "") != "delivered") continue;
    ++delivered_lines;
    EXPECT_GT(l.value("through_seq", 0), last_through) << "the watermark only moves forward";
    last_through = l.value("through_seq", 0);
  }
  EXPECT_LE(delivered_lines, 5u);

  // The outbox replaced (moved aside, a fresh one made): the tail says so and starts over.
  const std::string incarnation = status_json()["outbox"].value("incarnation", "");
  ASSERT_TRUE(agent_->terminate(20s).has_value());
  producer.close();
  const std::string db = agent_->config().storage_path;
  for (const char* suffix : {"", "-wal", "-shm"}) {
    std::error_code ec;
    std::filesystem::rename(db + suffix, db + ".aside" + suffix, ec);
  }
  agent_->start();
  Producer producer2(agent_->socket_path());
  send(producer2, {make_request("new-1", "inventory.adjusted", json{{"n", 1}})});
  ASSERT_TRUE(eventually(
      [&] {
        return has([](const json& l) {
          return l.value("event", "") == "accepted" && l.value("id", "") == "new-1";
        });
      },
      15s))
      << read_file(tail_log);
  bool said_new = false;
  for (const auto& l : lines()) {
    if (l.is_object() && l.value("event", "") == "new_incarnation") {
      said_new = true;
      EXPECT_NE(l.value("incarnation", ""), incarnation) << l.dump();
    }
    if (l.is_object() && l.value("id", "") == "new-1") {
      EXPECT_TRUE(said_new) << "the new outbox is announced before its events";
      EXPECT_EQ(l.value("seq", 0), 1) << l.dump();
    }
  }

  // Ctrl-C ends it cleanly.
  tail.signal(SIGINT);
  auto status = tail.wait(10s);
  ASSERT_TRUE(status.has_value()) << "tail did not end on SIGINT";
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << describe_wait_status(*status);
  for (const auto& l : lines()) EXPECT_TRUE(l.is_object()) << "not JSON: " << l.dump();
}

// The copy's figures, read from the copy itself.
struct CopyFacts {
  std::string integrity;
  std::string journal_mode;
  int64_t events = 0, pending = 0, dead = 0, min_seq = 0, max_seq = 0, delivered_seq = 0;
  std::set<std::string> ids;
};

CopyFacts read_copy(const std::string& path) {
  CopyFacts f;
  storage::Database::Options o;
  o.read_only = true;
  auto db = storage::Database::open(path, o);
  EXPECT_TRUE(db) << db.status().to_string();
  if (!db) return f;
  auto text = [&](const char* sql) {
    auto q = (*db)->prepare(sql);
    if (!q) return q.status().to_string();
    auto row = (*q)->step();
    return row && *row ? std::string((*q)->column_text(0)) : std::string("(no row)");
  };
  auto number = [&](const char* sql) {
    auto v = (*db)->query_int64(sql, -1);
    return v ? *v : -2;
  };
  f.integrity = text("PRAGMA integrity_check");
  f.journal_mode = text("PRAGMA journal_mode");
  f.delivered_seq = number("SELECT value FROM state WHERE key = 'delivered_seq'");
  f.events = number("SELECT count(*) FROM events");
  f.min_seq = number("SELECT min(seq) FROM events");
  f.max_seq = number("SELECT max(seq) FROM events");
  f.dead = number("SELECT count(*) FROM dead_letters");
  auto q = (*db)->prepare("SELECT id, seq FROM events");
  if (q) {
    while (true) {
      auto row = (*q)->step();
      if (!row || !*row) break;
      f.ids.insert(std::string((*q)->column_text(0)));
      if ((*q)->column_int64(1) > f.delivered_seq) ++f.pending;
    }
  }
  return f;
}

json load_schema(const std::string& name) {
  const char* src = std::getenv("EDGESYNC_SOURCE_DIR");
  std::ifstream in(std::string(src ? src : ".") + "/config/contracts/" + name);
  return json::parse(in, nullptr, false);
}

unsigned mode_of(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? (st.st_mode & 07777) : 0;
}

TEST_F(OutboxViewsTest, ExportWhileAProducerKeepsSending) {
  agent_->start();
  Producer loader(agent_->socket_path());
  std::vector<std::string> preload;
  for (int i = 0; i < 3000; ++i) {
    preload.push_back(make_request("pre-" + std::to_string(i), "pos.sale",
                                   json{{"n", i}, {"blob", std::string(2000, 'p')}}));
  }
  send(loader, preload);

  // A producer sending one event after another, each acknowledged before the next.
  struct Ack {
    Clock::time_point at;
    std::string id;
  };
  std::vector<Ack> acks;
  std::atomic<bool> stop{false};
  std::thread live([&] {
    Producer p(agent_->socket_path());
    for (int i = 0; !stop; ++i) {
      const std::string id = "live-" + std::to_string(i);
      auto r = p.request(make_request(id, "pos.sale", json{{"n", i}}), 10s);
      if (!r.value("ok", false)) break;
      acks.push_back({Clock::now(), id});
    }
  });
  std::this_thread::sleep_for(300ms);  // the producer is in its stride

  const std::string copy = dir_->file("export.db");
  const auto started = Clock::now();
  auto r = cli({"export", "--out", copy, "--json"});
  const auto ended = Clock::now();
  std::this_thread::sleep_for(300ms);
  stop = true;
  live.join();
  ASSERT_TRUE(r.exited_ok()) << r.describe();

  // The producer was answered throughout: acks before, during and after, no long gap.
  size_t during = 0;
  auto last = started;
  Clock::duration longest{};
  for (const auto& a : acks) {
    if (a.at < started) continue;
    if (a.at > ended) {
      longest = std::max(longest, a.at - last);
      break;
    }
    ++during;
    longest = std::max(longest, a.at - last);
    last = a.at;
  }
  const auto export_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(ended - started).count();
  EXPECT_GT(during, 0u) << "no ack while the export ran (" << export_ms << " ms)";
  EXPECT_LT(longest, 1s) << "the producer waited on the export (" << export_ms << " ms)";

  // The copy: private, one self-contained file, sound, and what its summary says.
  EXPECT_EQ(mode_of(copy), 0600u);
  EXPECT_EQ(mode_of(copy + ".summary.json"), 0600u);
  EXPECT_FALSE(std::filesystem::exists(copy + "-wal"));
  json summary = json::parse(r.out, nullptr, false);
  ASSERT_TRUE(summary.is_object()) << r.describe();
  EXPECT_EQ(json::parse(read_file(copy + ".summary.json"), nullptr, false), summary);
  CopyFacts facts = read_copy(copy);
  EXPECT_EQ(facts.integrity, "ok");
  EXPECT_EQ(facts.journal_mode, "delete");
  EXPECT_EQ(summary["quick_check"], "ok");
  EXPECT_EQ(summary["events"]["count"], facts.events);
  EXPECT_EQ(summary["events"]["pending"], facts.pending);
  EXPECT_EQ(summary["events"]["delivered"], facts.events - facts.pending);
  EXPECT_EQ(summary["events"]["first_seq"], facts.min_seq);
  EXPECT_EQ(summary["events"]["last_seq"], facts.max_seq);
  EXPECT_EQ(summary["dead_letters"], facts.dead);
  EXPECT_EQ(summary["delivered_seq"], facts.delivered_seq);
  EXPECT_EQ(summary["device_id"], "pos-01");
  EXPECT_EQ(summary["store_id"], "store-042");
  EXPECT_EQ(summary["schema_version"], 4) << "storage::kSchemaVersion";
  EXPECT_EQ(summary["since"], nullptr);
  EXPECT_EQ(summary["incarnation"], status_json()["outbox"]["incarnation"]);
  ASSERT_TRUE(summary["agent_state"].is_object()) << summary.dump();
  EXPECT_EQ(summary["agent_state"].value("running", false), true);
  EXPECT_EQ(summary["bytes"], static_cast<int64_t>(std::filesystem::file_size(copy)));
  // A snapshot: everything acknowledged before the export began is in it.
  EXPECT_GE(facts.events, 3000);
  for (int i = 0; i < 3000; i += 499) EXPECT_TRUE(facts.ids.count("pre-" + std::to_string(i)));
  for (const auto& a : acks) {
    if (a.at < started) {
      EXPECT_TRUE(facts.ids.count(a.id)) << a.id << " acked before the export";
    }
  }
  // The summary keeps to its published schema.
  json schema = load_schema("export-summary.schema.json");
  ASSERT_TRUE(schema.is_object());
  for (const auto& [key, value] : summary.items()) {
    EXPECT_TRUE(schema["properties"].contains(key)) << "not in the schema: " << key;
  }
  for (const auto& key : schema["required"]) {
    EXPECT_TRUE(summary.contains(key.get<std::string>())) << "missing: " << key;
  }

  // Never over an existing file (the copy stays as it was).
  const auto size_before = std::filesystem::file_size(copy);
  auto again = cli({"export", "--out", copy});
  EXPECT_EQ(again.exit_code(), 2) << again.describe();
  EXPECT_NE(again.err.find("exists"), std::string::npos) << again.describe();
  EXPECT_EQ(std::filesystem::file_size(copy), size_before);

  // --since: only what was received lately stays in the copy, and the file shrinks with it.
  std::this_thread::sleep_for(2500ms);
  send(loader, {make_request("recent-1", "pos.sale", json{{"n", 1}}),
                make_request("recent-2", "pos.sale", json{{"n", 2}})});
  const std::string recent = dir_->file("recent.db");
  auto trimmed = cli({"export", "--out", recent, "--since", "2s"});
  ASSERT_TRUE(trimmed.exited_ok()) << trimmed.describe();
  EXPECT_NE(trimmed.out.find("quick check"), std::string::npos) << trimmed.describe();
  json recent_summary = json::parse(read_file(recent + ".summary.json"), nullptr, false);
  ASSERT_TRUE(recent_summary.is_object());
  CopyFacts recent_facts = read_copy(recent);
  EXPECT_EQ(recent_facts.integrity, "ok");
  EXPECT_EQ(recent_facts.ids, (std::set<std::string>{"recent-1", "recent-2"}));
  EXPECT_EQ(recent_summary["events"]["count"], 2);
  EXPECT_EQ(recent_summary["since"], "2s");
  EXPECT_GE(recent_summary["removed_by_since"].value("events", 0), 3000);
  EXPECT_LT(std::filesystem::file_size(recent), size_before / 4) << "not vacuumed";
  EXPECT_EQ(mode_of(recent), 0600u);
}

}  // namespace
}  // namespace edgesync::test
