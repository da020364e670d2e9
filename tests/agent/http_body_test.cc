// The HTTP ingest body rules: what becomes a request line for the ingest core, what is refused
// as a whole, and the status code an answer gets.
#include "agent/http_body.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace edgesync::agent {
namespace {

using nlohmann::json;

json reply_of(const IngestReply& r) { return json::parse(r.text); }

IngestReply ok() {
  IngestReply r;
  r.ok = true;
  append_ok_reply(&r.text, "x", 1, false, 1);
  return r;
}

IngestReply refused(IngestError e) {
  IngestReply r;
  r.error = e;
  append_error_reply(&r.text, e, "m");
  return r;
}

TEST(HttpBody, OneObjectIsOneLineAsSent) {
  const std::string body = " {\"type\":\"pos.void\",\"data\":{\"a\":[1,2]}}\n";
  BodyPlan p = plan_body(body, std::nullopt, 1024);
  EXPECT_FALSE(p.array);
  EXPECT_FALSE(p.refused);
  ASSERT_EQ(p.items.size(), 1u);
  EXPECT_EQ(p.items[0].line, "{\"type\":\"pos.void\",\"data\":{\"a\":[1,2]}}");
  EXPECT_FALSE(p.items[0].reply);
}

TEST(HttpBody, NotJsonAsOneEventIsLeftToTheCoreWhichSaysBadJson) {
  BodyPlan p = plan_body("{\"type\":", std::nullopt, 1024);
  ASSERT_EQ(p.items.size(), 1u);
  EXPECT_FALSE(p.refused);  // parse_event gives the same bad_json reply as the socket
}

TEST(HttpBody, AnArraySplitsIntoItsElementsKeepingTheirBytes) {
  const std::string body =
      "[ {\"id\":\"a,]\\\"}\",\"data\":{\"x\":[{\"y\":\"}\"}]}} ,\n{\"id\":\"b\"}, 7, \"s\", [1,[2]] ]";
  BodyPlan p = plan_body(body, std::nullopt, 1024);
  ASSERT_FALSE(p.refused) << p.refused->text;
  EXPECT_TRUE(p.array);
  ASSERT_EQ(p.items.size(), 5u);
  EXPECT_EQ(p.items[0].line, "{\"id\":\"a,]\\\"}\",\"data\":{\"x\":[{\"y\":\"}\"}]}}");
  EXPECT_EQ(p.items[1].line, "{\"id\":\"b\"}");
  EXPECT_EQ(p.items[2].line, "7");
  EXPECT_EQ(p.items[3].line, "\"s\"");
  EXPECT_EQ(p.items[4].line, "[1,[2]]");
}

TEST(HttpBody, AnEmptyArrayHasNoEvents) {
  BodyPlan p = plan_body("[ ]", std::nullopt, 1024);
  EXPECT_FALSE(p.refused);
  EXPECT_TRUE(p.array);
  EXPECT_TRUE(p.items.empty());
}

TEST(HttpBody, AnArrayThatIsNotJsonIsRefusedWholeWithNothingSubmitted) {
  for (const char* body : {"[{\"a\":1},", "[1,2]x", "[{\"a\":1}, garbage]", "[\"unterminated]"}) {
    BodyPlan p = plan_body(body, std::nullopt, 1024);
    ASSERT_TRUE(p.refused) << body;
    EXPECT_EQ(p.refused->error, IngestError::kBadJson);
    EXPECT_TRUE(p.items.empty());
    EXPECT_EQ(reply_of(*p.refused)["error"], "bad_json");
  }
}

TEST(HttpBody, ANulByteIsBadJsonNotTheEndOfTheBody) {
  for (std::string body : {std::string("[{}]\0[x", 7), std::string("{}\0x", 4)}) {
    BodyPlan p = plan_body(body, std::nullopt, 1024);
    ASSERT_TRUE(p.refused);
    EXPECT_EQ(p.refused->error, IngestError::kBadJson);
    EXPECT_TRUE(p.items.empty());
  }
}

TEST(HttpBody, AnEmptyBodyIsBadJson) {
  BodyPlan p = plan_body(" \r\n", std::nullopt, 1024);
  ASSERT_TRUE(p.refused);
  EXPECT_EQ(p.refused->error, IngestError::kBadJson);
}

TEST(HttpBody, DeepNestingIsNoThreatToTheStack) {
  const std::string deep = "[" + std::string(500000, '[') + std::string(500000, ']') + "]";
  BodyPlan p = plan_body(deep, std::nullopt, 1 << 21);
  ASSERT_FALSE(p.refused);
  ASSERT_EQ(p.items.size(), 1u);  // the core refuses it: nested beyond 64 levels
  const std::string deep_object = "{\"a\":" + std::string(500000, '[') + "}";
  BodyPlan q = plan_body(deep_object, std::string("key-1"), 1 << 21);
  EXPECT_FALSE(q.refused);  // not JSON: left as sent, for the core's bad_json
}

TEST(HttpBody, AnEventOverMaxLineBytesIsRefusedAsTooLargeAndTheRestGoOn) {
  const std::string big = "{\"blob\":\"" + std::string(200, 'x') + "\"}";
  BodyPlan p = plan_body("[{\"a\":1}," + big + "]", std::nullopt, 100);
  ASSERT_EQ(p.items.size(), 2u);
  EXPECT_FALSE(p.items[0].reply);
  ASSERT_TRUE(p.items[1].reply);
  EXPECT_EQ(p.items[1].reply->error, IngestError::kTooLarge);
  BodyPlan one = plan_body(big, std::nullopt, 100);
  ASSERT_TRUE(one.items[0].reply);
  EXPECT_EQ(one.items[0].reply->error, IngestError::kTooLarge);
}

TEST(HttpBody, MoreEventsThanOneRequestTakesAreRefusedWhole) {
  std::string body = "[";
  for (size_t i = 0; i <= kMaxEventsPerRequest; ++i) body += i ? ",{}" : "{}";
  body += "]";
  BodyPlan p = plan_body(body, std::nullopt, 1024);
  ASSERT_TRUE(p.refused);
  EXPECT_EQ(p.refused->error, IngestError::kTooLarge);
}

TEST(HttpBody, IdempotencyKeyBecomesTheIdOfTheOneEvent) {
  BodyPlan p = plan_body("{\"type\":\"pos.void\",\"data\":{}}", std::string("till-3/r5"), 1024);
  ASSERT_FALSE(p.refused);
  json line = json::parse(p.items[0].line);
  EXPECT_EQ(line["id"], "till-3/r5");
  EXPECT_EQ(line["type"], "pos.void");
  BodyPlan empty = plan_body("{ }", std::string("k"), 1024);
  EXPECT_EQ(json::parse(empty.items[0].line), json({{"id", "k"}}));
  BodyPlan escaped = plan_body("{\"type\":\"t\"}", std::string("a\"b"), 1024);
  EXPECT_EQ(json::parse(escaped.items[0].line)["id"], "a\"b");
}

TEST(HttpBody, IdempotencyKeyMustAgreeWithTheIdAndBeAValidId) {
  BodyPlan same = plan_body("{\"id\":\"k\",\"type\":\"t\"}", std::string("k"), 1024);
  EXPECT_FALSE(same.refused);
  EXPECT_EQ(same.items[0].line, "{\"id\":\"k\",\"type\":\"t\"}");
  BodyPlan differ = plan_body("{\"id\":\"k\",\"type\":\"t\"}", std::string("j"), 1024);
  ASSERT_TRUE(differ.refused);
  EXPECT_EQ(differ.refused->error, IngestError::kInvalidEvent);
  BodyPlan bad = plan_body("{\"type\":\"t\"}", std::string(200, 'k'), 1024);
  ASSERT_TRUE(bad.refused);
  EXPECT_EQ(bad.refused->error, IngestError::kInvalidEvent);
  EXPECT_TRUE(bad.items.empty()) << "a request refused whole submits nothing";
  EXPECT_TRUE(differ.items.empty());
  BodyPlan array = plan_body("[{\"type\":\"t\"}]", std::string("k"), 1024);
  ASSERT_TRUE(array.refused);
  EXPECT_NE(reply_of(*array.refused)["message"].get<std::string>().find("one event"),
            std::string::npos);
}

TEST(HttpBody, StatusIs200WhenAllAreInTheOneReasonWhenNoneAnd207WhenMixed) {
  EXPECT_EQ(http_status({}), 200);
  EXPECT_EQ(http_status({ok(), ok()}), 200);
  EXPECT_EQ(http_status({refused(IngestError::kBadJson)}), 400);
  EXPECT_EQ(http_status({refused(IngestError::kTooLarge)}), 413);
  EXPECT_EQ(http_status({refused(IngestError::kInvalidEvent)}), 422);
  EXPECT_EQ(http_status({refused(IngestError::kUnknownType)}), 422);
  EXPECT_EQ(http_status({refused(IngestError::kInvalidEvent), refused(IngestError::kUnknownType)}),
            422);
  EXPECT_EQ(http_status({refused(IngestError::kOutboxFull)}), 507);
  EXPECT_EQ(http_status({refused(IngestError::kStorageError)}), 503);
  EXPECT_EQ(http_status({ok(), refused(IngestError::kOutboxFull)}), 207);
  EXPECT_EQ(http_status({refused(IngestError::kBadJson), refused(IngestError::kOutboxFull)}), 207);
  EXPECT_EQ(retry_after_seconds(503), 5);
  EXPECT_EQ(retry_after_seconds(507), 60);
  EXPECT_EQ(retry_after_seconds(422), 0);
}

TEST(HttpBody, TheAnswerIsTheReplyObjectOrTheArrayOfThem) {
  EXPECT_EQ(json::parse(answer_body({ok()}, false))["ok"], true);
  json a = json::parse(answer_body({ok(), refused(IngestError::kBadJson)}, true));
  ASSERT_TRUE(a.is_array());
  EXPECT_EQ(a.size(), 2u);
  EXPECT_EQ(a[1]["error"], "bad_json");
  EXPECT_EQ(answer_body({}, true), "[]");
}

TEST(HttpBody, IsJsonTextIsTheArrayBodysCheck) {
  EXPECT_TRUE(is_json_text("{\"a\":[1,\"]\"]}"));
  EXPECT_TRUE(is_json_text(" 7 \r"));
  std::string error;
  EXPECT_FALSE(is_json_text("{broken", &error));
  EXPECT_FALSE(error.empty());
  EXPECT_FALSE(is_json_text(""));
  EXPECT_FALSE(is_json_text("{} {}"));
  EXPECT_FALSE(is_json_text(std::string("{}\0", 3), &error));
  EXPECT_EQ(error, "it contains a NUL byte");
}

// `edgesync send --http` splits the array answered back into the reply objects, byte for byte
// what the socket would have printed.
TEST(HttpBody, TheArrayAnsweredSplitsBackIntoTheReplyTexts) {
  IngestReply tricky = refused(IngestError::kInvalidEvent);
  tricky.text.clear();
  append_error_reply(&tricky.text, IngestError::kInvalidEvent, "a \"quoted\", [odd] {message}");
  const std::vector<IngestReply> replies = {ok(), tricky, refused(IngestError::kBadJson)};
  const std::string body = answer_body(replies, true);
  ASSERT_TRUE(is_json_text(body));
  const std::vector<std::string_view> elements = json_array_elements(body);
  ASSERT_EQ(elements.size(), replies.size());
  for (size_t i = 0; i < replies.size(); ++i) {
    EXPECT_EQ(std::string(elements[i]) + "\n", replies[i].text);
  }
  EXPECT_TRUE(json_array_elements("[]").empty());
}

}  // namespace
}  // namespace edgesync::agent
