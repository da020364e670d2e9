// The remote_config section of the config file, and config_to_json: what a pushed layer is
// merged onto and what the effective config is hashed and reported as.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "agent/config.h"

namespace edgesync::agent {
namespace {

using nlohmann::json;

json base() {
  return json::parse(R"({
    "device": {"id": "d1", "store_id": "s1"},
    "hub": {"uri": "tcp://hub:1883", "allow_insecure": true}
  })");
}

json with_remote(const json& remote) {
  json j = base();
  j["remote_config"] = remote;
  return j;
}

std::vector<std::string> errors_of(const json& j, FileChecks files = FileChecks::kCheck) {
  Config c;
  return parse_config_json(j, &c, files);
}

bool has(const std::vector<std::string>& errors, const std::string& needle) {
  return std::any_of(errors.begin(), errors.end(),
                     [&](const std::string& e) { return e.find(needle) != std::string::npos; });
}

std::string joined(const std::vector<std::string>& errors) {
  std::string s;
  for (const auto& e : errors) s += e + "\n";
  return s;
}

// A readable file for the key checks; removed at the end of the test.
class KeyFile {
 public:
  KeyFile() {
    char tmpl[] = "/tmp/edgesync-key-XXXXXX";
    int fd = ::mkstemp(tmpl);
    if (fd >= 0) {
      ::close(fd);
      path_ = tmpl;
      std::ofstream(path_) << "-----BEGIN PUBLIC KEY-----\n";
    }
  }
  ~KeyFile() {
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(ConfigRemote, DefaultsWhenAbsent) {
  Config c;
  auto errors = parse_config_json(base(), &c, FileChecks::kCheck);
  ASSERT_TRUE(errors.empty()) << joined(errors);
  EXPECT_TRUE(c.remote_config.trusted_keys.empty());
  EXPECT_EQ(c.remote_config.probation_s, 300);
}

TEST(ConfigRemote, TrustedKeysAreAMapOfKeyIdToFile) {
  KeyFile a, b;
  ASSERT_FALSE(a.path().empty());
  Config c;
  auto errors = parse_config_json(
      with_remote({{"trusted_keys", {{"ops-2026", a.path()}, {"ops_2027.b", b.path()}}},
                   {"probation_s", 60}}),
      &c, FileChecks::kCheck);
  ASSERT_TRUE(errors.empty()) << joined(errors);
  EXPECT_EQ(c.remote_config.trusted_keys,
            (std::map<std::string, std::string>{{"ops-2026", a.path()}, {"ops_2027.b", b.path()}}));
  EXPECT_EQ(c.remote_config.probation_s, 60);
}

TEST(ConfigRemote, BadKeyIdsAreRefused) {
  KeyFile f;
  for (const std::string& id : {std::string("ops 2026"), std::string("ops/2026"), std::string(""),
                               std::string("ops+"), std::string("#"), std::string(65, 'k'),
                               std::string("\xc3\xa9t\xc3\xa9")}) {
    auto errors = errors_of(with_remote({{"trusted_keys", {{id, f.path()}}}}));
    EXPECT_TRUE(has(errors, "remote_config.trusted_keys." + id + ": a key id is"))
        << "[" << id << "]: " << joined(errors);
  }
  EXPECT_TRUE(errors_of(with_remote({{"trusted_keys", {{std::string(64, 'k'), f.path()}}}}))
                  .empty());
}

TEST(ConfigRemote, NonStringOrEmptyFilesAreRefused) {
  for (const json& value : {json(5), json(nullptr), json(true), json::array({"a"}),
                            json::object({{"file", "x"}}), json("")}) {
    auto errors = errors_of(with_remote({{"trusted_keys", {{"ops", value}}}}));
    EXPECT_TRUE(has(errors, "remote_config.trusted_keys.ops: must be a non-empty string"))
        << value.dump() << ": " << joined(errors);
  }
}

TEST(ConfigRemote, TrustedKeysMustBeAnObject) {
  for (const json& value : {json("ops.pem"), json::array({"ops.pem"}), json(1)}) {
    auto errors = errors_of(with_remote({{"trusted_keys", value}}));
    EXPECT_TRUE(has(errors, "remote_config.trusted_keys: must be an object"))
        << value.dump() << ": " << joined(errors);
  }
  auto errors = errors_of(with_remote("on"));
  EXPECT_TRUE(has(errors, "remote_config: must be an object")) << joined(errors);
}

TEST(ConfigRemote, UnreadableKeyFileRefusedOnlyWhenFilesAreChecked) {
  const json j = with_remote({{"trusted_keys", {{"ops", "/nonexistent/edgesync/ops.pem"}}}});
  auto checked = errors_of(j, FileChecks::kCheck);
  EXPECT_TRUE(has(checked, "remote_config.trusted_keys.ops: cannot read "
                           "/nonexistent/edgesync/ops.pem"))
      << joined(checked);
  Config c;
  auto skipped = parse_config_json(j, &c, FileChecks::kSkip);
  EXPECT_TRUE(skipped.empty()) << joined(skipped);
  EXPECT_EQ(c.remote_config.trusted_keys.at("ops"), "/nonexistent/edgesync/ops.pem");
}

TEST(ConfigRemote, ProbationBounds) {
  for (int64_t ok : {int64_t{10}, int64_t{300}, int64_t{7 * 24 * 3600}}) {
    Config c;
    auto errors = parse_config_json(with_remote({{"probation_s", ok}}), &c);
    EXPECT_TRUE(errors.empty()) << ok << ": " << joined(errors);
    EXPECT_EQ(c.remote_config.probation_s, ok);
  }
  for (const json& bad : {json(9), json(0), json(-1), json(7 * 24 * 3600 + 1), json(10.5),
                          json("300"), json(18446744073709551615ULL)}) {
    auto errors = errors_of(with_remote({{"probation_s", bad}}));
    EXPECT_TRUE(has(errors, "remote_config.probation_s: must be")) << bad.dump() << ": "
                                                                   << joined(errors);
  }
}

TEST(ConfigRemote, UnknownKeysInTheSectionAreRefused) {
  auto errors = errors_of(with_remote({{"trusted_key", json::object()}}));
  EXPECT_TRUE(has(errors, "remote_config.trusted_key: unknown key")) << joined(errors);
}

TEST(ConfigRemote, AConfigWithProblemsLeavesTheOldOneUntouched) {
  Config c;
  c.remote_config.probation_s = 77;
  auto errors = parse_config_json(with_remote({{"probation_s", 1}}), &c);
  EXPECT_FALSE(errors.empty());
  EXPECT_EQ(c.remote_config.probation_s, 77);
}

// ---- config_to_json ----------------------------------------------------------------------------

json full() {
  return json::parse(R"({
    "device": {"id": "pos-01", "store_id": "store-042"},
    "storage": {"path": "/data/outbox.db", "max_bytes": 2147483648, "keep_delivered": 5,
                "max_dead_letters": 7, "dead_letter_days": 9},
    "ingest": {"socket": "/run/x.sock", "max_line_bytes": 4096, "max_connections": 3,
               "idle_timeout_s": 11, "contracts_dir": "/opt/c", "extra_contract_dirs": ["/etc/c"],
               "unknown_types": "accept", "spool_dir": "/var/spool/x",
               "http": {"listen": "/run/x-http.sock", "max_body_bytes": 65536,
                        "max_connections": 5}},
    "hub": {"uri": "ssl://hub.example.net:8883", "topic_prefix": "acme/v1",
            "fallback_uris": ["ssl://hub-2.example.net:8883"],
            "client_id": "custom-client", "ca_file": "/etc/ca.pem", "cert_file": "/etc/c.pem",
            "key_file": "/etc/k.pem", "username": "u", "password": "p\"w",
            "keepalive_s": 13, "max_inflight": 17, "linger_ms": 19, "refused_retry_s": 23,
            "allow_insecure": true},
    "retry": {"initial_ms": 29, "max_ms": 31, "reconnect_spread_ms": 43},
    "control": {"socket": "/run/x-control.sock"},
    "health": {"interval_s": 41},
    "log": {"level": "debug", "format": "json"},
    "metrics": {"listen": "127.0.0.1:9465"},
    "remote_config": {"trusted_keys": {"a": "/etc/a.pem", "b-2": "/etc/b.pem"},
                      "probation_s": 37}
  })");
}

TEST(ConfigRemote, ConfigToJsonRoundTrips) {
  for (const json& source : {base(), full()}) {
    Config c;
    auto errors = parse_config_json(source, &c, FileChecks::kSkip);
    ASSERT_TRUE(errors.empty()) << joined(errors);
    const json once = config_to_json(c);
    Config again;
    errors = parse_config_json(once, &again, FileChecks::kSkip);
    ASSERT_TRUE(errors.empty()) << joined(errors) << once.dump(2);
    EXPECT_EQ(config_to_json(again), once);
  }
}

TEST(ConfigRemote, ConfigToJsonStatesEverySettingOfTheFile) {
  // Every value set in full() comes back at the same place: nothing dropped, nothing renamed.
  Config c;
  auto errors = parse_config_json(full(), &c, FileChecks::kSkip);
  ASSERT_TRUE(errors.empty()) << joined(errors);
  EXPECT_EQ(config_to_json(c), full());
}

TEST(ConfigRemote, ConfigToJsonFillsDefaults) {
  Config c;
  ASSERT_TRUE(parse_config_json(base(), &c, FileChecks::kSkip).empty());
  json j = config_to_json(c);
  EXPECT_EQ(j["storage"]["path"], "/var/lib/edgesync/outbox.db");
  EXPECT_EQ(j["hub"]["client_id"], "edgesync-s1-d1");
  EXPECT_EQ(j["hub"]["topic_prefix"], "edgesync/v1");
  EXPECT_EQ(j["hub"]["password"], "");
  EXPECT_EQ(j["remote_config"]["trusted_keys"], json::object());
  EXPECT_EQ(j["remote_config"]["probation_s"], 300);
}

}  // namespace
}  // namespace edgesync::agent
