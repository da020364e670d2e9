#include "agent/config.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>

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
  EXPECT_EQ(c.hub.linger_ms, 0);
  EXPECT_EQ(c.retry.initial_ms, 500);
  EXPECT_EQ(c.retry.max_ms, 60000);
  EXPECT_EQ(c.retry.reconnect_spread_ms, 10000);
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

TEST(Config, ClientKeyWithoutCertificateIsReported) {
  auto errors = errors_of(R"({"device": {"id": "a", "store_id": "b"},
    "hub": {"uri": "ssl://hub:8883", "ca_file": "/nonexistent/ca.pem",
            "key_file": "/nonexistent/key.pem"}})");
  EXPECT_TRUE(has(errors, "hub.cert_file: required with hub.key_file"));
  EXPECT_TRUE(has(errors, "hub.ca_file: cannot read /nonexistent/ca.pem"));
  EXPECT_TRUE(has(errors, "hub.key_file: cannot read /nonexistent/key.pem"));
}

// send, status, outbox and dead-letters run as accounts that may not read the device's key.
TEST(Config, ToolsSkipTheTlsFileChecksButNotTheRest) {
  const char* text = R"({"device": {"id": "a", "store_id": "b"},
    "hub": {"uri": "ssl://hub:8883", "ca_file": "/nonexistent/ca.pem",
            "cert_file": "/nonexistent/cert.pem", "key_file": "/nonexistent/key.pem"}})";
  Config c;
  auto errors = parse_config(text, &c, FileChecks::kSkip);
  EXPECT_TRUE(errors.empty()) << errors.front();
  EXPECT_EQ(c.hub.key_file, "/nonexistent/key.pem");
  EXPECT_EQ(errors_of(text).size(), 3u);
  auto still_checked = parse_config(R"({"device": {"id": "a", "store_id": "b"},
    "hub": {"uri": "ssl://hub:8883", "key_file": "/k"}})", &c, FileChecks::kSkip);
  EXPECT_TRUE(has(still_checked, "hub.ca_file: required for ssl://"));
  EXPECT_TRUE(has(still_checked, "hub.cert_file: required with hub.key_file"));
}

TEST(Config, EmptyValuesAndSectionsOfTheWrongKindAreReported) {
  auto errors = errors_of(R"({"device": {"id": "", "store_id": "b"},
    "storage": {"path": ""}, "ingest": {"socket": ""}, "retry": [1],
    "hub": {"uri": "tcp://h:1", "allow_insecure": true}})");
  EXPECT_TRUE(has(errors, "device.id: must not be empty"));
  EXPECT_TRUE(has(errors, "storage.path: must not be empty"));
  EXPECT_TRUE(has(errors, "ingest.socket: must not be empty"));
  EXPECT_TRUE(has(errors, "retry: must be an object"));
  EXPECT_TRUE(has(errors_of(R"({"device": "pos-01", "hub": {"uri": "tcp://h:1",
    "allow_insecure": true}})"), "device: must be an object"));
}

TEST(Config, BudgetMustHoldTheLargestAllowedEvent) {
  auto errors = errors_of(R"({"device": {"id": "a", "store_id": "b"},
    "storage": {"max_bytes": 2097152}, "ingest": {"max_line_bytes": 4194304},
    "hub": {"uri": "tcp://h:1", "allow_insecure": true}})");
  EXPECT_TRUE(has(errors, "storage.max_bytes: must be at least twice ingest.max_line_bytes"));
  EXPECT_TRUE(errors_of(R"({"device": {"id": "a", "store_id": "b"},
    "storage": {"max_bytes": 2097152}, "ingest": {"max_line_bytes": 1048576},
    "hub": {"uri": "tcp://h:1", "allow_insecure": true}})").empty());
}

TEST(Config, SocketPathTooLongForAUnixSocketIsReported) {
  const std::string path = "/run/" + std::string(103, 's');  // 108 bytes: one too many
  auto errors = errors_of(R"({"device": {"id": "a", "store_id": "b"}, "ingest": {"socket": ")" +
                          path + R"("}, "hub": {"uri": "tcp://h:1", "allow_insecure": true}})");
  EXPECT_TRUE(has(errors, "ingest.socket: path longer than 107 bytes"));
  const std::string fits = "/run/" + std::string(102, 's');
  EXPECT_TRUE(errors_of(R"({"device": {"id": "a", "store_id": "b"}, "ingest": {"socket": ")" +
                        fits + R"("}, "hub": {"uri": "tcp://h:1", "allow_insecure": true}})")
                  .empty());
}

