// The three ways in (the ingest socket, HTTP, the spool folder) share one ingest core, so a
// request gets the same answer on each. One table of cases (every error code the request itself
// can cause, and every valid and invalid event of every contract fixture) goes through all
// three on a real agent: the same ok, error code and violations, the fixture's violations, the
// HTTP status for the code, and every accepted event at the hub. The error codes that come from
// the storage: outbox_full on all three through the real agent (the spool file waits in the
// folder until there is room), storage_error over HTTP and through the spool in process on the
// fault-injecting SQLite VFS (503 with Retry-After: 5; the file waits in the folder until
// commits work again).
#include <gtest/gtest.h>

#include <algorithm>
#include <asio.hpp>
#include <filesystem>
#include <future>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <thread>

#include "agent/config.h"
#include "agent/http_ingest.h"
#include "agent/ingest_core.h"
#include "agent/spool_ingest.h"
#include "tests/harness/net_util.h"
#include "tests/storage/fault_fixture.h"
#include "tests/support/events.h"
#include "tests/support/http_client.h"
#include "tests/support/hub_fixture.h"
#include "tests/support/source_files.h"
#include "tests/support/spool_folder.h"

namespace edgesync::test {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

// A reply's violations in a fixed order: the contract promises every violation, not an order.
json sorted_violations(const json& reply) {
  json v = reply.is_object() ? reply.value("violations", json::array()) : json::array();
  std::sort(v.begin(), v.end(), [](const json& a, const json& b) { return a.dump() < b.dump(); });
  return v;
}

// One row of the table: a request and what every way in must answer it.
struct Case {
  std::string name;   // for failure messages
  std::string key;    // unique and short: an accepted case's events get ids made from it
  std::string line;   // the request line; an accepted case's has no id (each way gives its own)
  std::string error;  // "" when the event is accepted
  int status = 200;   // over HTTP
  int version = 0;    // an accepted case: the contract version its reply names
  std::optional<json> violations;  // an invalid fixture: the ones it names, sorted
};

// The ways in; an accepted case's events over the socket and HTTP get ids ending in their name.
constexpr const char* kSocket = "socket";
constexpr const char* kHttp = "http";
constexpr const char* kSpool = "spool";

// The line a way in sends for a case. An accepted case's events must not be duplicates of each
// other: the socket and HTTP give theirs an id of their own, the spool leaves it out and the
// event gets "<file>:<line>".
std::string line_for(const Case& c, const std::string& way) {
  if (!c.error.empty() || way == kSpool) return c.line;
  json r = json::parse(c.line);
  r["id"] = c.key + "/" + way;
  return r.dump();
}

// A case the agent refuses for the request itself.
Case refused(std::string name, std::string line, std::string error, int status) {
  Case c;
  c.name = c.key = std::move(name);
  c.line = std::move(line);
  c.error = std::move(error);
  c.status = status;
  return c;
}

// The error codes a request causes by itself, each as a producer would get it wrong.
// `sale`: data that its contract (pos.sale.completed) accepts.
std::vector<Case> error_cases(const json& sale, int64_t max_line_bytes) {
  const std::string too_long(static_cast<size_t>(max_line_bytes) + 1000, 'x');
  return {
      refused("not JSON", "{\"type\": \"pos.void\",", "bad_json", 400),
      refused("not an object", "\"a string\"", "invalid_event", 422),
      refused("no type", json{{"data", json::object()}}.dump(), "invalid_event", 422),
      refused("an unknown type", json{{"type", "no.such.type"}, {"data", json::object()}}.dump(),
              "unknown_type", 422),
      refused("a version the agent does not know",
              json{{"type", "pos.sale.completed"}, {"v", 99}, {"data", sale}}.dump(),
              "invalid_event", 422),
      refused("longer than ingest.max_line_bytes",
              json{{"type", "pos.void"}, {"data", {{"blob", too_long}}}}.dump(), "too_large", 413),
  };
}

// Every valid and invalid event of every fixture file (<type>.v<N>.json), in name order.
std::vector<Case> fixture_cases() {
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(source_dir() + "/tests/contracts/fixtures")) {
    files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  std::vector<Case> cases;
  for (const auto& path : files) {
    const std::string stem = path.stem().string();  // <type>.v<N>
    const std::string type = stem.substr(0, stem.rfind(".v"));
    const int v = std::stoi(stem.substr(stem.rfind(".v") + 2));
    const json f = read_json(path.string());
    EXPECT_TRUE(f.is_object()) << path;
    if (!f.is_object()) continue;
    const json valid = f.value("valid", json::array());
    const json invalid = f.value("invalid", json::array());
    EXPECT_FALSE(valid.empty() || invalid.empty()) << path;
    for (size_t i = 0; i < valid.size(); ++i) {
      const json& ok = valid[i];
      Case c;
      c.name = stem + " valid: " + ok.value("name", "");
      c.key = stem + "/ok" + std::to_string(i);
      c.line = json{{"type", type}, {"v", v}, {"data", ok["data"]}}.dump();
      c.version = v;
      cases.push_back(std::move(c));
    }
    for (size_t i = 0; i < invalid.size(); ++i) {
      const json& bad = invalid[i];
      Case c;
      c.name = stem + " invalid: " + bad.value("name", "");
      c.key = stem + "/bad" + std::to_string(i);
      c.line = json{{"type", type}, {"v", v}, {"data", bad["data"]}}.dump();
      c.error = "invalid_event";
      c.status = 422;
      c.violations = sorted_violations(bad);
      cases.push_back(std::move(c));
    }
  }
  return cases;
}

// The real agent with all three ways in: the shipped contracts, unknown types refused, a small
// ingest.max_line_bytes, HTTP on a loopback port and a spool folder.
class WaysInTest : public HubFixture {
 protected:
  void SetUp() override {
    HubFixture::SetUp();
    port_ = pick_free_port();
    spool_ = std::make_unique<SpoolFolder>(dir_->path() / "spool", dir_->path() / "staging");
    agent_->config().max_line_bytes = 4096;
    agent_->config().extra["ingest"] = {
        {"contracts_dir", source_dir() + "/config/contracts/events"},
        {"unknown_types", "reject"},
        {"http", {{"listen", http_target()}}},
        {"spool_dir", spool_->path().string()}};
  }

