// The spool folder (ingest.spool_dir) through the real agent and a real broker: files renamed
// into the folder are committed, reach the hub, and end in done/ or failed/ beside a result file
// that gives each request's outcome; the id rule (<file>:<line> when a request has none); the
// names the agent leaves alone, refuses or takes; files left from before a start; and a kill -9
// between the commit and the move (an LD_PRELOAD shim, tests/support/kill_at_sync.c), after
// which the restarted agent ends the file in done/ with each event stored once; a file refused
// for want of room, left in the folder and taken again once there is room; and a file far
// larger than what the agent may hold, read in pieces.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include "tests/harness/proc_stats.h"
#include "tests/support/hub_fixture.h"
#include "tests/support/source_files.h"
#include "tests/support/spool_folder.h"

namespace edgesync::test {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

std::string sale_line(const std::string& id, int n) {
  return make_request(id, "pos.sale", {{"receipt", n}, {"total", 1.5 * n}});
}

// A valid inventory.counted (the shipped contract), with this on_hand.
std::string counted_line(int on_hand) {
  return make_request("", "inventory.counted",
                      {{"count_id", "c1"},
                       {"location_id", "floor"},
                       {"operator_id", "op"},
                       {"lines", json::array({{{"sku", "A"}, {"on_hand", on_hand}}})}});
}

class SpoolTest : public HubFixture {
 protected:
  void SetUp() override {
    HubFixture::SetUp();
    spool_ = dir_->path() / "spool";
    staging_ = dir_->path() / "staging";
    fs::create_directories(staging_);
    agent_->config().extra["ingest"]["spool_dir"] = spool_.string();
  }

  void drop(const std::string& name, const std::string& text) { folder().drop(name, text); }
  json await_result(const std::string& folder_name, const std::string& name,
                    std::chrono::milliseconds timeout = 30s) {
    return folder().await_result(folder_name, name, timeout);
  }
  SpoolFolder folder() const { return SpoolFolder(spool_, staging_); }

  // Every event the outbox holds (pending and kept), as `edgesync outbox --all --json` lists it.
  json outbox_events() {
    CommandResult r = AgentProcess::run_cli(
        {"outbox", "--config", agent_->config_path(), "--all", "--limit", "100000", "--json"});
    EXPECT_TRUE(r.exited_ok()) << r.describe();
    json j = json::parse(r.out, nullptr, false);
    return j.is_array() ? j : json::array();
  }

  // `edgesync dead-letters --json`, keyed by id.
  std::map<std::string, json> dead_letters() {
    CommandResult r = AgentProcess::run_cli(
        {"dead-letters", "--config", agent_->config_path(), "--limit", "1000", "--json"});
    EXPECT_TRUE(r.exited_ok()) << r.describe();
    json j = json::parse(r.out, nullptr, false);
    std::map<std::string, json> by_id;
    if (j.is_array()) {
      for (auto& d : j) by_id[d.value("id", "")] = d;
    }
    return by_id;
  }

  std::map<std::string, int> stored_id_counts() {
    std::map<std::string, int> counts;
    for (const auto& e : outbox_events()) ++counts[e.value("id", "")];
    return counts;
  }

  std::set<std::string> hub_ids() {
    std::set<std::string> ids;
    for (const auto& e : hub_events(hub_->messages(), agent_->config().topic_base())) {
      ids.insert(e.id);
    }
    return ids;
  }