TEST(Config, OperationsSectionsHaveDefaultsAndAreChecked) {
  Config c;
  ASSERT_TRUE(parse_config(kMinimal, &c).empty());
  EXPECT_EQ(c.control_socket(), "/run/edgesync/control.sock") << "beside the ingest socket";
  EXPECT_EQ(c.health.interval_s, 60);
  EXPECT_EQ(c.metrics.listen, "") << "metrics are off by default";
  EXPECT_EQ(c.log.level, "info");
  EXPECT_EQ(c.log.format, "auto");

  auto errors = errors_of(R"({"device": {"id": "a", "store_id": "b"},
    "hub": {"uri": "tcp://h:1", "allow_insecure": true},
    "ingest": {"socket": "/run/x/s.sock"}, "control": {"socket": "/run/x/s.sock"},
    "health": {"interval_s": 1}, "metrics": {"listen": "9465"},
    "log": {"level": "loud", "format": "xml"}})");
  EXPECT_TRUE(has(errors, "control.socket: must differ from ingest.socket"));
  EXPECT_TRUE(has(errors, "health.interval_s"));
  EXPECT_TRUE(has(errors, "metrics.listen: must be HOST:PORT"));
  EXPECT_TRUE(has(errors, "log.level: must be"));
  EXPECT_TRUE(has(errors, "log.format: must be"));
  for (const char* bad : {":9465", "localhost:", "localhost:99999", "localhost:http"}) {
    EXPECT_TRUE(has(errors_of(std::string(R"({"device": {"id": "a", "store_id": "b"},
      "hub": {"uri": "tcp://h:1", "allow_insecure": true}, "metrics": {"listen": ")") +
                              bad + R"("}})"),
                    "metrics.listen"))
        << bad;
  }
  EXPECT_TRUE(errors_of(R"({"device": {"id": "a", "store_id": "b"},
    "hub": {"uri": "tcp://h:1", "allow_insecure": true}, "metrics": {"listen": "127.0.0.1:9465"},
    "control": {"socket": "/run/edgesync/ctl.sock"}})")
                  .empty());
}

TEST(Config, EveryRangeIsCheckedAtBothEnds) {
  struct Case {
    const char* section;
    const char* key;
    int64_t below, lowest, highest, above;
  };
  const Case cases[] = {
      {"storage", "max_bytes", (1 << 20) - 1, 1 << 20, int64_t{1} << 50, (int64_t{1} << 50) + 1},
      {"storage", "keep_delivered", -1, 0, 100000000, 100000001},
      {"ingest", "max_line_bytes", 1023, 1024, 64 << 20, (64 << 20) + 1},
      {"ingest", "max_connections", 0, 1, 65536, 65537},
      {"ingest", "idle_timeout_s", 0, 1, 86400, 86401},
      {"storage", "max_dead_letters", 0, 1, 10000000, 10000001},
      {"storage", "dead_letter_days", 0, 1, 3650, 3651},
      {"hub", "keepalive_s", 4, 5, 3600, 3601},
      {"hub", "max_inflight", 0, 1, 65535, 65536},
      {"hub", "linger_ms", -1, 0, 10000, 10001},
      {"retry", "initial_ms", 9, 10, 3600000, 3600001},
      {"retry", "max_ms", 9, 10, 86400000, 86400001},
      {"retry", "reconnect_spread_ms", -1, 0, 3600000, 3600001},
  };
  for (const Case& c : cases) {
    auto config_with = [&](int64_t v) {
      nlohmann::json j = {{"device", {{"id", "a"}, {"store_id", "b"}}},
                          {"hub", {{"uri", "tcp://h:1"}, {"allow_insecure", true}}}};
      j[c.section][c.key] = v;
      // Keep the cross-key rule out of the way: initial_ms <= max_ms.
      if (std::string(c.section) == "retry") {
        j["retry"][std::string(c.key) == "max_ms" ? "initial_ms" : "max_ms"] =
            std::string(c.key) == "max_ms" ? 10 : 86400000;
      }
      return j.dump();
    };
    const std::string path = std::string(c.section) + "." + c.key + ": must be between";
    EXPECT_TRUE(has(errors_of(config_with(c.below)), path)) << path << " " << c.below;
    EXPECT_TRUE(has(errors_of(config_with(c.above)), path)) << path << " " << c.above;
    EXPECT_TRUE(errors_of(config_with(c.lowest)).empty()) << path << " " << c.lowest;
    EXPECT_TRUE(errors_of(config_with(c.highest)).empty()) << path << " " << c.highest;
  }
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

// A number too large for a double is not a parse_error but an out_of_range exception: it
// escaped parse_config and ended the agent and check-config instead of being reported.
TEST(Config, NumberOverflowIsReportedNotThrown) {
  std::vector<std::string> errors;
  ASSERT_NO_THROW(errors = errors_of(R"({"device": {"id": "d", "store_id": "s"},
    "hub": {"uri": "tcp://h:1", "allow_insecure": true, "keepalive_s": 1e400}})"));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_TRUE(has(errors, "not valid JSON"));
  EXPECT_TRUE(has(errors, "1e400"));
  Config c;
  ASSERT_NO_THROW(errors = parse_config("[184467e70351]", &c, FileChecks::kSkip));
  EXPECT_EQ(errors.size(), 1u);
}

// Above INT64_MAX the value wrapped to a negative number: "got -1" for 18446744073709551615.
TEST(Config, IntegersBeyondInt64AreReportedAsWritten) {
  auto errors = errors_of(R"({"device": {"id": "d", "store_id": "s"},
    "storage": {"max_bytes": 18446744073709551615, "keep_delivered": 9223372036854775808},
    "hub": {"uri": "tcp://h:1", "allow_insecure": true}})");
  EXPECT_TRUE(has(errors, "storage.max_bytes: must be between 1048576 and 1125899906842624, "
                          "got 18446744073709551615"));
  EXPECT_TRUE(has(errors, "storage.keep_delivered: must be between 0 and 100000000, "
                          "got 9223372036854775808"));
  EXPECT_FALSE(has(errors, "got -"));
}

TEST(Config, LoadConfigListsEveryProblemWithTheFileName) {
  auto r = load_config("/nonexistent/edgesync.json");
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("/nonexistent/edgesync.json"), std::string::npos);
}

}  // namespace
}  // namespace edgesync::agent
