#include "agent/event_contract.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>

#include "agent/hub_message.h"

namespace edgesync::agent {
namespace {

struct Parsed {
  bool ok;
  storage::AppendRequest req;
  ParseFailure failure;
};

Parsed parse(const std::string& line) {
  static IdGenerator ids;
  Parsed p;
  p.ok = parse_event(line, 1763885702123, ids, &p.req, &p.failure);
  return p;
}

void expect_error(const std::string& line, IngestError code, const std::string& needle) {
  auto p = parse(line);
  ASSERT_FALSE(p.ok) << line;
  EXPECT_EQ(p.failure.error, code) << line;
  EXPECT_NE(p.failure.message.find(needle), std::string::npos) << p.failure.message;
}

TEST(EventContract, FullEventIsAccepted) {
  auto p = parse(R"({"id":"till-3/1001","type":"pos.sale","occurred_at":"2026-11-23T08:15:02.123+01:00","data":{"z":1,"a":[1,2],"m":{"k":"v"}}})");
  ASSERT_TRUE(p.ok) << p.failure.message;
  EXPECT_EQ(p.req.id, "till-3/1001");
  EXPECT_EQ(p.req.type, "pos.sale");
  EXPECT_EQ(p.req.occurred_at, "2026-11-23T08:15:02.123+01:00");
  EXPECT_EQ(p.req.received_ms, 1763885702123);
  EXPECT_EQ(p.req.data, R"({"z":1,"a":[1,2],"m":{"k":"v"}})") << "key order is kept";
}

TEST(EventContract, MissingIdIsGeneratedUniquely) {
  std::set<std::string> ids;
  for (int i = 0; i < 1000; ++i) {
    auto p = parse(R"({"type":"inventory.adjusted","data":{}})");
    ASSERT_TRUE(p.ok);
    ASSERT_EQ(p.req.id.size(), 36u);
    EXPECT_EQ(p.req.id[14], '4');
    ids.insert(p.req.id);
  }
  EXPECT_EQ(ids.size(), 1000u);
}

// Each agent start makes a new generator: its ids must not repeat an earlier run's (that would
// answer a new id-less event as a duplicate). Many generators made back to back share no id.
TEST(EventContract, FreshGeneratorsDoNotRepeatEachOther) {
  std::set<std::string> ids;
  for (int g = 0; g < 200; ++g) {
    IdGenerator gen;
    for (int i = 0; i < 50; ++i) ids.insert(gen.next());
  }
  EXPECT_EQ(ids.size(), 200u * 50u);
}

TEST(EventContract, MalformedJsonIsBadJson) {
  expect_error("{\"type\": \"pos.sale\", ", IngestError::kBadJson, "not valid JSON");
  expect_error("not json", IngestError::kBadJson, "not valid JSON");
  expect_error("{\"type\":\"a.b\",\"data\":{}} trailing", IngestError::kBadJson, "JSON");
}

TEST(EventContract, EachInvalidFieldIsNamed) {
  expect_error("[1]", IngestError::kInvalidEvent, "JSON object");
  expect_error(R"({"data":{}})", IngestError::kInvalidEvent, "\"type\" is required");
  expect_error(R"({"type":"Pos.Sale","data":{}})", IngestError::kInvalidEvent, "lowercase");
  expect_error(R"({"type":"sale","data":{}})", IngestError::kInvalidEvent, "dotted");
  expect_error(R"({"type":"pos..sale","data":{}})", IngestError::kInvalidEvent, "dotted");
  expect_error(R"({"type":"pos.sale/x","data":{}})", IngestError::kInvalidEvent, "dotted");
  expect_error(R"({"type":7,"data":{}})", IngestError::kInvalidEvent, "\"type\"");
  expect_error(R"({"type":"pos.sale"})", IngestError::kInvalidEvent, "\"data\" is required");
  expect_error(R"({"type":"pos.sale","data":[1]})", IngestError::kInvalidEvent,
               "\"data\" must be a JSON object");
  expect_error(R"({"type":"pos.sale","data":{},"id":""})", IngestError::kInvalidEvent, "\"id\"");
  expect_error(R"({"type":"pos.sale","data":{},"id":5})", IngestError::kInvalidEvent, "\"id\"");
  expect_error(R"({"type":"pos.sale","data":{},"id":")" + std::string(129, 'x') + "\"}",
               IngestError::kInvalidEvent, "1-128");
  expect_error(R"({"type":"pos.sale","data":{},"id":"a\u0001b"})", IngestError::kInvalidEvent,
               "printable");
  expect_error(R"({"type":"pos.sale","data":{},"occurred_at":"yesterday"})",
               IngestError::kInvalidEvent, "RFC 3339");
  expect_error(R"({"type":"pos.sale","data":{},"occurred_at":"2026-02-30T00:00:00Z"})",
               IngestError::kInvalidEvent, "RFC 3339");
  expect_error(R"({"type":"pos.sale","data":{},"extra":1})", IngestError::kInvalidEvent,
               "unknown key \"extra\"");
}

TEST(EventContract, RepliesAreOneJsonLineEach) {
  std::string out;
  append_ok_reply(&out, "a\"b", 42, false);
  append_error_reply(&out, IngestError::kTooLarge, "line too long\nreally");
  auto first = out.substr(0, out.find('\n'));
  auto second = out.substr(out.find('\n') + 1);
  ASSERT_EQ(second.back(), '\n');
  second.pop_back();
  EXPECT_EQ(second.find('\n'), std::string::npos);
  auto a = nlohmann::json::parse(first);
  EXPECT_EQ(a["ok"], true);
  EXPECT_EQ(a["id"], "a\"b");
  EXPECT_EQ(a["seq"], 42);
  EXPECT_EQ(a["duplicate"], false);
  auto b = nlohmann::json::parse(second);
  EXPECT_EQ(b["ok"], false);
  EXPECT_EQ(b["error"], "too_large");
  EXPECT_EQ(b["message"], "line too long\nreally");
}

TEST(EventContract, ErrorCodeNamesAreTheDocumentedOnes) {
  EXPECT_STREQ(error_code_name(IngestError::kBadJson), "bad_json");
  EXPECT_STREQ(error_code_name(IngestError::kInvalidEvent), "invalid_event");
  EXPECT_STREQ(error_code_name(IngestError::kTooLarge), "too_large");
  EXPECT_STREQ(error_code_name(IngestError::kOutboxFull), "outbox_full");
  EXPECT_STREQ(error_code_name(IngestError::kStorageError), "storage_error");
}

TEST(HubMessage, PayloadCarriesTheEnvelopeAndDataVerbatim) {
  Config c;
  c.device.id = "pos-01";
  c.device.store_id = "store-042";
  storage::StoredEvent e;
  e.seq = 7;
  e.id = "id-\"7\"";
  e.type = "inventory.adjusted";
  e.received_ms = 1763885702123;
  e.data = R"({"sku":"A1","delta":-2.5})";
  std::string topic, payload;
  build_event_topic(c, e, &topic);
  build_event_payload(c, e, &payload);
  EXPECT_EQ(topic, "edgesync/v1/store-042/pos-01/events/inventory.adjusted");
  auto j = nlohmann::json::parse(payload);
  EXPECT_EQ(j["id"], "id-\"7\"");
  EXPECT_EQ(j["seq"], 7);
  EXPECT_EQ(j["type"], "inventory.adjusted");
  EXPECT_EQ(j["device_id"], "pos-01");
  EXPECT_EQ(j["store_id"], "store-042");
  EXPECT_TRUE(j["occurred_at"].is_null());
  EXPECT_EQ(j["received_at"], "2025-11-23T08:15:02.123Z");
  EXPECT_EQ(j["data"], nlohmann::json::parse(e.data));
  auto status = nlohmann::json::parse(build_status_payload(c, false, "agent stopped"));
  EXPECT_EQ(status["online"], false);
  EXPECT_EQ(status["reason"], "agent stopped");
}

}  // namespace
}  // namespace edgesync::agent
