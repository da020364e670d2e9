#include "agent/remote_config_state.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <exception>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "platform/clock.h"

namespace edgesync::agent {
namespace {

using nlohmann::json;

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/edgesync-rcstate-XXXXXX";
    if (::mkdtemp(tmpl) != nullptr) path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

void write(const std::string& path, const std::string& contents) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << contents;
  ASSERT_TRUE(out.good()) << path;
}

Config test_config() {
  Config c;
  c.device.id = "d1";
  c.device.store_id = "s1";
  c.hub.uri = "ssl://hub.example.net:8883";
  c.storage.path = "/var/lib/edgesync/outbox.db";
  c.remote_config.trusted_keys = {{"ops-2026", "/etc/edgesync/ops-2026.pem"}};
  c.remote_config.probation_s = 120;
  return c;
}

AppliedLayer layer(int64_t version, const std::string& key_id, int64_t t) {
  return {version, "{\"version\":" + std::to_string(version) + ",\"sig\":\"x\"}\n\"quoted\"",
          key_id, t, t + 1500};
}

ConfigRecord rec(int64_t at, const std::string& kind, const std::string& scope, int64_t version,
                 const std::string& reason, const std::string& sha) {
  return {at, kind, scope, version, reason, sha};
}

RemoteConfigState full_state() {
  RemoteConfigState s;
  s.applied = {{Scope::kFleet, layer(3, "ops-2026", 1796029200000)},
               {Scope::kStore, layer(2, "ops-2027", 1796029300000)},
               {Scope::kDevice, layer(9, "ops-2026", 1796029400000)}};
  s.last_good = {{Scope::kFleet, layer(2, "ops-2025", 1795029200000)}};
  s.seen = {{Scope::kFleet, 4}, {Scope::kStore, 2}, {Scope::kDevice, 9}};
  s.unproven = true;
  s.failed_starts = 2;
  s.probation_since_ms = 1796029500123;
  s.effective_sha256 = std::string(64, 'a');
  s.record(rec(1000, "applied", "fleet", 3, "", std::string(64, 'b')));
  s.record(rec(2000, "rejected", "store", 5, "bad signature for key id \"x\"", ""));
  s.record(rec(3000, "rolled_back", "", 0, "the hub was not reached within 120 s",
               std::string(64, 'c')));
  s.record(rec(4000, "reloaded", "local", 0, "", std::string(64, 'd')));
  return s;
}

json layer_json(const AppliedLayer& l) {
  return {l.version, l.envelope, l.key_id, l.issued_at_ms, l.applied_at_ms};
}

json layers_json(const LayerSet& set) {
  json j = json::object();
  for (const auto& [scope, l] : set) j[scope_name(scope)] = layer_json(l);
  return j;
}

json record_json(const ConfigRecord& r) {
  return {r.at_ms, r.kind, r.scope, r.version, r.reason, r.sha256};
}

// Every field of a state, so that a field lost or changed on the way is seen.
json all_of(const RemoteConfigState& s) {
  json seen = json::object();
  for (const auto& [scope, v] : s.seen) seen[scope_name(scope)] = v;
  json history = json::array();
  for (const auto& r : s.history) history.push_back(record_json(r));
  return {{"applied", layers_json(s.applied)},
          {"last_good", layers_json(s.last_good)},
          {"seen", seen},
          {"unproven", s.unproven},
          {"failed_starts", s.failed_starts},
          {"probation_since_ms", s.probation_since_ms},
          {"effective_sha256", s.effective_sha256},
          {"last_rejection", s.last_rejection ? record_json(*s.last_rejection) : json()},
          {"last_rollback", s.last_rollback ? record_json(*s.last_rollback) : json()},
          {"history", history}};
}

TEST(RemoteConfigState, WriteThenReadGivesEveryField) {
  TempDir dir;
  const std::string path = dir.file("remote-config.json");
  const RemoteConfigState s = full_state();
  ASSERT_TRUE(s.last_rejection.has_value());
  ASSERT_TRUE(s.last_rollback.has_value());
  Status w = write_remote_config_state(path, s);
  ASSERT_TRUE(w) << w.message();
  auto back = read_remote_config_state(path);
  ASSERT_TRUE(back) << back.status().message();
  EXPECT_EQ(all_of(*back), all_of(s));
  EXPECT_EQ(back->applied.at(Scope::kStore).envelope, s.applied.at(Scope::kStore).envelope);
  EXPECT_EQ(back->last_rejection->reason, "bad signature for key id \"x\"");
  EXPECT_EQ(back->last_rollback->at_ms, 3000);
  ASSERT_EQ(back->history.size(), 4u);
  EXPECT_EQ(back->history.back().kind, "reloaded");

  // Written again over the old file, a changed state reads back changed.
  RemoteConfigState t = *back;
  t.unproven = false;
  t.failed_starts = 0;
  t.probation_since_ms = 0;
  t.applied.erase(Scope::kDevice);
  t.last_good.clear();
  t.last_rejection.reset();
  ASSERT_TRUE(write_remote_config_state(path, t));
  auto again = read_remote_config_state(path);
  ASSERT_TRUE(again) << again.status().message();
  EXPECT_EQ(all_of(*again), all_of(t));
  EXPECT_FALSE(again->last_rejection.has_value());
}

// The state is read at every start, before anything could move it aside: a hand-edited file
// nested 100,000 deep would crash every start. It reads as damaged instead.
TEST(RemoteConfigState, AFileNestedTooDeepReadsAsDamaged) {
  TempDir dir;
  const std::string path = dir.file("remote-config.json");
  write(path, "{\"format\": 1, \"seen\": " + std::string(100000, '[') +
                  std::string(100000, ']') + "}");
  auto r = read_remote_config_state(path);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.status().code(), Status::Code::kCorruption);
}