  std::string http_target() const { return "127.0.0.1:" + std::to_string(port_); }

  void start_agent() {
    agent_->start();
    // start() returns once the ingest socket listens; HTTP starts a moment later.
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!tcp_port_accepts(port_) && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(10ms);
    }
    ASSERT_TRUE(tcp_port_accepts(port_)) << agent_->log();
  }

  // Waits for the agent's log to hold `text`.
  bool wait_for_log(const std::string& text, std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    while (agent_->log().find(text) == std::string::npos) {
      if (Clock::now() > deadline) return false;
      std::this_thread::sleep_for(50ms);
    }
    return true;
  }

  std::set<std::string> hub_ids() {
    std::set<std::string> ids;
    for (const auto& e : events()) ids.insert(e.id);
    return ids;
  }

  int port_ = 0;
  std::unique_ptr<SpoolFolder> spool_;
};

TEST_F(WaysInTest, EveryCaseGetsTheSameAnswerOnTheSocketOverHttpAndInASpoolFile) {
  start_agent();
  const json sales =
      read_json(source_dir() + "/tests/contracts/fixtures/pos.sale.completed.v1.json");
  ASSERT_TRUE(sales.is_object() && !sales.value("valid", json::array()).empty());
  std::vector<Case> cases = error_cases(sales["valid"][0]["data"], agent_->config().max_line_bytes);
  const size_t error_rows = cases.size();
  for (Case& c : fixture_cases()) cases.push_back(std::move(c));
  ASSERT_GT(cases.size(), error_rows + 60) << "the fixtures were not read";

  // The spool's way: all the cases in one file, one line each, in the table's order. Taken
  // while the other two ways are walked.
  const std::string file = "cases.ndjson";
  std::string text;
  for (const Case& c : cases) text += line_for(c, kSpool) + "\n";
  spool_->drop(file, text);

  Producer producer(agent_->socket_path());
  std::vector<json> on_socket;
  std::vector<HttpAnswer> over_http;
  for (const Case& c : cases) {
    on_socket.push_back(producer.request(line_for(c, kSocket), 20s));
    over_http.push_back(post_events(http_target(), line_for(c, kHttp)));
  }
  // Any refusal sends the file to failed/: the table has refusals.
  const json result = spool_->await_result("failed", file);
  ASSERT_TRUE(result.is_object());
  ASSERT_EQ(result["lines"].size(), cases.size()) << result.dump().substr(0, 2000);

  size_t accepted = 0;
  std::set<std::string> expected_at_hub;
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    SCOPED_TRACE("case " + std::to_string(i + 1) + ": " + c.name);
    const json& s = on_socket[i];
    const HttpAnswer& h = over_http[i];
    const json& p = result["lines"][i];
    const std::string spool_id = file + ":" + std::to_string(i + 1);
    ASSERT_TRUE(h.body.is_object()) << h.raw;
    EXPECT_EQ(p.value("line", 0), static_cast<int>(i + 1)) << p.dump();
    EXPECT_EQ(h.status, c.status) << h.raw;

    const bool want_ok = c.error.empty();
    const std::map<std::string, const json*> replies = {
        {kSocket, &s}, {kHttp, &h.body}, {kSpool, &p}};
    for (const auto& [way, reply] : replies) {
      SCOPED_TRACE(way);
      EXPECT_EQ(reply->value("ok", !want_ok), want_ok) << reply->dump();
      EXPECT_EQ(reply->value("error", ""), c.error) << reply->dump();
      // The same violations on every way; an invalid fixture's are the ones it names.
      EXPECT_EQ(sorted_violations(*reply), sorted_violations(s)) << reply->dump();
      if (c.violations) {
        EXPECT_EQ(sorted_violations(*reply), *c.violations) << reply->dump();
      }
      if (want_ok) {
        EXPECT_EQ(reply->value("v", 0), c.version) << reply->dump();
        EXPECT_EQ(reply->value("duplicate", true), false) << reply->dump();
        EXPECT_GT(reply->value("seq", int64_t{0}), 0) << reply->dump();
      }
    }
    if (want_ok) {
      ++accepted;
      EXPECT_EQ(s.value("id", ""), c.key + "/" + kSocket);
      EXPECT_EQ(h.body.value("id", ""), c.key + "/" + kHttp);
      EXPECT_EQ(p.value("id", ""), spool_id) << p.dump();
      expected_at_hub.insert({c.key + "/" + kSocket, c.key + "/" + kHttp, spool_id});
    } else {
      // The socket's reply object itself over HTTP and in the spool's result (there with the
      // line and id in front), but for a line's length, which each way words its own way.
      if (c.error != "too_large") {
        EXPECT_EQ(h.body, s) << h.raw;
        json spool_reply = p;
        spool_reply.erase("line");
        spool_reply.erase("id");
        EXPECT_EQ(spool_reply, s) << p.dump();
      }
      // A refused spool line names the id its event had or was given; one that could not be
      // given one (too long to be read, not an object) the key its dead letter is kept under.
      EXPECT_EQ(p.value("id", ""), spool_id) << p.dump();
    }
  }
  EXPECT_EQ(result["totals"]["stored"], accepted) << result["totals"].dump();
  EXPECT_EQ(result["totals"]["refused"], cases.size() - accepted) << result["totals"].dump();

  std::cout << "[ figures ] " << cases.size() << " cases (" << accepted
            << " accepted) on the socket, over HTTP and in a spool file\n";

  // Every accepted event of every way reaches the hub, once each under its own id.
  ASSERT_TRUE(hub_->wait_for_distinct_seqs(expected_at_hub.size(), 30s))
      << hub_->distinct_seq_count() << " of " << expected_at_hub.size();
  EXPECT_TRUE(first_arrivals_gap_free(events()));
  EXPECT_EQ(hub_ids(), expected_at_hub);
}