  fs::path spool_;
  fs::path staging_;
};

TEST_F(SpoolTest, AFileRenamedInIsCommittedDeliveredAndMovedToDoneWithItsResult) {
  agent_->start();
  // Line 3 is blank (skipped, still counted), line 4 ends in \r\n, line 5 has no \n.
  const std::string text = sale_line("", 1) + "\n" + sale_line("till-3/r1002", 2) + "\n\n" +
                           sale_line("", 3) + "\r\n" + sale_line("", 4);
  drop("sales-0001.ndjson", text);
  json r = await_result("done", "sales-0001.ndjson");
  ASSERT_TRUE(r.is_object());
  EXPECT_EQ(r["outcome"], "done") << r.dump();
  EXPECT_EQ(r["moved_to"], "done/sales-0001.ndjson");
  EXPECT_EQ(r["format"], "ndjson");
  EXPECT_EQ(r["totals"], json({{"requests", 4}, {"ok", 4}, {"stored", 4}, {"duplicate", 0},
                               {"refused", 0}}))
      << r.dump();
  const std::vector<std::pair<int, std::string>> want = {{1, "sales-0001.ndjson:1"},
                                                         {2, "till-3/r1002"},
                                                         {4, "sales-0001.ndjson:4"},
                                                         {5, "sales-0001.ndjson:5"}};
  ASSERT_EQ(r["lines"].size(), want.size()) << r.dump();
  std::set<int64_t> seqs;
  for (size_t i = 0; i < want.size(); ++i) {
    const json& l = r["lines"][i];
    EXPECT_EQ(l["line"], want[i].first) << l.dump();
    EXPECT_EQ(l["ok"], true) << l.dump();
    EXPECT_EQ(l["id"], want[i].second) << l.dump();
    EXPECT_EQ(l["duplicate"], false) << l.dump();
    seqs.insert(l.value("seq", int64_t{0}));
  }
  EXPECT_EQ(seqs.size(), 4u);
  // The file itself, unchanged, beside its result; nothing left in the folder.
  EXPECT_EQ(read_file(spool_ / "done" / "sales-0001.ndjson"), text);
  EXPECT_FALSE(fs::exists(spool_ / "sales-0001.ndjson"));
  // The hub gets the events under those ids.
  ASSERT_TRUE(hub_->wait_for_distinct_seqs(4, 30s));
  std::set<std::string> expected;
  for (const auto& [line, id] : want) expected.insert(id);
  EXPECT_EQ(hub_ids(), expected);
  // What the technician and the hub see of the folder: status reads it, health counts moves.
  write_file(spool_ / "later.ndjson.tmp", sale_line("", 9) + "\n");  // still being written
  json status = status_json();
  EXPECT_EQ(status["spool"]["waiting"], 0) << status["spool"].dump();
  EXPECT_EQ(status["spool"]["done"], 1) << status["spool"].dump();
  EXPECT_EQ(status["spool"]["failed"], 0) << status["spool"].dump();
  EXPECT_EQ(status["live"]["since_start"]["spool_files"],
            json({{"done", 1}, {"failed", 0}}))
      << status["live"].dump();
  ASSERT_TRUE(agent_->terminate().has_value());
  write_file(spool_ / "next.ndjson", sale_line("", 10) + "\n");
  CommandResult shown = AgentProcess::run_cli({"status", "--config", agent_->config_path()});
  EXPECT_NE(shown.out.find("1 waiting"), std::string::npos) << shown.out;
  EXPECT_NE(shown.out.find("1 in done/, 0 in failed/"), std::string::npos) << shown.out;
}

TEST_F(SpoolTest, RefusedLinesSendTheFileToFailedWithEachErrorAndViolation) {
  agent_->config().max_line_bytes = 2048;
  agent_->config().extra["ingest"]["contracts_dir"] = source_dir() + "/config/contracts/events";
  agent_->config().extra["ingest"]["unknown_types"] = "reject";
  agent_->start();
  const std::string name = "counts.ndjson";
  std::string too_long = make_request("", "pos.sale", {{"note", std::string(3000, 'x')}});
  json own = json::parse(counted_line(5));
  own["id"] = "count-c1/5";
  drop(name, counted_line(3) + "\n" + counted_line(-3) + "\n{not json\n" +
                 make_request("", "till.drawer_opened", {{"till", 3}}) + "\n" + too_long + "\n" +
                 own.dump() + "\n");
  json r = await_result("failed", name);
  ASSERT_TRUE(r.is_object());
  EXPECT_EQ(r["outcome"], "failed");
  EXPECT_EQ(r["reason"], "4 of 6 requests refused") << r.dump();
  EXPECT_EQ(r["totals"]["stored"], 2) << r.dump();
  EXPECT_EQ(r["totals"]["refused"], 4) << r.dump();
  ASSERT_EQ(r["lines"].size(), 6u) << r.dump();
  const json& l = r["lines"];
  EXPECT_EQ(l[0]["ok"], true);
  EXPECT_EQ(l[0]["id"], name + ":1");
  EXPECT_EQ(l[1]["error"], "invalid_event");
  EXPECT_EQ(l[1]["id"], name + ":2") << "a refusal names the id the event was given";
  EXPECT_EQ(l[1]["violations"],
            json::array({{{"path", "/data/lines/0/on_hand"}, {"rule", "minimum"}, {"expected", 0}}}))
      << l[1].dump();
  EXPECT_EQ(l[2]["error"], "bad_json");
  EXPECT_EQ(l[2]["line"], 3);
  EXPECT_EQ(l[3]["error"], "unknown_type");
  EXPECT_EQ(l[4]["error"], "too_large");
  EXPECT_EQ(l[4]["line"], 5);
  EXPECT_EQ(l[4]["id"], name + ":5") << "named by its dead letter's key, though never read whole";
  EXPECT_EQ(l[2]["id"], name + ":3");
  EXPECT_EQ(l[5]["ok"], true);
  EXPECT_EQ(l[5]["id"], "count-c1/5");
  // The accepted requests are committed and delivered; the refused ones are dead letters on
  // the box, never events of the stream.
  ASSERT_TRUE(hub_->wait_for_distinct_seqs(2, 30s));
  EXPECT_EQ(hub_ids(), (std::set<std::string>{name + ":1", "count-c1/5"}));
  auto stored = stored_id_counts();
  EXPECT_EQ(stored.size(), 2u);
  auto dead = dead_letters();
  ASSERT_EQ(dead.size(), 4u);
  const json& invalid = dead[name + ":2"];
  EXPECT_LT(invalid["seq"].get<int64_t>(), 0) << invalid.dump();
  EXPECT_EQ(invalid["refused_on_arrival"], true);
  EXPECT_EQ(invalid["type"], "inventory.counted");
  EXPECT_EQ(invalid["reason"].get<std::string>().rfind(
                "refused on arrival (spool file " + name + " line 2): invalid_event: ", 0),
            0u)
      << invalid.dump();
  EXPECT_NE(invalid["reason"].get<std::string>().find("/data/lines/0/on_hand minimum"),
            std::string::npos)
      << invalid.dump();
  EXPECT_EQ(invalid["data"]["data"]["lines"][0]["on_hand"], -3) << "the line as it came";
  EXPECT_EQ(dead[name + ":3"]["data"], "{not json") << "kept as text";
  EXPECT_NE(dead[name + ":3"]["reason"].get<std::string>().find("line 3): bad_json"),
            std::string::npos);
  EXPECT_NE(dead[name + ":4"]["reason"].get<std::string>().find("unknown_type"),
            std::string::npos);
  EXPECT_NE(dead[name + ":5"]["reason"].get<std::string>().find("line 5): too_large"),
            std::string::npos);
  // The verdict counts them: a producer sends what its contract refuses.
  EXPECT_EQ(status_json()["outbox"]["dead_letters"], 4);
  // The refusals count as the socket's do.
  json status = status_json();
  EXPECT_EQ(status["live"]["since_start"]["refused"]["too_large"], 1) << status.dump(2);
  EXPECT_EQ(status["live"]["since_start"]["refused"]["invalid_event"], 1) << status.dump(2);
}

// A Windows-era till writing Latin-1: the line is not JSON (not UTF-8), is kept as it came, and
// the technician's commands still print it (the bytes they cannot show as U+FFFD).
TEST_F(SpoolTest, ALineThatIsNotUtf8IsADeadLetterTheCommandsCanStillShow) {
  agent_->start();
  const std::string name = "latin1.ndjson";
  drop(name, "{\"type\":\"pos.void\",\"data\":{\"note\":\"caf\xe9\"}}\n");
  json r = await_result("failed", name);
  ASSERT_TRUE(r.is_object());
  EXPECT_EQ(r["lines"][0]["error"], "bad_json") << r.dump();
  auto dead = dead_letters();
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[name + ":1"]["data"], "{\"type\":\"pos.void\",\"data\":{\"note\":\"caf\xef\xbf\xbd\"}}");
  for (bool as_json : {true, false}) {
    std::vector<std::string> args = {"outbox", "show", name + ":1", "--config",
                                     agent_->config_path()};
    if (as_json) args.push_back("--json");
    CommandResult shown = AgentProcess::run_cli(args);
    EXPECT_TRUE(shown.exited_ok()) << shown.describe();
    EXPECT_NE(shown.out.find(as_json ? "\"refused_on_arrival\": true" : "refused on arrival"),
              std::string::npos)
        << shown.out;
    EXPECT_EQ(shown.out.find("the hub has its notice"), std::string::npos) << shown.out;
  }
}

