// The agent and the hub agree on the wire: what agent/hub_message.cc builds, events/wire.h
// reads back field for field (the hub's side of the contract). A change to either that the
// other does not follow fails here, not in a store.
#include <gtest/gtest.h>

#include "agent/config.h"
#include "agent/hub_message.h"
#include "events/json_nesting.h"
#include "events/resend.h"
#include "events/wire.h"

namespace edgesync::agent {
namespace {

Config box() {
  Config c;
  c.device.id = "pos-01";
  c.device.store_id = "store-042";
  return c;
}

storage::StoredEvent sale() {
  storage::StoredEvent e;
  e.seq = 41;
  e.id = "till-3/r\"1001";
  e.type = "pos.sale.completed";
  e.contract_version = 2;
  e.occurred_at = "2026-12-01T09:05:00+01:00";
  e.received_ms = 1764576300123;
  e.trace_id = "trace-9";
  e.data = R"({"receipt_id":"R1","lines":[{"sku":"A","qty":2}]})";
  return e;
}

TEST(WireAgreement, AnEventMessageReadsBackFieldForField) {
  Config c = box();
  storage::StoredEvent e = sale();
  std::string topic, payload;
  build_event_topic(c, e, &topic);
  build_event_payload(c, "inc-1", e, &payload);

  events::TopicParts t = events::parse_topic(c.hub.topic_prefix, topic);
  EXPECT_EQ(t.kind, events::TopicKind::kEvent);
  EXPECT_EQ(t.store_id, "store-042");
  EXPECT_EQ(t.device_id, "pos-01");
  EXPECT_EQ(t.type, "pos.sale.completed");

  auto read = events::parse_event_message(payload);
  ASSERT_TRUE(read) << read.status().message();
  EXPECT_EQ(read->id, e.id);
  EXPECT_EQ(read->seq, 41);
  EXPECT_EQ(read->incarnation, "inc-1");
  EXPECT_EQ(read->type, e.type);
  EXPECT_EQ(read->v, 2);
  EXPECT_EQ(read->device_id, "pos-01");
  EXPECT_EQ(read->store_id, "store-042");
  EXPECT_EQ(read->trace_id, "trace-9");
  EXPECT_EQ(read->occurred_at, e.occurred_at);
  EXPECT_EQ(read->received_at, "2025-12-01T08:05:00.123Z");
  EXPECT_TRUE(read->received_at_trusted);
  EXPECT_EQ(read->data, nlohmann::json::parse(e.data));
}

TEST(WireAgreement, NoContractNoOccurredAtAndAnUnsetClockReadBack) {
  Config c = box();
  storage::StoredEvent e = sale();
  e.contract_version = 0;
  e.occurred_at.clear();
  e.trace_id.clear();
  e.received_ms = 1000;  // 1970: the box had no clock yet
  std::string payload;
  build_event_payload(c, "inc-1", e, &payload);
  auto read = events::parse_event_message(payload);
  ASSERT_TRUE(read) << read.status().message();
  EXPECT_EQ(read->v, 0);
  EXPECT_FALSE(read->occurred_at.has_value());
  EXPECT_TRUE(read->trace_id.empty());
  EXPECT_FALSE(read->received_at_trusted);
}

TEST(WireAgreement, ADeadLetterNoticeReadsBack) {
  Config c = box();
  storage::StoredEvent e = sale();
  std::string payload;
  build_dead_letter_notice(c, "inc-1", e, "too large for the broker", 1764576400000, &payload);
  EXPECT_EQ(events::parse_topic(c.hub.topic_prefix, dead_letter_topic(c)).kind,
            events::TopicKind::kDeadLetter);
  auto read = events::parse_dead_letter_notice(payload);
  ASSERT_TRUE(read) << read.status().message();
  EXPECT_EQ(read->seq, 41);
  EXPECT_EQ(read->incarnation, "inc-1");
  EXPECT_EQ(read->device_id, "pos-01");
  EXPECT_EQ(read->reason, "too large for the broker");
  EXPECT_EQ(read->failed_at, "2025-12-01T08:06:40.000Z");
}

TEST(WireAgreement, StatusAndHealthTopicsAndStrangersAreTold) {
  Config c = box();
  const std::string base = c.topic_base();
  EXPECT_EQ(events::parse_topic(c.hub.topic_prefix, base + "/status").kind,
            events::TopicKind::kStatus);
  EXPECT_EQ(events::parse_topic(c.hub.topic_prefix, base + "/health").kind,
            events::TopicKind::kHealth);
  EXPECT_EQ(events::parse_topic(c.hub.topic_prefix, base + "/config/status").kind,
            events::TopicKind::kOther);
  EXPECT_EQ(events::parse_topic(c.hub.topic_prefix, "other/store/dev/events/a.b").kind,
            events::TopicKind::kOther);
  EXPECT_EQ(events::parse_topic(c.hub.topic_prefix, c.hub.topic_prefix + "//dev/status").kind,
            events::TopicKind::kOther);
}

// A forged event message with "data" nested 100,000 deep (200 KB of brackets) overflowed the
// hub's stack when "data" was copied: it is refused before the parse, and one as deep as a box
// may send still reads.
TEST(WireAgreement, AMessageNestedDeeperThanABoxSendsIsRefusedBeforeTheParse) {
  Config c = box();
  std::string payload;
  build_event_payload(c, "inc-1", sale(), &payload);
  nlohmann::json j = nlohmann::json::parse(payload);
  j["data"] = nlohmann::json::object();
  std::string deep = j.dump();
  const std::string inner = std::string(100000, '[') + std::string(100000, ']');
  deep.replace(deep.find("\"data\":{}"), 9, "\"data\":{\"x\":" + inner + "}");
  auto read = events::parse_event_message(deep);
  ASSERT_FALSE(read);
  EXPECT_EQ(read.status().message(), "the payload nests deeper than 65 levels");

  std::string ok = j.dump();
  const int levels = events::kMaxEventNesting - 2;  // the message, "data", then these
  ok.replace(ok.find("\"data\":{}"), 9,
             "\"data\":{\"x\":" + std::string(levels, '[') + std::string(levels, ']') + "}");
  EXPECT_TRUE(events::parse_event_message(ok)) << "as deep as ingest lets an event be";
}

TEST(WireAgreement, AMessageMissingAFieldIsRefusedNamingIt) {
  for (const char* key : {"id", "seq", "incarnation", "type", "device_id", "store_id",
                          "received_at", "data"}) {
    Config c = box();
    std::string payload;
    build_event_payload(c, "inc-1", sale(), &payload);
    nlohmann::json j = nlohmann::json::parse(payload);
    j.erase(key);
    auto read = events::parse_event_message(j.dump());
    ASSERT_FALSE(read) << key;
    EXPECT_NE(read.status().message().find(std::string("\"") + key + "\""), std::string::npos)
        << read.status().message();
  }
  EXPECT_FALSE(events::parse_event_message("not json"));
  EXPECT_FALSE(events::parse_event_message("[1]"));
}

// The resend exchange: the hub's request and the box's reply read back as built, on the topics
// each side subscribes to; a request the box cannot trust is refused with the reason.
TEST(WireAgreement, AResendRequestAndItsReplyReadBack) {
  Config c = box();
  events::ResendRequest req{"hub-1-7", "inc-1", {{1, 5}, {9, 9}}};
  auto back = events::parse_resend_request(events::build_resend_request(req));
  ASSERT_TRUE(back) << back.status().message();
  EXPECT_EQ(back->request_id, "hub-1-7");
  EXPECT_EQ(back->incarnation, "inc-1");
  EXPECT_EQ(back->ranges, req.ranges);
  EXPECT_EQ(events::resend_request_topic(c.hub.topic_prefix, c.device.store_id, c.device.id),
            c.topic_base() + "/resend");

  events::ResendReply reply{"hub-1-7", "store-042", "pos-01", "inc-1", {{1, 3}}, {{9, 9}},
                            {{4, 5}}, "pruned", {}};
  const std::string topic =
      events::resend_reply_topic(c.hub.topic_prefix, c.device.store_id, c.device.id);
  events::TopicParts t = events::parse_topic(c.hub.topic_prefix, topic);
  EXPECT_EQ(t.kind, events::TopicKind::kResendReply);
  EXPECT_EQ(t.device_id, "pos-01");
  auto r = events::parse_resend_reply(events::build_resend_reply(reply));
  ASSERT_TRUE(r) << r.status().message();
  EXPECT_EQ(r->resent, reply.resent);
  EXPECT_EQ(r->pending, reply.pending);
  EXPECT_EQ(r->gone, reply.gone);
  EXPECT_EQ(r->gone_reason, "pruned");
  EXPECT_TRUE(r->deferred.empty());

  for (const char* bad :
       {R"({"format":"edgesync.resend-request/1","request_id":"r","incarnation":"i","ranges":[]})",
        R"({"format":"edgesync.resend-request/1","request_id":"r","incarnation":"i","ranges":[[5,9],[7,8]]})",
        R"({"format":"edgesync.resend-request/1","request_id":"r","incarnation":"i","ranges":[[0,3]]})",
        R"({"format":"edgesync.resend-request/2","request_id":"r","incarnation":"i","ranges":[[1,3]]})",
        R"({"format":"edgesync.resend-request/1","incarnation":"i","ranges":[[1,3]]})", "[1]"}) {
    EXPECT_FALSE(events::parse_resend_request(bad)) << bad;
  }
}

}  // namespace
}  // namespace edgesync::agent