TEST_F(WaysInTest, AFullOutboxRefusesOnEveryWayInAndTheSpoolFileWaitsForRoom) {
  // A 1 MiB outbox, the hub away: events of 8 kB fill it.
  agent_->config().max_bytes = 1 << 20;
  agent_->config().max_line_bytes = 16384;
  agent_->config().extra["ingest"]["unknown_types"] = "accept";  // blobs, not sales
  broker_->stop();
  start_agent();
  const std::string blob(8000, 'x');
  auto blob_event = [&](const std::string& id) {
    return make_request(id, "test.blob", {{"blob", blob}});
  };

  Producer producer(agent_->socket_path());
  size_t accepted = 0;
  json on_socket;
  std::string refused_id;
  for (int i = 0; i < 400 && on_socket.is_null(); ++i) {
    const std::string id = "fill-" + std::to_string(i);
    json r = producer.request(blob_event(id), 20s);
    ASSERT_TRUE(r.is_object()) << r.dump();
    if (r.value("ok", false)) {
      ++accepted;
    } else {
      on_socket = r;
      refused_id = id;
    }
  }
  ASSERT_FALSE(on_socket.is_null()) << "400 events of 8 kB never filled a 1 MiB outbox";
  EXPECT_EQ(on_socket.value("error", ""), "outbox_full") << on_socket.dump();

  // The same size of event over HTTP: 507, and when to try again.
  HttpAnswer over_http = post_events(http_target(), blob_event("full/http"));
  EXPECT_EQ(over_http.status, 507) << over_http.raw;
  EXPECT_EQ(over_http.header("retry-after"), "60") << over_http.headers;
  EXPECT_EQ(over_http.body.value("ok", true), false) << over_http.raw;
  EXPECT_EQ(over_http.body.value("error", ""), "outbox_full") << over_http.raw;

  // In the spool: outbox_full clears, so the file is not failed but left for a later try.
  const std::string file = "full.ndjson";
  spool_->drop(file, blob_event("") + "\n" + blob_event("") + "\n");
  const std::string said = "spool file " + file + ": ";
  ASSERT_TRUE(wait_for_log(said, 20s)) << agent_->log();
  const std::string log = agent_->log();
  const size_t at = log.find(said);
  const std::string line = log.substr(at, log.find('\n', at) - at);
  EXPECT_NE(line.find("refused for a reason that clears"), std::string::npos) << line;
  EXPECT_NE(line.find("\"error\":\"outbox_full\""), std::string::npos) << line;
  EXPECT_NE(line.find("taken again in 5 s"), std::string::npos) << line;
  EXPECT_TRUE(fs::exists(spool_->path() / file));
  EXPECT_TRUE(spool_->empty("failed"));
  EXPECT_TRUE(spool_->empty("done"));

  // The hub back, delivery makes room: the spool's next try takes the file whole.
  broker_->start();
  json r = spool_->await_result("done", file, 60s);
  ASSERT_TRUE(r.is_object());
  EXPECT_EQ(r["totals"],
            json({{"requests", 2}, {"ok", 2}, {"stored", 2}, {"duplicate", 0}, {"refused", 0}}))
      << "nothing of the file was stored while the outbox was full: " << r.dump();
  EXPECT_FALSE(fs::exists(spool_->path() / file));

  // And the events refused on the other ways go in when sent again with their ids.
  HttpAnswer http_again = post_events(http_target(), blob_event("full/http"));
  EXPECT_EQ(http_again.status, 200) << http_again.raw;
  EXPECT_EQ(http_again.body.value("duplicate", true), false) << http_again.raw;
  json socket_again = producer.request(blob_event(refused_id), 20s);
  EXPECT_EQ(socket_again.value("ok", false), true) << socket_again.dump();
  EXPECT_EQ(socket_again.value("duplicate", true), false) << socket_again.dump();

  const size_t total = accepted + 4;
  ASSERT_TRUE(hub_->wait_for_distinct_seqs(total, 60s))
      << hub_->distinct_seq_count() << " of " << total;
  EXPECT_TRUE(first_arrivals_gap_free(events()));
  const std::set<std::string> ids = hub_ids();
  EXPECT_EQ(ids.size(), total);
  for (const std::string& id : {std::string("full/http"), refused_id, file + ":1", file + ":2"}) {
    EXPECT_EQ(ids.count(id), 1u) << id;
  }
}