TEST_F(SpoolTest, AJsonArrayIsTakenElementByElementAndABrokenOneIsRefusedWhole) {
  agent_->start();
  json own = json::parse(sale_line("till-3/r7", 7));
  const std::string array = "[\n  " + json::parse(sale_line("", 1)).dump(2) + ",\n  " +
                            own.dump() + ",\n" + sale_line("", 3) + "\n]\n";
  drop("batch.json", array);
  json r = await_result("done", "batch.json");
  ASSERT_TRUE(r.is_object());
  EXPECT_EQ(r["format"], "json_array");
  EXPECT_EQ(r["totals"]["stored"], 3) << r.dump();
  ASSERT_EQ(r["lines"].size(), 3u);
  EXPECT_EQ(r["lines"][0]["id"], "batch.json:1");
  EXPECT_EQ(r["lines"][1]["id"], "till-3/r7");
  EXPECT_EQ(r["lines"][2]["id"], "batch.json:3");
  EXPECT_EQ(r["lines"][2]["line"], 3);

  // Cut short after its first element: nothing of it is committed.
  drop("cut.json", "[" + sale_line("", 1) + ",\n" + sale_line("", 2).substr(0, 20));
  json cut = await_result("failed", "cut.json");
  ASSERT_TRUE(cut.is_object());
  EXPECT_NE(cut.value("reason", "").find("not a well-formed JSON array"), std::string::npos)
      << cut.dump();
  EXPECT_EQ(cut["totals"]["requests"], 0);
  ASSERT_TRUE(hub_->wait_for_distinct_seqs(3, 30s));
  auto stored = stored_id_counts();
  EXPECT_EQ(stored.size(), 3u);
  EXPECT_EQ(stored.count("cut.json:1"), 0u);
}

