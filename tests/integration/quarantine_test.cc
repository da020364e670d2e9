// A damaged or foreign outbox at start, with the real agent binary: the agent starts instead of
// exiting (systemd used to restart it every 5 s for ever), serves producers and the hub from a
// fresh outbox, keeps the old file byte for byte under its quarantined name, logs the incident
// and shows it in `edgesync status` (text and --json), also after a restart.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "tests/support/hub_fixture.h"

namespace edgesync::test {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
namespace fs = std::filesystem;

std::string bytes_of(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void put_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

std::vector<std::string> quarantined_files(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().filename().string().find("outbox.db.quarantined-") == 0) {
      out.push_back(e.path().string());
    }
  }
  return out;
}

class QuarantineAgentTest : public HubFixture {
 protected:
  // The agent serves: a new event is stored from seq 1 and reaches the hub.
  void expect_serving_from_seq_1() {
    Producer p(agent_->socket_path());
    json r = p.request(make_request("fresh-1", "sale.completed", json{{"total_cents", 250}}), 20s);
    ASSERT_EQ(r.value("ok", false), true) << r.dump();
    EXPECT_EQ(r.value("seq", 0), 1) << r.dump();
    ASSERT_TRUE(hub_->wait_for_distinct_seqs(1, 30s)) << agent_->log();
    auto evs = events();
    ASSERT_FALSE(evs.empty());
    EXPECT_EQ(evs.back().id, "fresh-1");
  }

  // `edgesync status --json` and the text form both show the incident.
  void expect_status_shows(const std::string& kept, const std::string& reason_part) {
    json st = status_json();
    ASSERT_TRUE(st.contains("outbox") && st["outbox"].contains("quarantine")) << st.dump(2);
    const json& q = st["outbox"]["quarantine"];
    EXPECT_EQ(q.value("file", ""), kept) << st.dump(2);
    EXPECT_NE(q.value("reason", "").find(reason_part), std::string::npos) << st.dump(2);
    EXPECT_FALSE(q.value("at", "").empty());
    auto text = AgentProcess::run_cli({"status", "--config", agent_->config_path()});
    EXPECT_NE(text.out.find("quarantined"), std::string::npos) << text.describe();
    EXPECT_NE(text.out.find(kept), std::string::npos) << text.describe();
  }
};

TEST_F(QuarantineAgentTest, RandomBytesAtTheOutboxPath) {
  const std::string db = agent_->config().storage_path;
  std::mt19937 rng(7);
  std::string junk(32 * 1024, '\0');
  for (auto& c : junk) c = static_cast<char>(rng());
  put_bytes(db, junk);

  agent_->start();
  ASSERT_NO_FATAL_FAILURE(expect_serving_from_seq_1());
  auto kept = quarantined_files(dir_->path());
  ASSERT_EQ(kept.size(), 1u) << agent_->log();
  EXPECT_EQ(bytes_of(kept[0]), junk);
  EXPECT_NE(agent_->log().find("outbox quarantined"), std::string::npos) << agent_->log();
  ASSERT_NO_FATAL_FAILURE(expect_status_shows(kept[0], "damaged"));

  // A restart keeps the fresh outbox (seq goes on) and still reports the incident.
  ASSERT_TRUE(agent_->terminate().has_value());
  agent_->start();
  Producer p(agent_->socket_path());
  json r = p.request(make_request("fresh-2", "sale.completed", json{{"total_cents", 1}}), 20s);
  EXPECT_EQ(r.value("seq", 0), 2) << r.dump();
  EXPECT_EQ(quarantined_files(dir_->path()).size(), 1u);
  ASSERT_NO_FATAL_FAILURE(expect_status_shows(kept[0], "damaged"));
}

// The outbox the agent itself wrote, 300 events pending (hub away), one page damaged while the
// agent was stopped: found by quick_check at the next start.
TEST_F(QuarantineAgentTest, OneDamagedPageInTheAgentsOwnOutbox) {
  const std::string db = agent_->config().storage_path;
  broker_->stop();
  agent_->start();
  {
    Producer p(agent_->socket_path());
    std::vector<std::string> lines;
    for (int i = 0; i < 300; ++i) {
      lines.push_back(make_request(
          "old-" + std::to_string(i), "sale.completed",
          json{{"m", "MARK-" + std::to_string(100000 + i)}, {"pad", std::string(200, 'p')}}));
    }
    auto replies = p.send_all(lines, 60s);
    ASSERT_EQ(replies.size(), lines.size());
    for (const auto& r : replies) ASSERT_EQ(r.value("ok", false), true) << r.dump();
  }
  ASSERT_TRUE(agent_->terminate().has_value());
  ASSERT_FALSE(fs::exists(db + "-wal") && fs::file_size(db + "-wal") > 0)
      << "a clean stop leaves everything in the database file";
  std::string bytes = bytes_of(db);
  const size_t at = bytes.find("MARK-100150");
  ASSERT_NE(at, std::string::npos);
  const size_t page = at / 1024 * 1024;
  for (size_t i = 0; i < 8; ++i) bytes[page + i] = static_cast<char>(0xA5);
  put_bytes(db, bytes);

  broker_->start();
  agent_->start();
  ASSERT_NO_FATAL_FAILURE(expect_serving_from_seq_1());
  auto kept = quarantined_files(dir_->path());
  ASSERT_EQ(kept.size(), 1u) << agent_->log();
  EXPECT_EQ(bytes_of(kept[0]), bytes) << "the quarantined file must be the old bytes";
  ASSERT_NO_FATAL_FAILURE(expect_status_shows(kept[0], "quick_check"));
  json st = status_json();
  EXPECT_EQ(st["outbox"].value("pending", -1), 0) << st.dump(2);
  EXPECT_FALSE(st["outbox"]["quarantine"]["incarnation"].is_null()) << st.dump(2);
  EXPECT_NE(st["outbox"]["quarantine"]["incarnation"], st["outbox"]["incarnation"]);
}

}  // namespace
}  // namespace edgesync::test
