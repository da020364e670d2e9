#include "agent/config.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace edgesync::agent {
namespace {

const char* kMinimal = R"({
  // comments are allowed
  "device": {"id": "pos-01", "store_id": "store-042"},
  "hub": {"uri": "tcp://hub:1883", "allow_insecure": true}
})";

std::vector<std::string> errors_of(const std::string& text) {
  Config c;
  return parse_config(text, &c);
}

bool has(const std::vector<std::string>& errors, const std::string& needle) {
  return std::any_of(errors.begin(), errors.end(),
                     [&](const std::string& e) { return e.find(needle) != std::string::npos; });
}

TEST(Config, MinimalConfigGetsDefaults) {
  Config c;
  auto errors = parse_config(kMinimal, &c);
  ASSERT_TRUE(errors.empty()) << errors.front();
  EXPECT_EQ(c.device.id, "pos-01");
  EXPECT_EQ(c.storage.path, "/var/lib/edgesync/outbox.db");
  EXPECT_EQ(c.storage.max_bytes, int64_t{1} << 30);
  EXPECT_EQ(c.ingest.socket, "/run/edgesync/ingest.sock");
  EXPECT_EQ(c.ingest.max_line_bytes, 256 * 1024);
  EXPECT_EQ(c.hub.topic_prefix, "edgesync/v1");
  EXPECT_EQ(c.hub.keepalive_s, 30);
  EXPECT_EQ(c.hub.max_inflight, 64);
  EXPECT_EQ(c.hub.linger_ms, 500);
  EXPECT_EQ(c.retry.initial_ms, 500);
  EXPECT_EQ(c.retry.max_ms, 60000);
  EXPECT_EQ(c.hub.client_id, "edgesync-store-042-pos-01");
  EXPECT_EQ(c.topic_base(), "edgesync/v1/store-042/pos-01");
}

TEST(Config, MissingRequiredKeysAreNamedByPath) {
  auto errors = errors_of(R"({"device": {}, "hub": {}})");
  EXPECT_TRUE(has(errors, "device.id: required"));
  EXPECT_TRUE(has(errors, "device.store_id: required"));
  EXPECT_TRUE(has(errors, "hub.uri: required"));
  auto no_sections = errors_of("{}");
  EXPECT_TRUE(has(no_sections, "device: required"));
  EXPECT_TRUE(has(no_sections, "hub: required"));
}

TEST(Config, UnknownKeysAreErrorsAtEveryLevel) {
  auto errors = errors_of(R"({"device": {"id": "a", "store_id": "b", "idd": 1},
    "hub": {"uri": "tcp://h:1", "allow_insecure": true, "max_inflights": 3}, "extra": {}})");
  EXPECT_TRUE(has(errors, "device.idd: unknown key"));
  EXPECT_TRUE(has(errors, "hub.max_inflights: unknown key"));
  EXPECT_TRUE(has(errors, "extra: unknown key"));
}

TEST(Config, WrongTypesAndRangesAreReported) {
  auto errors = errors_of(R"({"device": {"id": 5, "store_id": "s"},
    "storage": {"max_bytes": "big", "keep_delivered": -1},
    "ingest": {"max_line_bytes": 10},
    "hub": {"uri": "tcp://h:1", "allow_insecure": "yes", "max_inflight": 0, "linger_ms": 20000},
    "retry": {"initial_ms": 5000, "max_ms": 100}})");
  EXPECT_TRUE(has(errors, "device.id: must be a string"));
  EXPECT_TRUE(has(errors, "storage.max_bytes: must be an integer"));
  EXPECT_TRUE(has(errors, "storage.keep_delivered: must be between"));
  EXPECT_TRUE(has(errors, "ingest.max_line_bytes: must be between"));
  EXPECT_TRUE(has(errors, "hub.allow_insecure: must be true or false"));
  EXPECT_TRUE(has(errors, "hub.max_inflight: must be between"));
  EXPECT_TRUE(has(errors, "hub.linger_ms: must be between"));
  EXPECT_TRUE(has(errors, "retry.initial_ms: must not exceed retry.max_ms"));
}

TEST(Config, PlainTcpNeedsExplicitOptIn) {
  auto errors = errors_of(R"({"device": {"id": "a", "store_id": "b"},
    "hub": {"uri": "tcp://hub:1883"}})");
  EXPECT_TRUE(has(errors, "hub.uri: tcp:// sends events unencrypted"));
}

TEST(Config, TlsNeedsCaAndBothHalvesOfTheClientCert) {
  auto errors = errors_of(R"({"device": {"id": "a", "store_id": "b"},
    "hub": {"uri": "ssl://hub:8883", "cert_file": "/nonexistent/cert.pem"}})");
  EXPECT_TRUE(has(errors, "hub.ca_file: required for ssl://"));
  EXPECT_TRUE(has(errors, "hub.key_file: required with hub.cert_file"));
  EXPECT_TRUE(has(errors, "hub.cert_file: cannot read /nonexistent/cert.pem"));
}

TEST(Config, BadUriSchemeAndPortAreReported) {
  EXPECT_TRUE(has(errors_of(R"({"device": {"id": "a", "store_id": "b"},
    "hub": {"uri": "http://hub:80"}})"), "hub.uri: must start with ssl://"));
  EXPECT_TRUE(has(errors_of(R"({"device": {"id": "a", "store_id": "b"},
    "hub": {"uri": "tcp://hub", "allow_insecure": true}})"), "hub.uri: must name a port"));
}

TEST(Config, IdsThatWouldBreakTopicsAreRejected) {
  auto errors = errors_of(R"({"device": {"id": "pos/01", "store_id": "store+1"},
    "hub": {"uri": "tcp://h:1", "allow_insecure": true, "topic_prefix": "a/#"}})");
  EXPECT_TRUE(has(errors, "device.id: use 1-64"));
  EXPECT_TRUE(has(errors, "device.store_id: use 1-64"));
  EXPECT_TRUE(has(errors, "hub.topic_prefix"));
}

TEST(Config, InvalidJsonSaysWhere) {
  auto errors = errors_of("{\"device\": {\"id\": \"a\",}");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_TRUE(has(errors, "not valid JSON"));
  EXPECT_TRUE(has(errors, "line"));
  EXPECT_TRUE(has(errors_of("[1,2]"), "must be a JSON object"));
}

TEST(Config, LoadConfigListsEveryProblemWithTheFileName) {
  auto r = load_config("/nonexistent/edgesync.json");
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("/nonexistent/edgesync.json"), std::string::npos);
}

}  // namespace
}  // namespace edgesync::agent