TEST_F(SpoolTest, DotAndTmpFilesAreLeftAloneUntilRenamedToTheirName) {
  agent_->start();
  ASSERT_TRUE(wait_for_path(spool_ / "done", 10s));
  // Written in place, closed: still not taken, whatever their content.
  write_file(spool_ / ".part.ndjson", sale_line("", 1) + "\n");
  write_file(spool_ / "part2.ndjson.tmp", sale_line("", 1) + "\n");
  // Files are taken in the order they arrive: once this one is done, the two above were seen.
  drop("after.ndjson", sale_line("", 9) + "\n");
  ASSERT_TRUE(await_result("done", "after.ndjson").is_object());
  EXPECT_TRUE(fs::exists(spool_ / ".part.ndjson"));
  EXPECT_TRUE(fs::exists(spool_ / "part2.ndjson.tmp"));
  for (const auto& e : fs::directory_iterator(spool_ / "done")) {
    EXPECT_EQ(e.path().filename().string().find("part"), std::string::npos) << e.path();
  }
  EXPECT_TRUE(fs::is_empty(spool_ / "failed"));

  fs::rename(spool_ / ".part.ndjson", spool_ / "part.ndjson");
  json r = await_result("done", "part.ndjson");
  ASSERT_TRUE(r.is_object());
  EXPECT_EQ(r["lines"][0]["id"], "part.ndjson:1");
  EXPECT_TRUE(fs::exists(spool_ / "part2.ndjson.tmp"));
  auto stored = stored_id_counts();
  EXPECT_EQ(stored, (std::map<std::string, int>{{"after.ndjson:1", 1}, {"part.ndjson:1", 1}}));
}

