// The edgesync command line: `send` from a file and stdin, `status --json` with the agent
// running and stopped, tools that work without the TLS files, and config errors naming the
// offending key.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <sstream>
#include <thread>

#include "tests/support/hub_fixture.h"
#include "tests/support/workload.h"

namespace edgesync::test {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

class CliTest : public HubFixture {};

std::vector<json> parse_lines(const std::string& out) {
  std::vector<json> v;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    auto j = json::parse(line, nullptr, false);
    v.push_back(j.is_discarded() ? json(line) : j);
  }
  return v;
}

TEST_F(CliTest, SendPrintsOneReplyPerEventFromFileAndStdin) {
  agent_->start();
  auto evs = make_events("cli", 20, /*no_id_every=*/5);
  std::string file_text;
  for (const auto& e : evs) file_text += e.line + "\n";
  const std::string file = dir_->file("events.ndjson");
  write_file(file, file_text);

  auto r = AgentProcess::run_cli({"send", "--config", agent_->config_path(), file}, "", 30s);
  ASSERT_TRUE(r.exited_ok()) << r.describe();
  auto replies = parse_lines(r.out);
  ASSERT_EQ(replies.size(), evs.size()) << r.describe();
  for (size_t i = 0; i < evs.size(); ++i) {
    SCOPED_TRACE(evs[i].line);
    ASSERT_TRUE(replies[i].is_object()) << replies[i].dump();
    EXPECT_EQ(replies[i].value("ok", false), true) << replies[i].dump();
    EXPECT_EQ(replies[i].value("seq", int64_t{-1}), static_cast<int64_t>(i + 1))
        << replies[i].dump();
    if (!evs[i].id.empty()) {
      EXPECT_EQ(replies[i].value("id", std::string()), evs[i].id) << replies[i].dump();
    } else {
      EXPECT_FALSE(replies[i].value("id", std::string()).empty()) << replies[i].dump();
    }
  }

  // From stdin, with one bad line among good ones: replies stay one per line, in order.
  const std::string stdin_text =
      make_request("in-1", "sale.completed", json{{"n", 1}}) + "\n" + "{broken\n" +
      make_request("in-2", "sale.completed", json{{"n", 2}}) + "\n" + evs[0].line + "\n";
  auto r2 = AgentProcess::run_cli({"send", "--config", agent_->config_path()}, stdin_text, 30s);
  ASSERT_FALSE(r2.timed_out) << r2.describe();
  EXPECT_TRUE(WIFEXITED(r2.status) && WEXITSTATUS(r2.status) == 1)
      << "send must exit 1 when an event was refused: " << r2.describe();
  auto replies2 = parse_lines(r2.out);
  ASSERT_EQ(replies2.size(), 4u) << r2.describe();
  EXPECT_EQ(replies2[0].value("seq", int64_t{-1}), 21) << replies2[0].dump();
  EXPECT_EQ(replies2[1].value("ok", true), false) << replies2[1].dump();
  EXPECT_EQ(replies2[1].value("error", std::string()), "bad_json") << replies2[1].dump();
  EXPECT_EQ(replies2[2].value("seq", int64_t{-1}), 22) << replies2[2].dump();
  EXPECT_EQ(replies2[3].value("duplicate", false), true) << replies2[3].dump();
  EXPECT_EQ(replies2[3].value("seq", int64_t{-1}), 1) << replies2[3].dump();

  ASSERT_TRUE(hub_->wait_for_distinct_seqs(22, 30s)) << hub_->distinct_seq_count();
  int64_t highest = 0;
  ASSERT_TRUE(first_arrivals_gap_free(events(), &highest));
  EXPECT_EQ(highest, 22);
}

TEST_F(CliTest, StatusJsonWhileRunningAndAfterStop) {
  agent_->start();
  auto evs = make_events("st", 10);
  {
    Producer p(agent_->socket_path());
    ASSERT_EQ(p.send_all(lines_of(evs), 30s).size(), evs.size());
  }
  ASSERT_TRUE(hub_->wait_for_distinct_seqs(10, 30s));

  // The agent may record the last PUBACK a moment after the hub saw the message.
  json st;
  const auto deadline = std::chrono::steady_clock::now() + 15s;
  do {
    st = status_json();
    if (st.is_object() && st.contains("outbox") &&
        st["outbox"].value("last_delivered_seq", int64_t{0}) == 10 && st.contains("hub") &&
        st["hub"].value("state", "") == "connected") {
      break;
    }
    std::this_thread::sleep_for(200ms);
  } while (std::chrono::steady_clock::now() < deadline);
  SCOPED_TRACE("status --json while running: " + st.dump());
  ASSERT_TRUE(st.is_object());
  EXPECT_EQ(st.value("agent_running", false), true);
  ASSERT_TRUE(st.contains("hub") && st["hub"].is_object());
  EXPECT_EQ(st["hub"].value("state", ""), "connected");
  ASSERT_TRUE(st.contains("outbox") && st["outbox"].is_object());
  EXPECT_EQ(st["outbox"].value("pending", int64_t{-1}), 0);
  EXPECT_EQ(st["outbox"].value("last_delivered_seq", int64_t{-1}), 10);
  EXPECT_EQ(st["outbox"].value("next_seq", int64_t{-1}), 11);
  EXPECT_TRUE(st["outbox"].contains("oldest_pending_age_s") &&
              st["outbox"]["oldest_pending_age_s"].is_null());

  auto exit_status = agent_->terminate(20s);
  ASSERT_TRUE(exit_status.has_value());
  EXPECT_TRUE(WIFEXITED(*exit_status) && WEXITSTATUS(*exit_status) == 0)
      << describe_wait_status(*exit_status);

  json after = status_json();
  SCOPED_TRACE("status --json after stop: " + after.dump());
  ASSERT_TRUE(after.is_object());
  EXPECT_EQ(after.value("agent_running", true), false);
  ASSERT_TRUE(after.contains("hub") && after["hub"].is_object());
  EXPECT_EQ(after["hub"].value("state", ""), "disconnected");
  ASSERT_TRUE(after.contains("outbox") && after["outbox"].is_object());
  EXPECT_EQ(after["outbox"].value("pending", int64_t{-1}), 0);
  EXPECT_EQ(after["outbox"].value("last_delivered_seq", int64_t{-1}), 10);
  EXPECT_EQ(after["outbox"].value("next_seq", int64_t{-1}), 11);
}