// storage_error comes from a disk that fails: the ingest core, HTTP and the spool in one process
// with the outbox on the fault-injecting VFS, wired as the agent wires them.
class WaysInStorageErrorTest : public FaultVfsTest {
 protected:
  void SetUp() override {
    FaultVfsTest::SetUp();
    target_ = "127.0.0.1:" + std::to_string(pick_free_port());
    config_.ingest.unknown_types = "accept";  // no contracts: the storage is under test
    config_.ingest.http.listen = target_;
    config_.ingest.spool_dir = dir_.file("spool");
    spool_folder_ = std::make_unique<SpoolFolder>(config_.ingest.spool_dir, dir_.file("staging"));
    // Completions run on the ingest loop's thread, as in the agent.
    auto box = storage::Outbox::open(
        options_, [this](std::function<void()> fn) { asio::post(io_, std::move(fn)); });
    ASSERT_TRUE(box.is_ok()) << box.status().to_string();
    box_ = std::move(*box);
    core_ = std::make_unique<agent::IngestCore>(io_, config_, *box_);
    http_ = std::make_unique<agent::HttpIngest>(*core_);
    Status s = http_->start();
    ASSERT_TRUE(s) << s.to_string();
    spool_ = std::make_unique<agent::SpoolIngest>(*core_);
    s = spool_->start();
    ASSERT_TRUE(s) << s.to_string();
    loop_ = std::thread([this] { io_.run(); });
  }

