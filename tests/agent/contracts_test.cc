// The JSON Schemas shipped in config/contracts/ are the integrators' copy of the rules the
// agent enforces in code: these tests keep the two from drifting apart.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>

#include "agent/config_envelope.h"
#include "agent/event_contract.h"
#include "agent/hub_message.h"
#include "agent/remote_config_state.h"
#include "platform/crypto.h"

namespace edgesync::agent {
namespace {

nlohmann::json load(const std::string& name) {
  const char* src = std::getenv("EDGESYNC_SOURCE_DIR");
  std::string path = std::string(src ? src : ".") + "/config/contracts/" + name;
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << "cannot read " << path;
  std::stringstream ss;
  ss << in.rdbuf();
  return nlohmann::json::parse(ss.str());
}

TEST(Contracts, TypePatternMatchesTheAgentsRule) {
  auto schema = load("ingest-request.schema.json");
  std::regex pattern(schema["properties"]["type"]["pattern"].get<std::string>());
  for (const char* t : {"inventory.adjusted", "pos.sale", "a.b.c", "a1.b_2", "sale", "Pos.sale",
                        "pos..sale", ".pos", "pos.", "pos.sale/x", "pos.1sale", "p-o.s", ""}) {
    EXPECT_EQ(std::regex_match(t, pattern), is_valid_type(t)) << t;
  }
  EXPECT_EQ(schema["properties"]["type"]["maxLength"], 128);
}

TEST(Contracts, IdPatternMatchesTheAgentsRule) {
  auto schema = load("ingest-request.schema.json");
  const auto& id = schema["properties"]["id"];
  std::regex pattern(id["pattern"].get<std::string>());
  for (std::string s : {std::string("till-3/receipt 1001"), std::string("a\x01"), std::string("~"),
                        std::string("caf\xc3\xa9")}) {
    EXPECT_EQ(std::regex_match(s, pattern), is_valid_id(s)) << s;
  }
  EXPECT_EQ(id["maxLength"], 128);
  EXPECT_TRUE(is_valid_id(std::string(128, 'x')));
  EXPECT_FALSE(is_valid_id(std::string(129, 'x')));
}

TEST(Contracts, RequestKeysAndErrorCodesAreTheAgentsOnes) {
  auto request = load("ingest-request.schema.json");
  std::set<std::string> keys;
  for (const auto& [k, v] : request["properties"].items()) keys.insert(k);
  EXPECT_EQ(keys, (std::set<std::string>{"id", "type", "v", "occurred_at", "trace_id", "data"}));
  EXPECT_EQ(request["additionalProperties"], false);

  auto reply = load("ingest-reply.schema.json");
  std::set<std::string> codes;
  for (const auto& c : reply["oneOf"][1]["properties"]["error"]["enum"]) codes.insert(c);
  std::set<std::string> agent_codes;
  for (auto e : {IngestError::kBadJson, IngestError::kInvalidEvent, IngestError::kTooLarge,
                 IngestError::kOutboxFull, IngestError::kStorageError, IngestError::kUnknownType}) {
    agent_codes.insert(error_code_name(e));
  }
  EXPECT_EQ(codes, agent_codes);
}

// Every key a hub message can carry is in its schema, and every key the schema requires is sent:
// the hub side validates against these files.
void expect_matches_schema(const std::string& payload, const std::string& schema_file) {
  auto schema = load(schema_file);
  auto message = nlohmann::json::parse(payload);
  for (const auto& [key, value] : message.items()) {
    EXPECT_TRUE(schema["properties"].contains(key)) << schema_file << " lacks '" << key << "'";
  }
  for (const auto& key : schema["required"]) {
    EXPECT_TRUE(message.contains(key.get<std::string>()))
        << "message lacks required '" << key << "' of " << schema_file << ": " << payload;
  }
}

TEST(Contracts, HubMessagesCarryTheKeysTheirSchemasName) {
  Config c;
  c.device.id = "pos-01";
  c.device.store_id = "store-042";
  storage::StoredEvent e;
  e.seq = 3;
  e.id = "sale-3";
  e.type = "pos.sale.completed";
  e.received_ms = 1000;  // a clock without RTC: received_at_trusted appears
  e.data = "{}";
  e.trace_id = "till-3/r3";
  e.contract_version = 2;
  std::string payload;
  build_event_payload(c, "3f0c9a52-6f1e-4c8b-9d27-5b1e0a7c4d13", e, &payload);
  expect_matches_schema(payload, "hub-event.schema.json");
  build_dead_letter_notice(c, "3f0c9a52-6f1e-4c8b-9d27-5b1e0a7c4d13", e, "refused", 1000,
                           &payload);
  expect_matches_schema(payload, "hub-deadletter.schema.json");
  OutboxFacts facts;
  facts.incarnation = "3f0c9a52-6f1e-4c8b-9d27-5b1e0a7c4d13";
  facts.quarantine = storage::QuarantineIncident{"f", "r", 1000, "i"};
  facts.damaged = "malformed";
  expect_matches_schema(build_status_payload(c, facts, true, "x"), "hub-status.schema.json");
  expect_matches_schema(build_status_payload(c, facts, false, "agent stopped"),
                        "hub-status.schema.json");
}

TEST(Contracts, ConfigMessagesCarryTheKeysTheirSchemasName) {
  auto key = platform::crypto::generate_p256_key();
  ASSERT_TRUE(key) << key.status().to_string();
  auto envelope = sign_envelope(key->private_pem, "ops-1", "fleet", 3, 1764489600000, 1765094400000,
                                R"({"hub":{"linger_ms":5}})");
  ASSERT_TRUE(envelope) << envelope.status().to_string();
  expect_matches_schema(*envelope, "config-envelope.schema.json");
  auto schema = load("config-envelope.schema.json");
  std::set<std::string> members;
  for (const auto& [k, v] : schema["properties"].items()) members.insert(k);
  // The parser's members are the schema's: an extra one is refused by both.
  for (const auto& m : members) {
    auto j = nlohmann::json::parse(*envelope);
    j.erase(m);
    auto parsed = parse_envelope(j.dump());
    const bool required = std::find(schema["required"].begin(), schema["required"].end(), m) !=
                          schema["required"].end();
    EXPECT_EQ(parsed.is_ok(), !required) << m;
  }

  Config c;
  c.device.id = "pos-01";
  c.device.store_id = "store-042";
  c.remote_config.trusted_keys["ops-1"] = "/x";
  RemoteConfigState s;
  s.applied[Scope::kDevice] = AppliedLayer{7, *envelope, "ops-1", 1000, 2000};
  s.effective_sha256 = std::string(64, 'a');
  s.probation_since_ms = 3000;
  s.record(ConfigRecord{4000, "rejected", "fleet", 9, "bad signature", ""});
  s.record(ConfigRecord{5000, "rolled_back", "", 0, "probation", std::string(64, 'b')});
  const auto status = config_status_json(c, s, 6000);
  expect_matches_schema(status.dump(), "config-status.schema.json");
  auto status_schema = load("config-status.schema.json");
  for (const auto& [scope, v] : status["scopes"].items()) {
    EXPECT_TRUE(status_schema["properties"]["scopes"]["properties"].contains(scope)) << scope;
    if (v.is_null()) continue;
    for (const auto& [k, unused] : v.items()) {
      EXPECT_TRUE(status_schema["$defs"]["layer"]["oneOf"][1]["properties"].contains(k)) << k;
    }
  }
  for (const char* r : {"last_rejection", "last_rollback"}) {
    for (const auto& [k, unused] : status[r].items()) {
      EXPECT_TRUE(status_schema["$defs"]["record"]["properties"].contains(k)) << r << "." << k;
    }
  }
}

}  // namespace
}  // namespace edgesync::agent
