// Event contracts through the real agent (the shipped folder, unknown types refused): every
// fixture over the ingest socket gets the reply its fixture names, violations included; the hub
// gets type and version in the payload and as user properties; and the integrator's commands
// (contracts list, check, diff) on the same files.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/support/hub_fixture.h"
#include "tests/support/source_files.h"

namespace edgesync::test {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

class ContractsTest : public HubFixture {
 protected:
  void SetUp() override {
    HubFixture::SetUp();
    agent_->config().extra["ingest"] = {
        {"contracts_dir", source_dir() + "/config/contracts/events"}, {"unknown_types", "reject"}};
  }

  CommandResult cli(std::vector<std::string> args, const std::string& input = "") {
    args.insert(args.end(), {"--config", agent_->config_path()});
    return AgentProcess::run_cli(args, input, 30s);
  }
};

TEST_F(ContractsTest, EveryFixtureOverTheSocketGetsTheReplyItsFixtureNames) {
  agent_->start();
  Producer producer(agent_->socket_path());
  const std::string fixtures = source_dir() + "/tests/contracts/fixtures";
  size_t valid = 0, invalid = 0;
  for (const auto& entry : std::filesystem::directory_iterator(fixtures)) {
    const std::string name = entry.path().filename().string();  // <type>.v<N>.json
    const std::string stem = name.substr(0, name.size() - 5);
    const std::string type = stem.substr(0, stem.rfind(".v"));
    const int v = std::stoi(stem.substr(stem.rfind(".v") + 2));
    const json f = read_json(entry.path().string());
    ASSERT_TRUE(f.is_object()) << name;
    for (const auto& ok : f["valid"]) {
      const std::string id = stem + "/" + std::to_string(valid++);
      json req = {{"id", id}, {"type", type}, {"v", v}, {"data", ok["data"]}};
      json r = producer.request(req.dump(), 20s);
      EXPECT_EQ(r.value("ok", false), true) << name << ": " << r.dump();
      EXPECT_EQ(r["v"], v) << r.dump();
    }
    for (const auto& bad : f["invalid"]) {
      ++invalid;
      json req = {{"type", type}, {"v", v}, {"data", bad["data"]}};
      json r = producer.request(req.dump(), 20s);
      SCOPED_TRACE(name + ": " + bad.value("name", ""));
      EXPECT_EQ(r.value("ok", true), false) << r.dump();
      EXPECT_EQ(r.value("error", ""), "invalid_event") << r.dump();
      json got = r.value("violations", json::array());
      json want = bad["violations"];
      auto order = [](const json& a, const json& b) { return a.dump() < b.dump(); };
      std::sort(got.begin(), got.end(), order);
      std::sort(want.begin(), want.end(), order);
      EXPECT_EQ(got, want) << r.dump();
    }
  }
  EXPECT_GE(valid, 20u);
  EXPECT_GE(invalid, 40u);

  // Unknown types are refused by default, with their own code.
  json r = producer.request(R"({"type":"till.drawer_opened","data":{"till":3}})", 20s);
  EXPECT_EQ(r.value("error", ""), "unknown_type") << r.dump();

  // The hub: type and version in the payload and as user properties, on the type's topic.
  const std::string base = agent_->config().topic_base();
  ASSERT_TRUE(hub_->wait_for_distinct_seqs(valid, 30s));
  bool seen_v2 = false;
  for (const auto& e : hub_events(hub_->messages(), base)) {
    const std::string type = e.payload.value("type", "");
    EXPECT_EQ(e.topic, base + "/events/" + type);
    ASSERT_TRUE(e.payload["v"].is_number_integer()) << e.message.payload;
    std::map<std::string, std::string> props(e.message.user_properties.begin(),
                                             e.message.user_properties.end());
    EXPECT_EQ(props["type"], type);
    EXPECT_EQ(props["v"], std::to_string(e.payload["v"].get<int>()));
    seen_v2 |= type == "pos.sale.completed" && e.payload["v"] == 2;
  }
  EXPECT_TRUE(seen_v2);
}

TEST_F(ContractsTest, TheIntegratorsCommandsReadTheSameContracts) {
  agent_->write_config();
  CommandResult list = cli({"contracts", "list", "--json"});
  ASSERT_EQ(list.exit_code(), 0) << list.describe();
  json l = json::parse(list.out, nullptr, false);
  ASSERT_TRUE(l.is_object()) << list.out;
  EXPECT_GE(l["contracts"].size(), 8u);
  EXPECT_EQ(l["unknown_types"], "reject");

  const std::string lines =
      R"({"type":"inventory.counted","data":{"count_id":"c1","location_id":"floor","operator_id":"op","lines":[{"sku":"A","on_hand":3}]}})"
      "\n"
      R"({"type":"inventory.counted","data":{"count_id":"c1","location_id":"floor","operator_id":"op","lines":[{"sku":"A","on_hand":-3}]}})"
      "\n";
  CommandResult check = cli({"contracts", "check"}, lines);
  EXPECT_EQ(check.exit_code(), 1) << check.describe();
  EXPECT_NE(check.out.find("line 1: ok inventory.counted v1"), std::string::npos) << check.out;
  EXPECT_NE(check.out.find("/data/lines/0/on_hand: minimum (expected 0)"), std::string::npos)
      << check.out;
  // Without a configuration, on a folder: an integrator's laptop.
  CommandResult offline = AgentProcess::run_cli(
      {"contracts", "check", "--contracts", source_dir() + "/config/contracts/events", "--json"},
      lines.substr(0, lines.find('\n') + 1), 30s);
  EXPECT_EQ(offline.exit_code(), 0) << offline.describe();
  // The documented form: a folder, then the file (the folder option takes one value).
  const std::string file = dir_->file("till-export.ndjson");
  write_file(file, lines);
  CommandResult documented = AgentProcess::run_cli(
      {"contracts", "check", "--contracts", source_dir() + "/config/contracts/events", file}, "", 30s);
  EXPECT_EQ(documented.exit_code(), 1) << documented.describe();
  EXPECT_NE(documented.out.find("2 lines, 1 refused"), std::string::npos) << documented.out;

  const std::string events = source_dir() + "/config/contracts/events/";
  CommandResult diff = AgentProcess::run_cli({"contracts", "diff", events + "pos.sale.completed.v1.schema.json",
                                              events + "pos.sale.completed.v2.schema.json"},
                                             "", 30s);
  EXPECT_EQ(diff.exit_code(), 0) << diff.describe();
  CommandResult back = AgentProcess::run_cli({"contracts", "diff", events + "pos.sale.completed.v2.schema.json",
                                              events + "pos.sale.completed.v1.schema.json"},
                                             "", 30s);
  EXPECT_EQ(back.exit_code(), 1) << back.describe();
  EXPECT_NE(back.out.find("BREAKING"), std::string::npos) << back.out;
}

// A broken contract in an operator's folder stops the start, naming the file.
TEST_F(ContractsTest, ABrokenOperatorContractStopsTheStartNamingTheFile) {
  const std::string extra = dir_->file("contracts");
  std::filesystem::create_directories(extra);
  write_file(extra + "/till.opened.v1.schema.json", "{\"type\": \"object\",");
  agent_->config().extra["ingest"]["extra_contract_dirs"] = {extra};
  agent_->write_config();
  CommandResult r = AgentProcess::run_cli({"agent", "--config", agent_->config_path()}, "", 30s);
  EXPECT_EQ(r.exit_code(), 1) << r.describe();
  EXPECT_NE(r.err.find("till.opened.v1.schema.json"), std::string::npos) << r.describe();
}

}  // namespace
}  // namespace edgesync::test