  void TearDown() override {
    // As the agent stops: HTTP first (its requests in progress need the loop), then the spool
    // (its stop runs on the loop), then the loop.
    if (loop_.joinable()) {
      if (http_) http_->stop();
      if (spool_) {
        auto stopped = std::make_shared<std::promise<void>>();
        asio::post(io_, [this, stopped] { spool_->stop([stopped] { stopped->set_value(); }); });
        EXPECT_EQ(stopped->get_future().wait_for(10s), std::future_status::ready);
      }
      work_.reset();
      loop_.join();
    }
    spool_.reset();
    http_.reset();
    core_.reset();
    box_.reset();
    FaultVfsTest::TearDown();
  }

  uint64_t refused_storage_error() const {
    return core_->counters().refused[static_cast<size_t>(agent::IngestError::kStorageError)].load();
  }

  // id -> how many times the outbox holds it.
  std::map<std::string, int> stored_ids() {
    std::vector<storage::StoredEvent> rows;
    EXPECT_TRUE(box_->read_pending(0, 1000, &rows));
    std::map<std::string, int> ids;
    for (const auto& r : rows) ++ids[r.id];
    return ids;
  }

  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_ = asio::make_work_guard(io_);
  agent::Config config_;
  std::string target_;
  std::unique_ptr<SpoolFolder> spool_folder_;
  std::unique_ptr<agent::IngestCore> core_;  // outlives http_ and spool_
  std::unique_ptr<agent::HttpIngest> http_;
  std::unique_ptr<agent::SpoolIngest> spool_;
  std::thread loop_;
};

std::string sale(const std::string& id, int n) {
  return make_request(id, "sale.completed", json{{"total_cents", 1299}, {"n", n}});
}