TEST(RemoteConfigState, EmptyStateRoundTrips) {
  TempDir dir;
  const std::string path = dir.file("remote-config.json");
  ASSERT_TRUE(write_remote_config_state(path, RemoteConfigState{}));
  auto back = read_remote_config_state(path);
  ASSERT_TRUE(back) << back.status().message();
  EXPECT_EQ(all_of(*back), all_of(RemoteConfigState{}));
}

TEST(RemoteConfigState, HistoryKeepsTheNewestFifty) {
  RemoteConfigState s;
  for (int i = 0; i < 60; ++i) {
    s.record(rec(i, i == 7 ? "rolled_back" : i == 55 ? "rejected" : "applied", "fleet", i + 1,
                 "", ""));
  }
  ASSERT_EQ(RemoteConfigState::kMaxHistory, 50u);
  ASSERT_EQ(s.history.size(), 50u);
  EXPECT_EQ(s.history.front().at_ms, 10);
  EXPECT_EQ(s.history.back().at_ms, 59);
  // The last rejection and rollback are kept though their history lines are gone.
  ASSERT_TRUE(s.last_rollback.has_value());
  EXPECT_EQ(s.last_rollback->at_ms, 7);
  ASSERT_TRUE(s.last_rejection.has_value());
  EXPECT_EQ(s.last_rejection->at_ms, 55);

  TempDir dir;
  const std::string path = dir.file("remote-config.json");
  ASSERT_TRUE(write_remote_config_state(path, s));
  auto back = read_remote_config_state(path);
  ASSERT_TRUE(back);
  ASSERT_EQ(back->history.size(), 50u);
  EXPECT_EQ(back->history.front().at_ms, 10);
  EXPECT_EQ(back->history.back().at_ms, 59);
  EXPECT_EQ(back->last_rollback->at_ms, 7);
}

TEST(RemoteConfigState, RecordSetsLastRejectionAndRollbackByKind) {
  RemoteConfigState s;
  s.record(rec(1, "applied", "fleet", 1, "", ""));
  s.record(rec(2, "reloaded", "local", 0, "", ""));
  EXPECT_FALSE(s.last_rejection.has_value());
  EXPECT_FALSE(s.last_rollback.has_value());
  s.record(rec(3, "refused", "local", 0, "storage.path: local-only", ""));
  ASSERT_TRUE(s.last_rejection.has_value());
  EXPECT_EQ(s.last_rejection->at_ms, 3);
  s.record(rec(4, "rejected", "device", 2, "expired", ""));
  EXPECT_EQ(s.last_rejection->at_ms, 4);
  s.record(rec(5, "rolled_back", "", 0, "start failed", ""));
  ASSERT_TRUE(s.last_rollback.has_value());
  EXPECT_EQ(s.last_rollback->at_ms, 5);
  EXPECT_EQ(s.last_rejection->at_ms, 4);
  EXPECT_EQ(s.history.size(), 5u);
}

