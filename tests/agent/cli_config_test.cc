// The checks `edgesync config sign` and `config verify` apply before anything is signed or
// published: the --expires duration, key ids, and whether a box would accept a layer's keys.
#include <gtest/gtest.h>

#include <algorithm>

#include "agent/config_tools.h"

namespace edgesync::agent {
namespace {

using nlohmann::json;

TEST(ParseDuration, AcceptsOneWholeCountAndOneUnit) {
  EXPECT_EQ(*parse_duration_ms("30d"), 30 * 86400000LL);
  EXPECT_EQ(*parse_duration_ms("12h"), 12 * 3600000LL);
  EXPECT_EQ(*parse_duration_ms("90m"), 90 * 60000LL);
  EXPECT_EQ(*parse_duration_ms("3600s"), 3600000LL);
  EXPECT_EQ(*parse_duration_ms("007s"), 7000LL);
}

TEST(ParseDuration, RefusesEverythingElse) {
  for (const char* bad :
       {"", "30", "d", "0s", "0d", "-1d", "+1d", "1.5h", "30 d", " 30d", "30d ", "1w", "1D",
        "1h30m", "3600ms", "99999999999999999999d", "9223372036854775807s"}) {
    auto d = parse_duration_ms(bad);
    EXPECT_FALSE(d) << "\"" << bad << "\" gave " << (d ? *d : 0);
  }
  auto d = parse_duration_ms("1w");
  ASSERT_FALSE(d);
  EXPECT_NE(d.status().message().find("30d, 12h, 90m, 3600s"), std::string::npos)
      << d.status().message();
}

TEST(KeyId, SameRuleAsTrustedKeys) {
  EXPECT_TRUE(is_key_id("ops-2026"));
  EXPECT_TRUE(is_key_id("a.b_C-9"));
  EXPECT_TRUE(is_key_id(std::string(64, 'k')));
  EXPECT_FALSE(is_key_id(""));
  EXPECT_FALSE(is_key_id(std::string(65, 'k')));
  EXPECT_FALSE(is_key_id("ops 2026"));
  EXPECT_FALSE(is_key_id("ops/2026"));
  EXPECT_FALSE(is_key_id("\"x\""));
}

TEST(ParseLayerJson, OneObjectWithoutComments) {
  EXPECT_TRUE(parse_layer_json(R"({"hub": {"keepalive_s": 60}})"));
  EXPECT_FALSE(parse_layer_json("[1, 2]"));
  EXPECT_FALSE(parse_layer_json("\"text\""));
  EXPECT_FALSE(parse_layer_json("{\"hub\": {}} // a comment"));
  EXPECT_FALSE(parse_layer_json("{\"hub\": {\"keepalive_s\": 60}"));
  EXPECT_FALSE(parse_layer_json("{\"x\": 1e400}"));
}

// nlohmann quotes the token it last read: for an unterminated string, nearly the whole payload.
// The reason goes to the log, the history and the hub's config status: it is cut, and printable.
TEST(ParseLayerJson, AParseErrorIsCutAndPrintable) {
  auto long_token = parse_layer_json("{\"hub\": \"" + std::string(10000, 'a'));
  ASSERT_FALSE(long_token);
  const std::string& m = long_token.status().message();
  EXPECT_LT(m.size(), 300u) << m.size();
  EXPECT_EQ(m.compare(0, 15, "not valid JSON:"), 0) << m;
  EXPECT_EQ(m.substr(m.size() - 3), "...") << m;

  auto latin1 = parse_layer_json("{\"hub\": \"M\xFCller\"}");
  ASSERT_FALSE(latin1);
  const std::string& n = latin1.status().message();
  EXPECT_TRUE(std::all_of(n.begin(), n.end(), [](unsigned char c) {
    return c >= 0x20 && c < 0x7F;
  })) << n;
}

// Only a hand-edited state file holds such a layer (a push of it is refused): `config show` lists
// it as not usable and the agent leaves it out, where it was merged into nothing silently before.
TEST(ParseLayerJson, ALayerNestedTooDeepIsRefusedWithAMessage) {
  const std::string deep = "{\"x\":" + std::string(200000, '[') + std::string(200000, ']') + "}";
  auto r = parse_layer_json(deep);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.status().message(), "nested deeper than 32 levels");
  const std::string at_bound = "{\"x\":" + std::string(31, '[') + std::string(31, ']') + "}";
  EXPECT_TRUE(parse_layer_json(at_bound)) << "32 levels is within the bound";
}

TEST(CheckLayer, AcceptsKnownKeysOfTheRightType) {
  LayerCheck c = check_layer(json::parse(R"({
    "hub": {"keepalive_s": 60, "linger_ms": 50, "uri": "ssl://hub.example.net:8883"},
    "retry": {"initial_ms": 1000, "max_ms": 120000},
    "storage": {"keep_delivered": 5000}
  })"));
  EXPECT_TRUE(c.ok()) << c.errors.front();
  EXPECT_TRUE(c.notes.empty());
  EXPECT_TRUE(check_layer(json::object()).ok());
}

TEST(CheckLayer, RefusesUnknownKeysNamingThem) {
  LayerCheck c = check_layer(json::parse(R"({"hub": {"keepalive": 60}, "extra": true})"));
  ASSERT_EQ(c.errors.size(), 2u);
  std::sort(c.errors.begin(), c.errors.end());
  EXPECT_EQ(c.errors[0], "extra: unknown key");
  EXPECT_EQ(c.errors[1], "hub.keepalive: unknown key");
}

TEST(CheckLayer, RefusesWrongTypesAndRanges) {
  LayerCheck c = check_layer(json::parse(R"({"hub": {"keepalive_s": "60"}})"));
  ASSERT_EQ(c.errors.size(), 1u);
  EXPECT_EQ(c.errors[0], "hub.keepalive_s: must be an integer");
  c = check_layer(json::parse(R"({"hub": {"keepalive_s": 1}})"));
  ASSERT_EQ(c.errors.size(), 1u);
  EXPECT_NE(c.errors[0].find("hub.keepalive_s: must be between"), std::string::npos);
  c = check_layer(json::parse(R"({"retry": 5})"));
  ASSERT_EQ(c.errors.size(), 1u);
  EXPECT_EQ(c.errors[0], "retry: must be an object");
  c = check_layer(json::parse(R"({"hub": {"uri": "tcp://hub:1883"}})"));
  EXPECT_FALSE(c.ok()) << "an unencrypted hub without allow_insecure";
}

TEST(CheckLayer, RefusesLocalOnlyKeys) {
  for (const char* layer :
       {R"({"storage": {"path": "/var/lib/other/outbox.db"}})", R"({"device": {"id": "d"}})",
        R"({"remote_config": {"probation_s": 60}})", R"({"ingest": {"socket": "/run/other.sock"}})",
        R"({"hub": {"topic_prefix": "other"}})"}) {
    LayerCheck c = check_layer(json::parse(layer));
    ASSERT_EQ(c.errors.size(), 1u) << layer;
    EXPECT_NE(c.errors[0].find("local-only"), std::string::npos) << c.errors[0];
  }
  EXPECT_FALSE(check_layer(json::array()).ok());
}

// A rule across keys that only fails against the stand-in for the box's file is the box's to
// judge: hub.cert_file alone is fine on a box whose file sets hub.key_file.
TEST(CheckLayer, RulesOnKeysTheLayerDoesNotSetAreNotesNotErrors) {
  LayerCheck c = check_layer(json::parse(R"({"hub": {"cert_file": "/etc/edgesync/new.crt"}})"));
  EXPECT_TRUE(c.ok()) << c.errors.front();
  ASSERT_EQ(c.notes.size(), 1u);
  EXPECT_EQ(c.notes[0], "hub.key_file: required with hub.cert_file");
}

}  // namespace
}  // namespace edgesync::agent