TEST_F(SpoolTest, FilesLeftInTheFolderBeforeAStartAreTaken) {
  fs::create_directories(spool_);
  write_file(spool_ / "left-1.ndjson", sale_line("", 1) + "\n" + sale_line("", 2) + "\n");
  write_file(spool_ / "left-2.ndjson", sale_line("", 3) + "\n");
  agent_->start();
  json a = await_result("done", "left-1.ndjson");
  json b = await_result("done", "left-2.ndjson");
  ASSERT_TRUE(a.is_object() && b.is_object());
  EXPECT_EQ(a["totals"]["stored"], 2);
  EXPECT_EQ(b["totals"]["stored"], 1);
  // In name order: the first file's events come first.
  EXPECT_LT(a["lines"][1]["seq"].get<int64_t>(), b["lines"][0]["seq"].get<int64_t>());
  ASSERT_TRUE(hub_->wait_for_distinct_seqs(3, 30s));
  EXPECT_EQ(hub_ids(), (std::set<std::string>{"left-1.ndjson:1", "left-1.ndjson:2",
                                              "left-2.ndjson:1"}));
}

TEST_F(SpoolTest, AReusedNameGoesToFailedAndNothingOfItIsStored) {
  agent_->start();
  const std::string first = sale_line("", 1) + "\n" + sale_line("", 2) + "\n";
  drop("daily.ndjson", first);
  ASSERT_TRUE(await_result("done", "daily.ndjson").is_object());
  // Another day's file under the same name: its lines would take the same ids.
  drop("daily.ndjson", sale_line("", 5) + "\n" + sale_line("", 6) + "\n" + sale_line("", 7) + "\n");
  std::string moved;
  const auto deadline = Clock::now() + 30s;
  while (moved.empty() && Clock::now() < deadline) {
    for (const auto& e : fs::directory_iterator(spool_ / "failed")) {
      const std::string n = e.path().filename().string();
      if (n.rfind("daily.ndjson.", 0) == 0 && n.find(".result.json") == std::string::npos) moved = n;
    }
    if (moved.empty()) std::this_thread::sleep_for(20ms);
  }
  ASSERT_FALSE(moved.empty()) << "the second daily.ndjson never reached failed/";
  json r = await_result("failed", moved);
  ASSERT_TRUE(r.is_object());
  EXPECT_EQ(r["file"], "daily.ndjson");
  EXPECT_NE(r.value("reason", "").find("the name was used before (done/daily.ndjson)"),
            std::string::npos)
      << r.dump();
  EXPECT_EQ(r["totals"]["requests"], 0);
  EXPECT_EQ(read_file(spool_ / "done" / "daily.ndjson"), first) << "the first file was replaced";
  EXPECT_FALSE(fs::exists(spool_ / "daily.ndjson"));
  EXPECT_EQ(stored_id_counts(),
            (std::map<std::string, int>{{"daily.ndjson:1", 1}, {"daily.ndjson:2", 1}}));
}