TEST(RemoteConfigState, MissingFileIsNotFound) {
  TempDir dir;
  auto r = read_remote_config_state(dir.file("remote-config.json"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.status().code(), Status::Code::kNotFound);
}

TEST(RemoteConfigState, GarbageIsCorruption) {
  TempDir dir;
  const std::string path = dir.file("remote-config.json");
  for (const char* text : {"", "garbage", "{", "[]", "7", "{}", R"({"format": 2})", "\x01\x02\x03"}) {
    write(path, text);
    auto r = read_remote_config_state(path);
    ASSERT_FALSE(r) << text;
    EXPECT_EQ(r.status().code(), Status::Code::kCorruption) << text;
    EXPECT_NE(r.status().message().find(path), std::string::npos) << r.status().message();
  }
}

// A file that is JSON with format 1 but whose members have the wrong types (a hand edit, a
// partly written file from another tool) must also read as Corruption: an exception escaping
// here ends the agent's start instead of letting it report the damage.
TEST(RemoteConfigState, WrongMemberTypesAreCorruptionNotAnException) {
  TempDir dir;
  const std::string path = dir.file("remote-config.json");
  for (const char* text : {
           R"({"format": "1"})",
           R"({"format": 1, "unproven": "yes"})",
           R"({"format": 1, "failed_starts": "two"})",
           R"({"format": 1, "probation_since_ms": null})",
           R"({"format": 1, "effective_sha256": 5})",
           R"({"format": 1, "history": [1, 2]})",
           R"({"format": 1, "history": "x"})",
           R"({"format": 1, "last_rejection": 5})",
           R"({"format": 1, "last_rollback": {"at_ms": "x"}})",
           R"({"format": 1, "applied": {"fleet": {"version": "3"}}})",
           R"({"format": 1, "last_good": {"store": {"envelope": 7}}})",
       }) {
    write(path, text);
    Result<RemoteConfigState> r = Status::ok();
    try {
      r = read_remote_config_state(path);
    } catch (const std::exception& e) {
      ADD_FAILURE() << text << ": threw " << e.what();
      continue;
    }
    EXPECT_FALSE(r) << text;
    EXPECT_EQ(r.status().code(), Status::Code::kCorruption) << text;
  }
}

TEST(RemoteConfigState, PathIsBesideTheDatabase) {
  Config c = test_config();
  EXPECT_EQ(remote_config_state_path(c), "/var/lib/edgesync/remote-config.json");
  c.storage.path = "/data/x/outbox.db";
  EXPECT_EQ(remote_config_state_path(c), "/data/x/remote-config.json");
}

TEST(RemoteConfigState, StatusJsonHasTheDocumentedMembers) {
  const Config c = test_config();
  RemoteConfigState s = full_state();
  s.applied.erase(Scope::kStore);
  const int64_t now = 1796030000000;
  json j = config_status_json(c, s, now);

  EXPECT_EQ(j["device_id"], "d1");
  EXPECT_EQ(j["store_id"], "s1");
  EXPECT_EQ(j["remote_config"], true);
  EXPECT_EQ(j["effective_sha256"], std::string(64, 'a'));
  EXPECT_EQ(j["at"], platform::format_rfc3339_ms(now));

  ASSERT_TRUE(j["scopes"].is_object());
  EXPECT_EQ(j["scopes"].size(), 3u);
  EXPECT_TRUE(j["scopes"]["store"].is_null()) << "absent scope is null, not missing";
  ASSERT_TRUE(j["scopes"].contains("store"));
  const json& fleet = j["scopes"]["fleet"];
  EXPECT_EQ(fleet["version"], 3);
  EXPECT_EQ(fleet["key_id"], "ops-2026");
  EXPECT_EQ(fleet["issued_at"], platform::format_rfc3339_ms(1796029200000));
  EXPECT_EQ(fleet["applied_at"], platform::format_rfc3339_ms(1796029201500));
  EXPECT_FALSE(fleet.contains("envelope")) << "the status reports, it does not republish";
  EXPECT_EQ(j["scopes"]["device"]["version"], 9);

  // Probation: until = since + probation_s.
  ASSERT_TRUE(j.contains("probation"));
  EXPECT_EQ(j["probation"]["since"], platform::format_rfc3339_ms(1796029500123));
  EXPECT_EQ(j["probation"]["until"], platform::format_rfc3339_ms(1796029500123 + 120 * 1000));

  // The last rejection and rollback, with readable times and no raw milliseconds.
  ASSERT_TRUE(j.contains("last_rejection"));
  EXPECT_EQ(j["last_rejection"]["kind"], "rejected");
  EXPECT_EQ(j["last_rejection"]["scope"], "store");
  EXPECT_EQ(j["last_rejection"]["version"], 5);
  EXPECT_EQ(j["last_rejection"]["reason"], "bad signature for key id \"x\"");
  EXPECT_EQ(j["last_rejection"]["at"], platform::format_rfc3339_ms(2000));
  EXPECT_FALSE(j["last_rejection"].contains("at_ms"));
  ASSERT_TRUE(j.contains("last_rollback"));
  EXPECT_EQ(j["last_rollback"]["kind"], "rolled_back");
  EXPECT_EQ(j["last_rollback"]["sha256"], std::string(64, 'c'));
  EXPECT_FALSE(j["last_rollback"].contains("scope"));

  // The history is kept on the box, not in the status message.
  EXPECT_FALSE(j.contains("history"));
}

TEST(RemoteConfigState, StatusJsonOfANewBox) {
  Config c = test_config();
  c.remote_config.trusted_keys.clear();
  json j = config_status_json(c, RemoteConfigState{}, 0);
  EXPECT_EQ(j["remote_config"], false);
  for (const char* scope : {"fleet", "store", "device"}) {
    ASSERT_TRUE(j["scopes"].contains(scope)) << scope;
    EXPECT_TRUE(j["scopes"][scope].is_null()) << scope;
  }
  EXPECT_FALSE(j.contains("probation"));
  EXPECT_FALSE(j.contains("last_rejection"));
  EXPECT_FALSE(j.contains("last_rollback"));
  EXPECT_EQ(j["at"], "1970-01-01T00:00:00.000Z");
}

}  // namespace
}  // namespace edgesync::agent