// Each bad config: `edgesync agent` exits non-zero (promptly) and names the key path.
// A producer's or an operator's account may not read the device's TLS key: send and status
// must work with the agent's config anyway; the agent and check-config must not.
TEST_F(CliTest, ToolsDoNotNeedTheTlsFilesTheAgentDoes) {
  agent_->start();
  json cfg = agent_->config().to_json();
  cfg["hub"]["ca_file"] = dir_->file("unreadable/ca.pem");
  cfg["hub"]["cert_file"] = dir_->file("unreadable/cert.pem");
  cfg["hub"]["key_file"] = dir_->file("unreadable/key.pem");
  const std::string path = dir_->file("no-tls-files.json");
  write_file(path, cfg.dump(2) + "\n");

  auto sent = AgentProcess::run_cli(
      {"send", "--config", path}, make_request("tls-less", "sale.completed", json::object()) + "\n");
  EXPECT_TRUE(sent.exited_ok()) << sent.describe();
  auto replies = parse_lines(sent.out);
  ASSERT_EQ(replies.size(), 1u) << sent.describe();
  EXPECT_EQ(replies[0].value("ok", false), true) << replies[0].dump();

  auto status = AgentProcess::run_cli({"status", "--config", path, "--json"});
  // Its exit status is the verdict (0-2), never a failure to report.
  EXPECT_TRUE(status.exit_code() >= 0 && status.exit_code() <= 2) << status.describe();
  json st = json::parse(status.out, nullptr, false);
  ASSERT_TRUE(st.is_object()) << status.describe();
  EXPECT_EQ(st["outbox"].value("next_seq", int64_t{0}), 2) << st.dump();

  for (const char* sub : {"check-config", "agent"}) {
    auto r = AgentProcess::run_cli({sub, "--config", path}, "", 15s);
    EXPECT_TRUE(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 2) << sub << ": " << r.describe();
    EXPECT_NE(r.err.find("hub.key_file: cannot read"), std::string::npos)
        << sub << ": " << r.describe();
  }
}

TEST_F(CliTest, ConfigErrorsExitNonZeroAndNameTheKey) {
  struct Case {
    std::string name;
    std::function<void(json&)> edit;
    std::string expect_in_output;
  };
  const std::vector<Case> cases = {
      {"uri missing", [](json& c) { c["hub"].erase("uri"); }, "hub.uri"},
      {"uri not a string", [](json& c) { c["hub"]["uri"] = 8883; }, "hub.uri"},
      {"unknown key", [](json& c) { c["storage"]["colour"] = "blue"; }, "storage.colour"},
      {"unknown section", [](json& c) { c["extras"] = json::object(); }, "extras"},
      {"bad device id", [](json& c) { c["device"]["id"] = "pos 01/x"; }, "device.id"},
      {"negative max_line_bytes", [](json& c) { c["ingest"]["max_line_bytes"] = -5; },
       "ingest.max_line_bytes"},
      {"initial_ms as string", [](json& c) { c["retry"]["initial_ms"] = "100"; },
       "retry.initial_ms"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    json cfg = agent_->config().to_json();
    c.edit(cfg);
    const std::string path = dir_->file("bad-" + std::to_string(&c - cases.data()) + ".json");
    write_file(path, "// " + c.name + "\n" + cfg.dump(2) + "\n");
    auto r = AgentProcess::run_cli({"agent", "--config", path}, "", 15s);
    EXPECT_FALSE(r.timed_out) << "agent kept running with a bad config: " << r.describe();
    EXPECT_FALSE(r.exited_ok()) << r.describe();
    EXPECT_TRUE(WIFEXITED(r.status)) << "should exit, not crash: " << r.describe();
    EXPECT_NE((r.out + r.err).find(c.expect_in_output), std::string::npos)
        << "output should name " << c.expect_in_output << ": " << r.describe();
  }

  // Not JSON at all.
  const std::string broken = dir_->file("broken.json");
  write_file(broken, "{ \"device\": { \"id\": \"pos-01\", ");
  auto r = AgentProcess::run_cli({"agent", "--config", broken}, "", 15s);
  EXPECT_FALSE(r.timed_out) << r.describe();
  EXPECT_FALSE(r.exited_ok()) << r.describe();
  EXPECT_FALSE((r.out + r.err).empty()) << "a config syntax error needs a message";

  // The good config (with // comments) still starts.
  agent_->start();
  EXPECT_TRUE(agent_->running());
}

}  // namespace
}  // namespace edgesync::test
