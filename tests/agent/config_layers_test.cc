#include "agent/config_layers.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "events/json_nesting.h"

namespace edgesync::agent {
namespace {

using nlohmann::json;

json local_json() {
  return json::parse(R"({
    "device": {"id": "d1", "store_id": "s1"},
    "storage": {"path": "/var/lib/edgesync/outbox.db", "max_bytes": 1073741824},
    "hub": {"uri": "ssl://hub.example.net:8883", "ca_file": "/etc/edgesync/ca.pem",
            "linger_ms": 0, "password": "hunter2"},
    "retry": {"initial_ms": 500, "max_ms": 60000}
  })");
}

// A Config from JSON; files are not checked (none of these exist).
Config config_of(const json& j) {
  Config c;
  auto errors = parse_config_json(j, &c, FileChecks::kSkip);
  EXPECT_TRUE(errors.empty()) << errors.front() << "\n" << j.dump(2);
  return c;
}

// `local_json()` with one value changed, at a JSON pointer such as "/hub/uri".
Config config_with(const std::string& pointer, const json& value) {
  json j = local_json();
  j[json::json_pointer(pointer)] = value;
  return config_of(j);
}

bool has(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

// ---- merging ----------------------------------------------------------------------------

std::vector<Layer> three_layers() {
  return {
      {Scope::kFleet, 3,
       json::parse(R"({"hub": {"linger_ms": 10, "keepalive_s": 60},
                       "storage": {"max_bytes": 2147483648}})")},
      {Scope::kStore, 2,
       json::parse(R"({"hub": {"linger_ms": 20}, "retry": {"max_ms": 1000}})")},
      {Scope::kDevice, 9, json::parse(R"({"hub": {"linger_ms": 30}})")},
  };
}

// `[[[...]]]` nested `depth` deep under key "x" of an object, as text.
std::string nested_text(int depth) {
  return "{\"x\":" + std::string(depth, '[') + std::string(depth, ']') + "}";
}

TEST(ConfigNesting, CountsWithoutRecursionAndStopsPastTheBound) {
  auto nesting = [](const json& j) { return events::json_nesting(j, kMaxConfigNesting); };
  EXPECT_EQ(nesting(json(1)), 0);
  EXPECT_EQ(nesting(json::parse("{}")), 1);
  EXPECT_EQ(nesting(json::parse(R"({"a": {"b": [1, {"c": 2}]}, "d": 3})")), 4);
  EXPECT_EQ(nesting(json::parse(nested_text(31))), 32);
  // Parsed and destroyed without recursion by nlohmann; only counted here.
  EXPECT_EQ(nesting(json::parse(nested_text(200000))), kMaxConfigNesting + 1);
  EXPECT_EQ(events::nesting_depth(nested_text(200000)), 200001);
  EXPECT_EQ(events::nesting_depth(R"({"a": "[[[{{{", "b": [{}]})"), 3) << "brackets in strings";
}

// A payload nested 200,000 deep overflowed the stack when check-config and the fuzzer merged a
// refused payload (each level one recursive copy): now it is refused with a message, and a
// merge leaves it out.
TEST(ConfigNesting, ADeeplyNestedPayloadIsRefusedAndNeverMerged) {
  // Moved, never copied: a copy of it would overflow the stack in the test itself.
  std::vector<Layer> layers;
  layers.push_back(Layer{Scope::kFleet, 7, json::parse(nested_text(200000))});
  Status s = check_pushable(layers[0].payload);
  ASSERT_FALSE(s.is_ok());
  EXPECT_EQ(s.message(), "payload: nested deeper than 32 levels");
  MergedConfig m = merge_layers(local_json(), layers);
  EXPECT_EQ(m.json, local_json());
  EXPECT_TRUE(check_pushable(json::parse(nested_text(30))).is_ok())
      << "31 levels is within the bound";
}

TEST(ConfigNesting, ADeeplyNestedConfigFileIsRefusedWithAMessage) {
  Config c;
  auto errors = parse_config(nested_text(200000), &c, FileChecks::kSkip);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0], "config: nested deeper than 32 levels");
}

TEST(ConfigLayers, FleetThenStoreThenDeviceWhateverTheVectorOrder) {
  std::vector<Layer> layers = three_layers();
  std::vector<int> order = {0, 1, 2};
  int permutations = 0;
  do {
    std::vector<Layer> shuffled;
    for (int i : order) shuffled.push_back(layers[i]);
    MergedConfig m = merge_layers(local_json(), shuffled);
    SCOPED_TRACE("order " + std::to_string(order[0]) + std::to_string(order[1]) +
                 std::to_string(order[2]));
    EXPECT_EQ(m.json["hub"]["linger_ms"], 30);
    EXPECT_EQ(m.json["hub"]["keepalive_s"], 60);
    EXPECT_EQ(m.json["storage"]["max_bytes"], 2147483648LL);
    EXPECT_EQ(m.json["retry"]["max_ms"], 1000);
    // Untouched members of merged objects stay.
    EXPECT_EQ(m.json["retry"]["initial_ms"], 500);
    EXPECT_EQ(m.json["hub"]["uri"], "ssl://hub.example.net:8883");
    EXPECT_EQ(m.json["storage"]["path"], "/var/lib/edgesync/outbox.db");
    EXPECT_EQ(m.json["device"]["id"], "d1");

    EXPECT_EQ(m.origin["hub.linger_ms"], "device v9");
    EXPECT_EQ(m.origin["hub.keepalive_s"], "fleet v3");
    EXPECT_EQ(m.origin["storage.max_bytes"], "fleet v3");
    EXPECT_EQ(m.origin["retry.max_ms"], "store v2");
    EXPECT_EQ(m.origin["retry.initial_ms"], "local");
    EXPECT_EQ(m.origin["hub.uri"], "local");
    EXPECT_EQ(m.origin["device.id"], "local");
    EXPECT_EQ(m.origin["storage.path"], "local");
    // One entry per leaf, no entry for an object.
    EXPECT_EQ(m.origin.count("hub"), 0u);
    EXPECT_EQ(m.origin.size(), 11u);
    ++permutations;
  } while (std::next_permutation(order.begin(), order.end()));
  EXPECT_EQ(permutations, 6);
}

TEST(ConfigLayers, NoLayersIsTheLocalFile) {
  MergedConfig m = merge_layers(local_json(), {});
  EXPECT_EQ(m.json, local_json());
  for (const auto& [leaf, from] : m.origin) EXPECT_EQ(from, "local") << leaf;
  EXPECT_EQ(m.origin.count("hub.password"), 1u);
}

TEST(ConfigLayers, ArraysAndScalarsReplaceObjectsMerge) {
  json local = {{"list", {1, 2, 3}}, {"obj", {{"a", 1}, {"b", 2}}}, {"n", 1}};
  MergedConfig m = merge_layers(
      local, {{Scope::kFleet, 1, {{"list", {4}}, {"obj", {{"b", 3}, {"c", 4}}}, {"n", "x"}}}});
  EXPECT_EQ(m.json["list"], json({4}));
  EXPECT_EQ(m.json["obj"], json({{"a", 1}, {"b", 3}, {"c", 4}}));
  EXPECT_EQ(m.json["n"], "x");
  EXPECT_EQ(m.origin["list"], "fleet v1");
  EXPECT_EQ(m.origin["obj.a"], "local");
  EXPECT_EQ(m.origin["obj.b"], "fleet v1");
  EXPECT_EQ(m.origin["obj.c"], "fleet v1");
  // An array of objects is one leaf, replaced whole.
  MergedConfig m2 = merge_layers({{"l", json::array({{{"a", 1}}, {{"b", 2}}})}},
                                 {{Scope::kStore, 2, {{"l", json::array({{{"c", 3}}})}}}});
  EXPECT_EQ(m2.json["l"], json::array({{{"c", 3}}}));
  EXPECT_EQ(m2.origin, (std::map<std::string, std::string>{{"l", "store v2"}}));
}

TEST(ConfigLayers, ObjectReplacedByScalarAndBackKeepsOriginsExact) {
  json local = {{"retry", {{"initial_ms", 500}, {"max_ms", 60000}}},
                {"r", 1},
                {"retry-x", 2},
                {"retryz", 3}};
  // Fleet turns the object into a scalar: its leaves are gone, the scalar is fleet's.
  MergedConfig m = merge_layers(local, {{Scope::kFleet, 3, {{"retry", 5}}}});
  EXPECT_EQ(m.json["retry"], 5);
  EXPECT_EQ(m.origin,
            (std::map<std::string, std::string>{
                {"retry", "fleet v3"}, {"r", "local"}, {"retry-x", "local"}, {"retryz", "local"}}));
  // Store turns it back into an object: no "retry" leaf any more, only store's.
  m = merge_layers(local, {{Scope::kStore, 2, {{"retry", {{"max_ms", 100}}}}},
                           {Scope::kFleet, 3, {{"retry", 5}}}});
  EXPECT_EQ(m.json["retry"], json({{"max_ms", 100}}));
  EXPECT_EQ(m.origin,
            (std::map<std::string, std::string>{{"retry.max_ms", "store v2"},
                                                {"r", "local"},
                                                {"retry-x", "local"},
                                                {"retryz", "local"}}));
  // A scalar in the local file replaced by a nested object: every new leaf is the layer's.
  m = merge_layers({{"hub", "x"}},
                   {{Scope::kDevice, 9, {{"hub", {{"linger_ms", 5}, {"tls", {{"a", 1}}}}}}}});
  EXPECT_EQ(m.origin, (std::map<std::string, std::string>{{"hub.linger_ms", "device v9"},
                                                          {"hub.tls.a", "device v9"}}));
  // An empty object is a leaf of its own.
  m = merge_layers({{"n", 1}}, {{Scope::kFleet, 1, {{"e", json::object()}}}});
  EXPECT_EQ(m.origin, (std::map<std::string, std::string>{{"n", "local"}, {"e", "fleet v1"}}));
}

// An empty object is a leaf only while it is empty: once a later layer puts members in it,
// the origin map names those members and no longer the object ("one entry per leaf").
TEST(ConfigLayers, EmptyObjectFilledByALayerIsNoLongerALeaf) {
  MergedConfig m = merge_layers({{"n", 1}, {"retry", json::object()}},
                                {{Scope::kFleet, 3, {{"retry", {{"max_ms", 100}}}}}});
  EXPECT_EQ(m.json["retry"], json({{"max_ms", 100}}));
  EXPECT_EQ(m.origin, (std::map<std::string, std::string>{{"n", "local"},
                                                          {"retry.max_ms", "fleet v3"}}));
  m = merge_layers({{"n", 1}}, {{Scope::kFleet, 1, {{"e", json::object()}}},
                                {Scope::kDevice, 2, {{"e", {{"a", 1}}}}}});
  EXPECT_EQ(m.origin,
            (std::map<std::string, std::string>{{"n", "local"}, {"e.a", "device v2"}}));
  // The local file's root itself is not a leaf.
  m = merge_layers(json::object(), {{Scope::kFleet, 1, {{"e", 1}}}});
  EXPECT_EQ(m.origin, (std::map<std::string, std::string>{{"e", "fleet v1"}}));
}

TEST(ConfigLayers, MergedDefaultsParseIntoTheExpectedConfig) {
  MergedConfig m = merge_layers(local_json(), three_layers());
  Config c = config_of(m.json);
  EXPECT_EQ(c.hub.linger_ms, 30);
  EXPECT_EQ(c.hub.keepalive_s, 60);
  EXPECT_EQ(c.storage.max_bytes, int64_t{2147483648});
  EXPECT_EQ(c.retry.max_ms, 1000);
  EXPECT_EQ(c.device.id, "d1");
}

// ---- local-only keys --------------------------------------------------------------------

TEST(ConfigLayers, CheckPushableRefusesEveryLocalOnlyKey) {
  struct Case {
    const char* payload;
    const char* named;
  };
  const Case cases[] = {
      {R"({"device": {"id": "d2"}})", "device ("},
      {R"({"device": {"store_id": "s2"}})", "device ("},
      {R"({"device": {}})", "device ("},
      {R"({"device": "d2"})", "device ("},
      {R"({"storage": {"path": "/tmp/x.db"}})", "storage.path ("},
      {R"({"storage": {"path": null}})", "storage.path ("},
      {R"({"ingest": {"socket": "/tmp/s"}})", "ingest.socket ("},
      {R"({"hub": {"topic_prefix": "other/v1"}})", "hub.topic_prefix ("},
      {R"({"control": {"socket": "/tmp/c.sock"}})", "control ("},
      {R"({"metrics": {"listen": "0.0.0.0:9465"}})", "metrics.listen ("},
      {R"({"remote_config": {"trusted_keys": {"evil": "/tmp/evil.pem"}}})", "remote_config ("},
      {R"({"remote_config": {"probation_s": 10}})", "remote_config ("},
      {R"({"remote_config": {}})", "remote_config ("},
      {R"({"log": {"format": "json"}})", "log.format ("},
      {R"({"ingest": {"http": {"max_connections": 3}}})", "ingest.http ("},
      {R"({"ingest": {"http": {"max_body_bytes": 4096}}})", "ingest.http ("},
      {R"({"ingest": {"http": {"listen": "127.0.0.1:8788"}}})", "ingest.http ("},
      {R"({"ingest": {"spool_dir": "/tmp/spool"}})", "ingest.spool_dir ("},
  };
  for (const auto& c : cases) {
    Status s = check_pushable(json::parse(c.payload));
    EXPECT_FALSE(s) << c.payload;
    EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << c.payload;
    EXPECT_NE(s.message().find(c.named), std::string::npos) << c.payload << ": " << s.message();
  }
}

TEST(ConfigLayers, CheckPushableNamesEveryKeyItRefuses) {
  Status s = check_pushable(json::parse(R"({"storage": {"path": "/x", "max_bytes": 2097152},
      "hub": {"topic_prefix": "p", "uri": "ssl://h:1"}, "remote_config": {"probation_s": 60}})"));
  ASSERT_FALSE(s);
  for (const char* k : {"storage.path (", "hub.topic_prefix (", "remote_config ("}) {
    EXPECT_NE(s.message().find(k), std::string::npos) << k << ": " << s.message();
  }
  EXPECT_EQ(s.message().find("max_bytes"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("local-only keys"), std::string::npos) << s.message();
}

TEST(ConfigLayers, CheckPushableAcceptsOrdinarySettings) {
  for (const char* payload : {
           R"({})",
           R"({"storage": {"max_bytes": 2147483648, "keep_delivered": 5}})",
           R"({"hub": {"uri": "ssl://other.example.net:8883", "linger_ms": 50,
                       "password": "x", "ca_file": "/etc/ca.pem"}})",
           R"({"retry": {"max_ms": 1000}, "ingest": {"max_line_bytes": 4096}})",
           R"({"health": {"interval_s": 30}, "log": {"level": "debug"}})",
           R"({"ingest": {"max_connections": 16, "unknown_types": "accept"}})",
           // Near misses of local-only paths are not local-only.
           R"({"storage": {"path_hint": 1}, "hub": {"topic_prefixes": 1}})",
           R"({"devices": 1, "remote": 1})",
       }) {
    Status s = check_pushable(json::parse(payload));
    EXPECT_TRUE(s) << payload << ": " << s.message();
  }
}

TEST(ConfigLayers, CheckPushableRefusesANonObject) {
  for (const char* payload : {"[]", "1", "\"x\"", "null"}) {
    EXPECT_FALSE(check_pushable(json::parse(payload))) << payload;
  }
}

TEST(ConfigLayers, LocalOnlyKeysListIsComplete) {
  std::vector<std::string> paths;
  for (const auto& k : local_only_keys()) {
    paths.push_back(k.path);
    EXPECT_NE(std::string(k.why), "") << k.path;
  }
  for (const char* k : {"device", "storage.path", "ingest.socket", "hub.topic_prefix",
                        "remote_config", "control", "metrics.listen"}) {
    EXPECT_TRUE(has(paths, k)) << k;
  }
}

// A pushed setting the agent applies only at a restart would be reported as running while the
// old value runs: every restart-only key must be refused by check_pushable.
TEST(ConfigLayers, EveryRestartOnlyKeyIsLocalOnly) {
  for (const std::string& key : restart_only_keys()) {
    json layer = json::object();
    json* at = &layer;
    size_t from = 0;
    for (size_t dot; (dot = key.find('.', from)) != std::string::npos; from = dot + 1) {
      at = &(*at)[key.substr(from, dot - from)];
    }
    (*at)[key.substr(from)] = 1;
    EXPECT_FALSE(check_pushable(layer)) << key << " is applied only at a restart but pushable";
  }
}

// ---- what a change needs ------------------------------------------------------------------

TEST(ConfigLayers, DiffOfEqualConfigsIsEmpty) {
  ConfigChange change = diff_configs(config_of(local_json()), config_of(local_json()));
  EXPECT_TRUE(change.empty());
  EXPECT_TRUE(change.restart_keys.empty());
  EXPECT_FALSE(change.reconnect);
}

TEST(ConfigLayers, DiffHubUriNeedsReconnect) {
  ConfigChange change =
      diff_configs(config_of(local_json()), config_with("/hub/uri", "ssl://other.example.net:8883"));
  EXPECT_EQ(change.keys, std::vector<std::string>{"hub.uri"});
  EXPECT_TRUE(change.reconnect);
  EXPECT_TRUE(change.restart_keys.empty());
}

TEST(ConfigLayers, DiffOtherHubSettingsNeedReconnect) {
  for (auto [pointer, value] : std::vector<std::pair<std::string, json>>{
           {"/hub/password", "other"}, {"/hub/keepalive_s", 60}, {"/hub/max_inflight", 8}}) {
    ConfigChange change = diff_configs(config_of(local_json()), config_with(pointer, value));
    EXPECT_TRUE(change.reconnect) << pointer;
    EXPECT_EQ(change.keys.size(), 1u) << pointer;
  }
}

TEST(ConfigLayers, DiffLiveSettingsNeedNoReconnect) {
  for (auto [pointer, value, key] : std::vector<std::tuple<std::string, json, std::string>>{
           {"/hub/linger_ms", 50, "hub.linger_ms"},
           {"/hub/refused_retry_s", 60, "hub.refused_retry_s"},
           {"/retry/max_ms", 120000, "retry.max_ms"},
           {"/storage/max_bytes", 2147483648LL, "storage.max_bytes"}}) {
    ConfigChange change = diff_configs(config_of(local_json()), config_with(pointer, value));
    EXPECT_EQ(change.keys, std::vector<std::string>{key});
    EXPECT_FALSE(change.reconnect) << key;
    EXPECT_TRUE(change.restart_keys.empty()) << key;
  }
}

TEST(ConfigLayers, DiffRestartOnlySettings) {
  for (auto [pointer, value, key] : std::vector<std::tuple<std::string, json, std::string>>{
           {"/storage/path", "/data/outbox.db", "storage.path"},
           {"/ingest/socket", "/run/other.sock", "ingest.socket"},
           {"/hub/topic_prefix", "other/v2", "hub.topic_prefix"}}) {
    ConfigChange change = diff_configs(config_of(local_json()), config_with(pointer, value));
    EXPECT_EQ(change.keys, std::vector<std::string>{key});
    EXPECT_EQ(change.restart_keys, std::vector<std::string>{key});
    // A restart makes the connection anew anyway.
    EXPECT_FALSE(change.reconnect) << key;
  }
  // A new device id also changes the default client id: both listed, restart and reconnect.
  ConfigChange change = diff_configs(config_of(local_json()), config_with("/device/id", "d2"));
  EXPECT_TRUE(has(change.keys, "device.id"));
  EXPECT_TRUE(has(change.keys, "hub.client_id"));
  EXPECT_EQ(change.restart_keys, std::vector<std::string>{"device.id"});
}

TEST(ConfigLayers, DiffListsEveryChangedKey) {
  json j = local_json();
  j["hub"]["linger_ms"] = 5;
  j["storage"]["path"] = "/data/outbox.db";
  j["retry"]["max_ms"] = 1000;
  ConfigChange change = diff_configs(config_of(local_json()), config_of(j));
  EXPECT_EQ(change.keys,
            (std::vector<std::string>{"hub.linger_ms", "retry.max_ms", "storage.path"}));
  EXPECT_EQ(change.restart_keys, std::vector<std::string>{"storage.path"});
  EXPECT_FALSE(change.reconnect);
}

// ---- hash and redaction ---------------------------------------------------------------------

TEST(ConfigLayers, Sha256DependsOnSettingsNotOnHowTheyWereWritten) {
  const Config a = config_of(local_json());
  // The same settings, defaults spelled out, members in another order, via a layer.
  json spelled = local_json();
  spelled["hub"]["keepalive_s"] = 30;
  spelled["storage"]["keep_delivered"] = 10000;
  spelled["hub"]["linger_ms"] = 7;
  MergedConfig m = merge_layers(spelled, {{Scope::kDevice, 4, {{"hub", {{"linger_ms", 0}}}}}});
  const Config b = config_of(m.json);
  const std::string ha = config_sha256(a);
  EXPECT_EQ(ha.size(), 64u);
  EXPECT_EQ(ha.find_first_not_of("0123456789abcdef"), std::string::npos) << ha;
  EXPECT_EQ(ha, config_sha256(b));
  EXPECT_EQ(ha, config_sha256(a)) << "stable";

  EXPECT_NE(ha, config_sha256(config_with("/hub/linger_ms", 1)));
  EXPECT_NE(ha, config_sha256(config_with("/hub/password", "hunter3")));
  EXPECT_NE(ha, config_sha256(config_with("/retry/max_ms", 60001)));
}

TEST(ConfigLayers, RedactedHidesThePassword) {
  const Config c = config_of(local_json());
  json r = redacted(c);
  EXPECT_EQ(r["hub"]["password"], "<redacted>");
  EXPECT_EQ(r.dump().find("hunter2"), std::string::npos) << r.dump();
  // Everything else as it is.
  json plain = config_to_json(c);
  EXPECT_EQ(plain["hub"]["password"], "hunter2");
  plain["hub"]["password"] = "<redacted>";
  EXPECT_EQ(r, plain);
  // No password: nothing to hide, and no pretend one shown.
  json no_password = local_json();
  no_password["hub"].erase("password");
  EXPECT_EQ(redacted(config_of(no_password))["hub"]["password"], "");
}

// ---- topics -----------------------------------------------------------------------------------

TEST(ConfigLayers, ScopeTopics) {
  const Config c = config_of(local_json());
  ASSERT_EQ(c.hub.topic_prefix, "edgesync/v1");
  EXPECT_EQ(scope_topic(c, Scope::kFleet), "edgesync/v1/fleet/config");
  EXPECT_EQ(scope_topic(c, Scope::kStore), "edgesync/v1/s1/config");
  EXPECT_EQ(scope_topic(c, Scope::kDevice), "edgesync/v1/s1/d1/config");
  EXPECT_EQ(config_status_topic(c), "edgesync/v1/s1/d1/config/status");
  for (Scope s : kScopes) EXPECT_EQ(scope_of_topic(c, scope_topic(c, s)), s);
  for (const char* other :
       {"edgesync/v1/s1/d1/config/status", "edgesync/v1/s2/config", "edgesync/v1/s1/d2/config",
        "edgesync/v2/fleet/config", "edgesync/v1/fleet/config/", "edgesync/v1/s1/d1/events", "",
        "edgesync/v1/+/config", "edgesync/v1/#"}) {
    EXPECT_FALSE(scope_of_topic(c, other).has_value()) << other;
  }
}

TEST(ConfigLayers, ScopeNames) {
  EXPECT_STREQ(scope_name(Scope::kFleet), "fleet");
  EXPECT_STREQ(scope_name(Scope::kStore), "store");
  EXPECT_STREQ(scope_name(Scope::kDevice), "device");
  for (Scope s : kScopes) EXPECT_EQ(scope_from_name(scope_name(s)), s);
  EXPECT_FALSE(scope_from_name("local").has_value());
  EXPECT_FALSE(scope_from_name("Fleet").has_value());
  EXPECT_FALSE(scope_from_name("").has_value());
}

}  // namespace
}  // namespace edgesync::agent