TEST_F(SpoolTest, FilesTheAgentMayNotReadGoToFailedWithTheReason) {
  agent_->start();
  // A symbolic link to a file of valid events: the agent does not follow it.
  write_file(staging_ / "target.ndjson", sale_line("", 1) + "\n");
  fs::create_symlink(staging_ / "target.ndjson", staging_ / "link.ndjson");
  fs::rename(staging_ / "link.ndjson", spool_ / "link.ndjson");
  json link = await_result("failed", "link.ndjson");
  EXPECT_NE(link.value("reason", "").find("symbolic link"), std::string::npos) << link.dump();
  // A FIFO: opening it must not hang the spool.
  ASSERT_EQ(::mkfifo((staging_ / "pipe.ndjson").c_str(), 0660), 0);
  fs::rename(staging_ / "pipe.ndjson", spool_ / "pipe.ndjson");
  json pipe = await_result("failed", "pipe.ndjson");
  EXPECT_NE(pipe.value("reason", "").find("not a regular file"), std::string::npos) << pipe.dump();
  // A name the ids cannot be made from.
  const std::string long_name = std::string(120, 'n') + ".ndjson";
  write_file(staging_ / long_name, sale_line("", 1) + "\n");
  fs::rename(staging_ / long_name, spool_ / long_name);
  std::string moved;
  const auto deadline = Clock::now() + 30s;
  while (moved.empty() && Clock::now() < deadline) {
    for (const auto& e : fs::directory_iterator(spool_ / "failed")) {
      const std::string n = e.path().filename().string();
      if (n.rfind(long_name + ".", 0) == 0 && n.find(".result.json") == std::string::npos) moved = n;
    }
    if (moved.empty()) std::this_thread::sleep_for(20ms);
  }
  ASSERT_FALSE(moved.empty());
  json named = await_result("failed", moved);
  EXPECT_NE(named.value("reason", "").find("longer than 100"), std::string::npos) << named.dump();
  // Permissions: root reads a mode-000 file anyway, so this part needs another user.
  if (::geteuid() != 0) {
    write_file(staging_ / "locked.ndjson", sale_line("", 1) + "\n");
    fs::permissions(staging_ / "locked.ndjson", fs::perms::none);
    fs::rename(staging_ / "locked.ndjson", spool_ / "locked.ndjson");
    json locked = await_result("failed", "locked.ndjson");
    EXPECT_NE(locked.value("reason", "").find("cannot open it"), std::string::npos)
        << locked.dump();
  } else {
    std::cout << "[ note ] running as root: the unreadable-file case (mode 000) is not run\n";
  }
  EXPECT_TRUE(stored_id_counts().empty()) << "an unusable file's events were stored";
}

