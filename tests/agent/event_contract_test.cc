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
  p.ok = parse_event(line, 1763885702123, ids, ContractCheck{}, &p.req, &p.failure);
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

// A sale followed from the till to the hub: the producer's trace_id is kept as given, and an
// absent or null one is stored as none.
TEST(EventContract, TraceIdIsKeptWhenGiven) {
  auto p = parse(R"({"type":"pos.sale","trace_id":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01","data":{}})");
  ASSERT_TRUE(p.ok) << p.failure.message;
  EXPECT_EQ(p.req.trace_id, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  p = parse(R"({"type":"pos.sale","trace_id":null,"data":{}})");
  ASSERT_TRUE(p.ok) << p.failure.message;
  EXPECT_EQ(p.req.trace_id, "");
  p = parse(R"({"type":"pos.sale","data":{}})");
  ASSERT_TRUE(p.ok);
  EXPECT_EQ(p.req.trace_id, "");
  expect_error(R"({"type":"pos.sale","data":{},"trace_id":""})", IngestError::kInvalidEvent,
               "\"trace_id\"");
  expect_error(R"({"type":"pos.sale","data":{},"trace_id":12})", IngestError::kInvalidEvent,
               "\"trace_id\"");
  expect_error(R"({"type":"pos.sale","data":{},"trace_id":")" + std::string(129, 't') + "\"}",
               IngestError::kInvalidEvent, "1-128");
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

// "data" as objects nested `depth` deep, itself the first level.
std::string nested(int depth) {
  std::string s;
  for (int i = 1; i < depth; ++i) s += R"({"a":)";
  return s + "{}" + std::string(depth - 1, '}');
}

std::string nested_data(int depth) {
  return R"({"type":"pos.sale","data":)" + nested(depth) + "}";
}

// Any producer could end the agent with one line: "data" nested 100,000 deep (200 KB, under
// the default max_line_bytes) overflowed the stack when it was re-serialized. It is refused
// like any other invalid event, and the connection goes on.
TEST(EventContract, DeeplyNestedDataIsRefusedNotAStackOverflow) {
  expect_error(nested_data(100000), IngestError::kInvalidEvent, "at most 64 levels");
  expect_error(nested_data(65), IngestError::kInvalidEvent, "at most 64 levels");
  auto at_limit = parse(nested_data(64));
  ASSERT_TRUE(at_limit.ok) << at_limit.failure.message;
  EXPECT_EQ(at_limit.req.data, nested(64));
  // Brackets inside strings are text, not nesting.
  auto in_string = parse(R"({"type":"pos.sale","data":{"s":")" + std::string(1000, '[') +
                         R"(\"[{"}})");
  EXPECT_TRUE(in_string.ok) << in_string.failure.message;
}

TEST(EventContract, RepliesAreOneJsonLineEach) {
  std::string out;
  append_ok_reply(&out, "a\"b", 42, false, 2);
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
  EXPECT_EQ(a["v"], 2);
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
  build_event_payload(c, "7f1c2a9e-0b4d-4c1e-9a57-2f3b8c6d1e90", e, &payload);
  EXPECT_EQ(topic, "edgesync/v1/store-042/pos-01/events/inventory.adjusted");
  auto j = nlohmann::json::parse(payload);
  EXPECT_EQ(j["id"], "id-\"7\"");
  EXPECT_EQ(j["seq"], 7);
  EXPECT_EQ(j["incarnation"], "7f1c2a9e-0b4d-4c1e-9a57-2f3b8c6d1e90");
  EXPECT_EQ(j["type"], "inventory.adjusted");
  EXPECT_EQ(j["device_id"], "pos-01");
  EXPECT_EQ(j["store_id"], "store-042");
  EXPECT_TRUE(j["occurred_at"].is_null());
  EXPECT_EQ(j["received_at"], "2025-11-23T08:15:02.123Z");
  EXPECT_EQ(j["data"], nlohmann::json::parse(e.data));
  EXPECT_FALSE(j.contains("received_at_trusted"));
  EXPECT_FALSE(j.contains("trace_id")) << "left out when the producer gave none";
  e.trace_id = "till-3/r\"1001";
  build_event_payload(c, "inc", e, &payload);
  EXPECT_EQ(nlohmann::json::parse(payload)["trace_id"], "till-3/r\"1001");
  e.trace_id.clear();
  // A box that booted without a real-time clock: the hub must not file the sale under 1970.
  e.received_ms = 86400000;
  build_event_payload(c, "inc", e, &payload);
  j = nlohmann::json::parse(payload);
  EXPECT_EQ(j["received_at"], "1970-01-02T00:00:00.000Z");
  EXPECT_EQ(j["received_at_trusted"], false);
  OutboxFacts facts;
  facts.incarnation = "inc-1";
  auto status = nlohmann::json::parse(build_status_payload(c, facts, false, "agent stopped"));
  EXPECT_EQ(status["online"], false);
  EXPECT_EQ(status["incarnation"], "inc-1");
  EXPECT_EQ(status["reason"], "agent stopped");
  EXPECT_FALSE(status.contains("quarantine"));
  // A quarantined outbox is reported to the hub, with the old file's incarnation, so the
  // central team knows why this box's seq restarted.
  facts.quarantine = storage::QuarantineIncident{"/var/lib/edgesync/outbox.db.quarantined-x",
                                                 "file is not a database", 1763885702123, "inc-0"};
  facts.damaged = "database disk image is malformed";
  status = nlohmann::json::parse(build_status_payload(c, facts, true, ""));
  EXPECT_EQ(status["quarantine"]["incarnation"], "inc-0");
  EXPECT_EQ(status["quarantine"]["reason"], "file is not a database");
  EXPECT_EQ(status["quarantine"]["at"], "2025-11-23T08:15:02.123Z");
  EXPECT_EQ(status["outbox_damaged"], "database disk image is malformed");
}

// The notice that takes a dead letter's place: the hub needs (device, incarnation, seq) to close
// the gap, and the reason; never the event's data, which stays on the box.
TEST(HubMessage, DeadLetterNoticeNamesTheSeqAndTheReasonButNotTheData) {
  Config c;
  c.device.id = "pos-01";
  c.device.store_id = "store-042";
  storage::StoredEvent e;
  e.seq = 12;
  e.id = "sale-12";
  e.type = "pos.sale.completed";
  e.data = R"({"secret":"card"})";
  e.trace_id = "till-3/r12";
  std::string payload;
  build_dead_letter_notice(c, "inc-1", e, "PUBACK reason code 135 (not authorized)",
                           1763885702123, &payload);
  EXPECT_EQ(dead_letter_topic(c), "edgesync/v1/store-042/pos-01/deadletter");
  auto j = nlohmann::json::parse(payload);
  EXPECT_EQ(j["seq"], 12);
  EXPECT_EQ(j["incarnation"], "inc-1");
  EXPECT_EQ(j["id"], "sale-12");
  EXPECT_EQ(j["type"], "pos.sale.completed");
  EXPECT_EQ(j["reason"], "PUBACK reason code 135 (not authorized)");
  EXPECT_EQ(j["failed_at"], "2025-11-23T08:15:02.123Z");
  EXPECT_EQ(j["trace_id"], "till-3/r12") << "the sale can be followed to its dead letter";
  EXPECT_FALSE(j.contains("data"));
}

}  // namespace
}  // namespace edgesync::agent