TEST_F(WaysInStorageErrorTest, OverHttpAFailedSyncIs503WithRetryAfterAndTheSameEventGoesInLater) {
  HttpAnswer first = post_events(target_, sale("se-1", 1));
  ASSERT_EQ(first.status, 200) << first.raw;
  ASSERT_EQ(first.body.value("seq", 0), 1) << first.raw;

  switches_->fail_sync = true;
  HttpAnswer refused = post_events(target_, sale("se-2", 2));
  EXPECT_EQ(refused.status, 503) << refused.raw;
  EXPECT_EQ(refused.header("retry-after"), "5") << refused.headers;
  EXPECT_EQ(refused.body.value("ok", true), false) << refused.raw;
  EXPECT_EQ(refused.body.value("error", ""), "storage_error") << refused.raw;
  EXPECT_FALSE(refused.body.value("message", "").empty()) << refused.raw;
  EXPECT_FALSE(refused.body.contains("seq")) << refused.raw;
  // While commits fail the health check says so.
  HttpAnswer health = http_call(target_, "GET", "/v1/health", "");
  EXPECT_EQ(health.status, 503) << health.raw;
  EXPECT_EQ(health.body.value("storage", ""), "failed") << health.raw;

  // The disk works again: after the outbox's retry pause the same event is stored, with the
  // next seq (the refusal used none).
  switches_->fail_sync = false;
  HttpAnswer stored;
  for (int i = 0; i < 50; ++i) {
    stored = post_events(target_, sale("se-2", 2));
    if (stored.status == 200) break;
    EXPECT_EQ(stored.status, 503) << stored.raw;
    EXPECT_EQ(stored.body.value("error", ""), "storage_error") << stored.raw;
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_EQ(stored.status, 200) << stored.raw;
  EXPECT_EQ(stored.body.value("id", ""), "se-2") << stored.raw;
  EXPECT_EQ(stored.body.value("seq", 0), 2) << stored.raw;
  EXPECT_EQ(stored.body.value("duplicate", true), false) << "the refused event had been stored";
  EXPECT_EQ(stored_ids(), (std::map<std::string, int>{{"se-1", 1}, {"se-2", 1}}));
}

TEST_F(WaysInStorageErrorTest, ASpoolFileStaysWhileStorageFailsAndEndsInDoneOnceItWorks) {
  switches_->fail_sync = true;
  const std::string file = "sales.ndjson";
  spool_folder_->drop(file, sale("", 1) + "\n" + sale("till-3/r2", 2) + "\n" + sale("", 3) + "\n");
  const auto deadline = Clock::now() + 20s;
  while (refused_storage_error() == 0 && Clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);
  }
  ASSERT_GT(refused_storage_error(), 0u) << "the file's events were never refused";
  // storage_error clears: the file is neither done nor failed, it waits in the folder (the
  // spool thread decides a moment after the refusal reaches it).
  std::this_thread::sleep_for(500ms);
  EXPECT_TRUE(fs::exists(spool_folder_->path() / file));
  EXPECT_TRUE(spool_folder_->empty("done"));
  EXPECT_TRUE(spool_folder_->empty("failed"));
  EXPECT_EQ(spool_->files_done() + spool_->files_failed(), 0u);

  // Commits work again: the next try (5 s after the refusal) takes the file whole.
  switches_->fail_sync = false;
  json r = spool_folder_->await_result("done", file, 30s);
  ASSERT_TRUE(r.is_object());
  EXPECT_EQ(r["totals"],
            json({{"requests", 3}, {"ok", 3}, {"stored", 3}, {"duplicate", 0}, {"refused", 0}}))
      << "nothing of the file was stored while commits failed: " << r.dump();
  // Counted once the move is synced, a moment after it shows.
  const auto counted = Clock::now() + 10s;
  while (spool_->files_done() == 0 && Clock::now() < counted) std::this_thread::sleep_for(20ms);
  EXPECT_EQ(spool_->files_done(), 1u);
  EXPECT_EQ(spool_->files_failed(), 0u);
  EXPECT_FALSE(fs::exists(spool_folder_->path() / file));
  EXPECT_EQ(stored_ids(),
            (std::map<std::string, int>{{file + ":1", 1}, {"till-3/r2", 1}, {file + ":3", 1}}));
}

}  // namespace
}  // namespace edgesync::test