TEST_F(SpoolTest, AFileRefusedForWantOfRoomStaysAndIsTakenAgainOnceThereIsRoom) {
  // A 1 MiB outbox, the hub away: a 1.3 MB file fills it part way through.
  agent_->config().max_bytes = 1 << 20;
  broker_->stop();
  agent_->start();
  constexpr int kLines = 160;
  const std::string blob(8000, 'x');
  std::string text;
  for (int n = 1; n <= kLines; ++n) {
    text += make_request("", "inventory.adjusted", {{"n", n}, {"blob", blob}}) + "\n";
  }
  drop("backlog.ndjson", text);
  // outbox_full clears: not failed/, left in the folder for a later try.
  const auto deadline = Clock::now() + 30s;
  while (agent_->log().find("spool file backlog.ndjson: ") == std::string::npos &&
         Clock::now() < deadline) {
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_NE(agent_->log().find("taken again in 5 s"), std::string::npos) << agent_->log();
  EXPECT_TRUE(fs::exists(spool_ / "backlog.ndjson"));
  EXPECT_TRUE(fs::is_empty(spool_ / "failed"));
  EXPECT_TRUE(fs::is_empty(spool_ / "done"));

  // The hub back, delivery makes room; a later try takes the rest.
  broker_->start();
  json r = await_result("done", "backlog.ndjson", 120s);
  ASSERT_TRUE(r.is_object());
  EXPECT_EQ(r["totals"]["ok"], kLines) << r["totals"].dump();
  EXPECT_GT(r["totals"]["duplicate"], 0) << "the first try's events were not recognized";
  EXPECT_GT(r["totals"]["stored"], 0);
  ASSERT_TRUE(hub_->wait_for_distinct_seqs(kLines, 60s));
  EXPECT_TRUE(first_arrivals_gap_free(events()));
  EXPECT_EQ(hub_ids().size(), static_cast<size_t>(kLines)) << "an event reached the hub twice";
}

TEST_F(SpoolTest, ABigFileIsReadInPiecesNotIntoMemory) {
  if (const char* w = std::getenv("EDGESYNC_BIN_WRAPPER"); w && *w) {
    GTEST_SKIP() << "the agent runs under " << w << ": its peak memory is the emulator's";
  }
  agent_->start();
  // Delivery held: what is measured is ingest, not the publisher's buffers.
  CommandResult hold = AgentProcess::run_cli({"outbox", "hold", "--config", agent_->config_path()});
  ASSERT_TRUE(hold.exited_ok()) << hold.describe();
  // 6,000 events of 16 KB: a 96 MB file, far more than the agent may hold at once.
  constexpr int kLines = 6000;
  const std::string filler(16 * 1024, 'x');
  {
    std::ofstream out(staging_ / "big.ndjson");
    for (int n = 1; n <= kLines; ++n) {
      out << make_request("", "pos.sale", {{"receipt", n}, {"note", filler}}) << "\n";
    }
  }
  const int64_t before_kb = proc_status_kb(agent_->pid(), "VmHWM");
  ASSERT_GT(before_kb, 0);
  fs::rename(staging_ / "big.ndjson", spool_ / "big.ndjson");
  json r = await_result("done", "big.ndjson", 180s);
  ASSERT_TRUE(r.is_object());
  EXPECT_EQ(r["totals"]["stored"], kLines);
  EXPECT_EQ(r["lines"].size(), static_cast<size_t>(kLines));
  const int64_t grown_mb = (proc_status_kb(agent_->pid(), "VmHWM") - before_kb) / 1024;
  std::cout << "[ figures ] a 96 MB file raised the agent's peak memory by " << grown_mb << " MB\n";
  EXPECT_LT(grown_mb, 48) << "the agent held a large part of the file at once";
}

// The moments between "every line committed" and "the move is durable", in the order they
// come: the result's sync, the sync of done/ after the result's rename, the sync of done/ after
// the file's rename.
struct KillPoint {
  std::string match;  // which syncs count (the shim's EDGESYNC_KILL_SYNC_MATCH)
  int at;
  bool after;
  std::string what;
};

TEST_F(SpoolTest, AKillBetweenCommitAndMoveEndsInDoneWithEachEventStoredOnce) {
  if (const char* w = std::getenv("EDGESYNC_BIN_WRAPPER"); w && *w) {
    GTEST_SKIP() << "the agent runs under " << w << ": the shim would load into the emulator";
  }
  const std::vector<KillPoint> points = {
      {".result.tmp$", 1, false, "before the result file is synced"},
      {"/spool/done$", 1, true, "the result in place, the file not yet moved"},
      {"/spool/done$", 2, true, "the file moved, the spool folder not yet synced"},
  };
  constexpr int kLines = 5;
  size_t delivered = 0;
  for (size_t i = 0; i < points.size(); ++i) {
    const KillPoint& kp = points[i];
    SCOPED_TRACE(kp.what);
    const std::string name = "crash-" + std::to_string(i) + ".ndjson";
    const std::string sync_log = (dir_->path() / ("syncs-" + std::to_string(i) + ".log")).string();
    std::vector<std::string> env = preload_environment(EDGESYNC_KILL_AT_SYNC_SO);
    env.insert(env.end(), {"EDGESYNC_KILL_SYNC_MATCH=" + kp.match,
                           "EDGESYNC_KILL_AT_SYNC=" + std::to_string(kp.at),
                           std::string("EDGESYNC_KILL_WHEN=") + (kp.after ? "after" : "before"),
                           "EDGESYNC_KILL_SYNC_LOG=" + sync_log});
    agent_->set_environment(env);
    agent_->start();
    std::string text;
    for (int n = 1; n <= kLines; ++n) text += sale_line("", n) + "\n";
    drop(name, text);
    const auto deadline = Clock::now() + 30s;
    while (agent_->running() && Clock::now() < deadline) std::this_thread::sleep_for(20ms);
    ASSERT_FALSE(agent_->running()) << "the shim never killed the agent";
    ASSERT_NE(read_file(sync_log).find("kill "), std::string::npos) << read_file(sync_log);
    // Where the kill left the file.
    const bool moved = fs::exists(spool_ / "done" / name);
    EXPECT_EQ(moved, i == 2) << "after the kill the file is " << (moved ? "in done/" : "in the spool");

    agent_->set_environment({});
    agent_->start();
    json r = await_result("done", name);
    ASSERT_TRUE(r.is_object());
    EXPECT_EQ(r["outcome"], "done");
    EXPECT_EQ(r["totals"]["ok"], kLines) << r.dump();
    // Taken again after the kill: its events were committed before, and are answered so.
    EXPECT_EQ(r["totals"]["duplicate"], i == 2 ? 0 : kLines) << r.dump();
    EXPECT_FALSE(fs::exists(spool_ / name));
    auto stored = stored_id_counts();
    for (int n = 1; n <= kLines; ++n) {
      EXPECT_EQ(stored[name + ":" + std::to_string(n)], 1) << name << ":" << n;
    }
    delivered += kLines;
    ASSERT_TRUE(hub_->wait_for_distinct_seqs(delivered, 30s));
    // A stop with the spool running ends cleanly, and in time.
    const std::optional<int> st = agent_->terminate();
    ASSERT_TRUE(st.has_value()) << "the agent did not stop on SIGTERM";
    EXPECT_TRUE(WIFEXITED(*st) && WEXITSTATUS(*st) == 0) << *st;
  }
  EXPECT_EQ(outbox_events().size(), delivered) << "an event was stored twice";
}

TEST_F(SpoolTest, AKillAfterARefusalIsCommittedKeepsItOnceAndTheFileEndsInFailed) {
  if (const char* w = std::getenv("EDGESYNC_BIN_WRAPPER"); w && *w) {
    GTEST_SKIP() << "the agent runs under " << w << ": the shim would load into the emulator";
  }
  agent_->config().extra["ingest"]["contracts_dir"] = source_dir() + "/config/contracts/events";
  const std::string name = "refused-crash.ndjson";
  const std::string sync_log = (dir_->path() / "syncs.log").string();
  std::vector<std::string> env = preload_environment(EDGESYNC_KILL_AT_SYNC_SO);
  // Killed as the result file is about to be synced: the refusal and the event are committed,
  // the file is still in the folder.
  env.insert(env.end(), {"EDGESYNC_KILL_SYNC_MATCH=.result.tmp$", "EDGESYNC_KILL_AT_SYNC=1",
                         "EDGESYNC_KILL_WHEN=before", "EDGESYNC_KILL_SYNC_LOG=" + sync_log});
  agent_->set_environment(env);
  agent_->start();
  drop(name, counted_line(3) + "\n" + counted_line(-1) + "\n");
  const auto deadline = Clock::now() + 30s;
  while (agent_->running() && Clock::now() < deadline) std::this_thread::sleep_for(20ms);
  ASSERT_FALSE(agent_->running()) << "the shim never killed the agent";
  ASSERT_TRUE(fs::exists(spool_ / name)) << "the kill came before the move";
  EXPECT_EQ(dead_letters().size(), 1u) << "the refusal was committed before the result";

  agent_->set_environment({});
  agent_->start();
  json r = await_result("failed", name);
  ASSERT_TRUE(r.is_object());
  EXPECT_EQ(r["totals"]["refused"], 1) << r.dump();
  EXPECT_EQ(r["totals"]["duplicate"], 1) << r.dump();
  auto dead = dead_letters();
  ASSERT_EQ(dead.size(), 1u) << "taken again, the refused line is not recorded twice";
  EXPECT_EQ(dead.begin()->first, name + ":2");
  EXPECT_EQ(stored_id_counts()[name + ":1"], 1);
}

}  // namespace
}  // namespace edgesync::test
