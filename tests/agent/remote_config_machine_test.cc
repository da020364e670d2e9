// RemoteConfig as a state machine, driven by direct calls (no broker, no agent process): what
// runs, what is persisted in remote-config.json, what the history says and what the agent's
// hooks are told, for each rule of docs/FLEET.md (push, replay, probation, rollback, the start
// ladder, local reloads). Timer-driven rollbacks wait the minimum probation (10 s); the other
// tests check the decisions without waiting.
#include "agent/remote_config.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <ostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "agent/config_envelope.h"
#include "agent/config_layers.h"
#include "agent/remote_config_state.h"
#include "platform/clock.h"
#include "platform/crypto.h"

namespace edgesync::agent {

// Readable failures for LayerSet comparisons (found by argument-dependent lookup).
void PrintTo(Scope scope, std::ostream* os) { *os << scope_name(scope); }
void PrintTo(const AppliedLayer& l, std::ostream* os) {
  *os << "{v" << l.version << " key " << l.key_id << " envelope sha256 "
      << platform::crypto::sha256_hex(l.envelope).substr(0, 12) << "}";
}

namespace {

using nlohmann::json;
using std::chrono::seconds;

const std::string kFleetTopic = "edgesync/v1/fleet/config";
const std::string kStoreTopic = "edgesync/v1/store-042/config";
const std::string kDeviceTopic = "edgesync/v1/store-042/pos-01/config";
const std::string kFleetTarget = "fleet";
const std::string kStoreTarget = "store-042";
const std::string kDeviceTarget = "store-042/pos-01";

void write(const std::string& path, const std::string& contents) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << contents;
  ASSERT_TRUE(out.good()) << path;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

std::string sha(const Config& c) { return config_sha256(c); }

class RemoteConfigMachine : public ::testing::Test {
 protected:
  struct Applied {
    Config config;
    ConfigChange change;
    bool topics_changed = false;
  };

  void SetUp() override {
    char tmpl[] = "/tmp/edgesync-rcmachine-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto k1 = platform::crypto::generate_p256_key();
    auto k2 = platform::crypto::generate_p256_key();
    ASSERT_TRUE(k1 && k2);
    ops1_ = *k1;
    ops2_ = *k2;
    write(file("ops-1.pub"), ops1_.public_pem);
    write(file("ops-2.pub"), ops2_.public_pem);
    local_path_ = file("edgesync.json");
    write_local(base_local());
  }

  void TearDown() override {
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }

  std::string file(const std::string& name) const { return dir_ + "/" + name; }
  std::string state_path() const { return file("remote-config.json"); }

  json base_local() const {
    return {{"device", {{"id", "pos-01"}, {"store_id", "store-042"}}},
            {"storage", {{"path", file("outbox.db")}}},
            {"ingest", {{"socket", file("ingest.sock")}, {"contracts_dir", ""}}},
            {"hub", {{"uri", "tcp://127.0.0.1:1"}, {"allow_insecure", true}}},
            {"remote_config",
             {{"trusted_keys", {{"ops-1", file("ops-1.pub")}}}, {"probation_s", 10}}}};
  }
  void write_local(const json& j) { write(local_path_, j.dump(2)); }

  LocalConfig local() const {
    auto l = load_local_config(local_path_);
    if (!l) {
      ADD_FAILURE() << l.status().message();
      return {};
    }
    return *l;
  }

  std::unique_ptr<RemoteConfig> make() {
    auto rc = std::make_unique<RemoteConfig>(io_, local_path_, local());
    rc->set_hooks(RemoteConfig::Hooks{
        [this](const Config& c, const ConfigChange& change, bool topics_changed) {
          applies_.push_back(Applied{c, change, topics_changed});
        },
        [this](const std::string& payload) { reports_.push_back(payload); }});
    return rc;
  }
  // A start that completed: the state an agent is in once it reached the hub.
  std::unique_ptr<RemoteConfig> started() {
    auto rc = make();
    rc->begin_start();
    rc->start_completed();
    return rc;
  }

  std::string envelope(const std::string& target, int64_t version, const json& payload,
                       const std::string& key_id = "ops-1",
                       const std::string& private_pem = std::string()) const {
    auto env = sign_envelope(private_pem.empty() ? ops1_.private_pem : private_pem, key_id, target,
                             version, platform::unix_ms(), 0, payload.dump());
    if (!env) {
      ADD_FAILURE() << env.status().message();
      return {};
    }
    return *env;
  }
  AppliedLayer applied_layer(const std::string& target, int64_t version, const json& payload) {
    const int64_t t = 1796029200000 + version;
    return AppliedLayer{version, envelope(target, version, payload), "ops-1", t, t + 1000};
  }

  RemoteConfigState state() const {
    auto s = read_remote_config_state(state_path());
    if (!s) {
      ADD_FAILURE() << s.status().message();
      return {};
    }
    return *s;
  }
  std::vector<std::string> kinds() const {
    std::vector<std::string> out;
    for (const auto& r : state().history) out.push_back(r.kind);
    return out;
  }

  // Runs the io_context (the probation timer) for at most `d`; how long it ran.
  std::chrono::milliseconds run_for(std::chrono::milliseconds d) {
    io_.restart();
    const auto start = std::chrono::steady_clock::now();
    io_.run_for(d);
    return std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - start);
  }

  std::string dir_;
  std::string local_path_;
  platform::crypto::KeyPairPem ops1_;
  platform::crypto::KeyPairPem ops2_;
  asio::io_context io_;
  std::vector<Applied> applies_;
  std::vector<std::string> reports_;
};

// 1.
TEST_F(RemoteConfigMachine, FirstStartRunsTheLocalFileAndCountsTheStartUntilItCompletes) {
  auto rc = make();
  const Config& c = rc->begin_start();
  EXPECT_EQ(sha(c), sha(local().config));
  EXPECT_EQ(sha(rc->current()), sha(local().config));
  EXPECT_EQ(rc->topics(), (std::vector<std::string>{kFleetTopic, kStoreTopic, kDeviceTopic}));

  RemoteConfigState s = state();
  EXPECT_EQ(s.failed_starts, 1);
  EXPECT_TRUE(s.applied.empty());
  EXPECT_TRUE(s.last_good.empty());
  EXPECT_FALSE(s.unproven);
  EXPECT_EQ(s.effective_sha256, sha(local().config));

  rc->start_completed();
  s = state();
  EXPECT_EQ(s.failed_starts, 0);
  EXPECT_TRUE(s.history.empty());
  EXPECT_TRUE(applies_.empty());
}

// 2.
TEST_F(RemoteConfigMachine, ValidDevicePushAppliesOnceAndTheSameMessageAgainIsIgnored) {
  auto rc = started();
  const size_t reports = reports_.size();
  const std::string msg = envelope(kDeviceTarget, 1, {{"hub", {{"linger_ms", 25}}}});
  rc->on_message(kDeviceTopic, msg);

  ASSERT_EQ(applies_.size(), 1u);
  EXPECT_EQ(applies_[0].change.keys, std::vector<std::string>{"hub.linger_ms"});
  EXPECT_FALSE(applies_[0].change.reconnect);
  EXPECT_FALSE(applies_[0].topics_changed);
  EXPECT_EQ(applies_[0].config.hub.linger_ms, 25);
  EXPECT_EQ(rc->current().hub.linger_ms, 25);
  EXPECT_EQ(rc->epoch(), 1u);
  ASSERT_EQ(reports_.size(), reports + 1);
  EXPECT_EQ(json::parse(reports_.back())["scopes"]["device"]["version"], 1);

  RemoteConfigState s = state();
  ASSERT_EQ(s.applied.count(Scope::kDevice), 1u);
  EXPECT_EQ(s.applied.size(), 1u);
  EXPECT_EQ(s.applied[Scope::kDevice].version, 1);
  EXPECT_EQ(s.applied[Scope::kDevice].envelope, msg);
  EXPECT_EQ(s.applied[Scope::kDevice].key_id, "ops-1");
  EXPECT_TRUE(s.unproven);
  EXPECT_EQ(s.probation_since_ms, 0);  // a live setting: no probation
  EXPECT_EQ(s.seen[Scope::kDevice], 1);
  EXPECT_EQ(s.effective_sha256, sha(rc->current()));
  ASSERT_FALSE(s.history.empty());
  EXPECT_EQ(s.history.back().kind, "applied");
  EXPECT_EQ(s.history.back().scope, "device");
  EXPECT_EQ(s.history.back().version, 1);
  EXPECT_EQ(s.history.back().reason, "changed hub.linger_ms");

  const std::string file_before = slurp(state_path());
  rc->on_message(kDeviceTopic, msg);  // the broker delivers the retained message again
  EXPECT_EQ(applies_.size(), 1u);
  EXPECT_EQ(reports_.size(), reports + 1);
  EXPECT_EQ(slurp(state_path()), file_before);
  EXPECT_EQ(rc->epoch(), 1u);
}

// 3. Last known good is what ran before the newest push, unless that is still on probation: a
// live push during a probation does not move it, and the probation's rollback takes the live
// push back too (docs/FLEET.md, "Probation and rollback").
TEST_F(RemoteConfigMachine, PushDuringProbationKeepsLastGoodAndTheRollbackDropsItToo) {
  auto rc = started();
  // Applied live before: it ran, so it is what a later push falls back to.
  rc->on_message(kDeviceTopic, envelope(kDeviceTarget, 1, {{"hub", {{"linger_ms", 5}}}}));
  const AppliedLayer device_v1 = state().applied.at(Scope::kDevice);
  const Config before_a = rc->current();

  // A: changes the connection, on probation.
  rc->on_message(kFleetTopic, envelope(kFleetTarget, 1, {{"hub", {{"uri", "tcp://127.0.0.1:2"}}}}));
  ASSERT_EQ(applies_.size(), 2u);
  EXPECT_TRUE(applies_[1].change.reconnect);
  RemoteConfigState s = state();
  EXPECT_GT(s.probation_since_ms, 0);
  EXPECT_EQ(s.last_good, (LayerSet{{Scope::kDevice, device_v1}}));

  // B: another scope, a live setting, pushed before the hub was reached.
  const std::string b = envelope(kStoreTarget, 1, {{"retry", {{"max_ms", 20000}}}});
  rc->on_message(kStoreTopic, b);
  ASSERT_EQ(applies_.size(), 3u);
  EXPECT_EQ(applies_[2].change.keys, std::vector<std::string>{"retry.max_ms"});
  EXPECT_FALSE(applies_[2].change.reconnect);
  s = state();
  EXPECT_EQ(s.applied.size(), 3u);
  EXPECT_GT(s.probation_since_ms, 0);  // B did not end A's probation
  EXPECT_EQ(s.last_good, (LayerSet{{Scope::kDevice, device_v1}}))
      << "last_good moved while A was on probation";

  // The hub is not reached: back to what ran before A, without B.
  const auto waited = run_for(seconds(15));
  EXPECT_GE(waited.count(), 9500);
  ASSERT_EQ(applies_.size(), 4u);
  EXPECT_TRUE(applies_[3].change.reconnect);
  EXPECT_EQ(applies_[3].config.hub.uri, "tcp://127.0.0.1:1");
  EXPECT_EQ(sha(rc->current()), sha(before_a));
  EXPECT_EQ(rc->current().retry.max_ms, local().config.retry.max_ms);
  s = state();
  EXPECT_EQ(s.applied, (LayerSet{{Scope::kDevice, device_v1}}));
  EXPECT_EQ(s.probation_since_ms, 0);
  ASSERT_FALSE(s.history.empty());
  EXPECT_EQ(s.history.back().kind, "rolled_back");
  EXPECT_TRUE(contains(s.history.back().reason, "back to device v1")) << s.history.back().reason;
  EXPECT_EQ(s.seen[Scope::kStore], 1);

  // B delivered again: spent with the rollback, ignored.
  rc->on_message(kStoreTopic, b);
  EXPECT_EQ(applies_.size(), 4u);
}

// 4.
TEST_F(RemoteConfigMachine, ProbationEndsWhenTheConfigChannelComesUpWithThatConfiguration) {
  auto rc = started();
  rc->on_message(kDeviceTopic,
                 envelope(kDeviceTarget, 1, {{"hub", {{"uri", "tcp://127.0.0.1:2"}}}}));
  ASSERT_EQ(applies_.size(), 1u);
  EXPECT_TRUE(applies_[0].change.reconnect);
  EXPECT_EQ(applies_[0].change.keys, std::vector<std::string>{"hub.uri"});
  ASSERT_GT(state().probation_since_ms, 0);
  EXPECT_TRUE(json::parse(rc->status_payload()).contains("probation"));

  // A connection made with the configuration before the push says nothing about this one.
  const size_t reports = reports_.size();
  rc->on_config_channel_up(rc->epoch() - 1);
  RemoteConfigState s = state();
  EXPECT_GT(s.probation_since_ms, 0);
  EXPECT_EQ(kinds(), std::vector<std::string>{"applied"});
  EXPECT_EQ(reports_.size(), reports);

  rc->on_config_channel_up(rc->epoch());
  s = state();
  EXPECT_EQ(s.probation_since_ms, 0);
  EXPECT_EQ(kinds(), (std::vector<std::string>{"applied", "confirmed"}));
  EXPECT_TRUE(contains(s.history.back().reason, "device v1")) << s.history.back().reason;
  EXPECT_EQ(reports_.size(), reports + 1);
  EXPECT_FALSE(json::parse(rc->status_payload()).contains("probation"));

  // The probation timer is gone: the loop has nothing left to wait for, nothing rolls back.
  const auto waited = run_for(seconds(12));
  EXPECT_LT(waited.count(), 5000);
  EXPECT_EQ(applies_.size(), 1u);
  EXPECT_EQ(rc->current().hub.uri, "tcp://127.0.0.1:2");
  EXPECT_EQ(kinds(), (std::vector<std::string>{"applied", "confirmed"}));
}

// 5.
TEST_F(RemoteConfigMachine, ProbationRollsBackWhenTheHubIsNotReachedInTime) {
  auto rc = started();
  const std::string msg = envelope(kDeviceTarget, 1, {{"hub", {{"uri", "tcp://127.0.0.1:2"}}}});
  rc->on_message(kDeviceTopic, msg);
  ASSERT_EQ(applies_.size(), 1u);

  // Not before probation_s (10 s).
  run_for(seconds(8));
  EXPECT_EQ(applies_.size(), 1u);
  EXPECT_EQ(rc->current().hub.uri, "tcp://127.0.0.1:2");

  run_for(seconds(5));
  ASSERT_EQ(applies_.size(), 2u);
  EXPECT_TRUE(applies_[1].change.reconnect);
  EXPECT_EQ(applies_[1].config.hub.uri, "tcp://127.0.0.1:1");
  EXPECT_EQ(sha(rc->current()), sha(local().config));

  RemoteConfigState s = state();
  EXPECT_TRUE(s.applied.empty());
  EXPECT_EQ(s.probation_since_ms, 0);
  EXPECT_EQ(s.seen[Scope::kDevice], 1);
  EXPECT_EQ(s.effective_sha256, sha(local().config));
  ASSERT_EQ(kinds(), (std::vector<std::string>{"applied", "rolled_back"}));
  EXPECT_TRUE(contains(s.history.back().reason, "from device v1 back to the local file alone"))
      << s.history.back().reason;
  ASSERT_TRUE(s.last_rollback.has_value());
  EXPECT_TRUE(json::parse(rc->status_payload()).contains("last_rollback"));

  // The broker delivers the rolled-back version again: spent, ignored without a word.
  const std::string file_before = slurp(state_path());
  const size_t reports = reports_.size();
  rc->on_message(kDeviceTopic, msg);
  EXPECT_EQ(applies_.size(), 2u);
  EXPECT_EQ(reports_.size(), reports);
  EXPECT_EQ(slurp(state_path()), file_before);
  EXPECT_FALSE(json::parse(rc->status_payload()).contains("unverified_dropped"));
}

// 6.
TEST_F(RemoteConfigMachine, FailedStartsStepDownToLastGoodThenToTheLocalFile) {
  const AppliedLayer v1 = applied_layer(kDeviceTarget, 1, {{"hub", {{"linger_ms", 11}}}});
  const AppliedLayer v2 = applied_layer(kDeviceTarget, 2, {{"hub", {{"linger_ms", 22}}}});
  RemoteConfigState s0;
  s0.applied = {{Scope::kDevice, v2}};
  s0.last_good = {{Scope::kDevice, v1}};
  s0.seen = {{Scope::kDevice, 2}};
  s0.unproven = true;
  s0.failed_starts = 1;  // the last start with v2 did not get through
  ASSERT_TRUE(write_remote_config_state(state_path(), s0));

  auto rc = make();
  EXPECT_EQ(rc->begin_start().hub.linger_ms, 11);
  RemoteConfigState s = state();
  EXPECT_EQ(s.applied, (LayerSet{{Scope::kDevice, v1}}));
  EXPECT_EQ(s.last_good, (LayerSet{{Scope::kDevice, v1}}));
  EXPECT_EQ(s.failed_starts, 1);  // this start is counted
  EXPECT_TRUE(s.unproven);
  EXPECT_EQ(s.seen[Scope::kDevice], 2);
  ASSERT_EQ(kinds(), std::vector<std::string>{"rolled_back"});
  EXPECT_TRUE(contains(s.history.back().reason, "did not complete its start with device v2"))
      << s.history.back().reason;
  EXPECT_TRUE(contains(s.history.back().reason, "back to device v1")) << s.history.back().reason;

  // That start does not get through either.
  rc.reset();
  auto again = make();
  EXPECT_EQ(sha(again->begin_start()), sha(local().config));
  s = state();
  EXPECT_TRUE(s.applied.empty());
  EXPECT_TRUE(s.last_good.empty());
  EXPECT_EQ(s.failed_starts, 1);
  EXPECT_EQ(s.seen[Scope::kDevice], 2);
  ASSERT_EQ(kinds(), (std::vector<std::string>{"rolled_back", "rolled_back"}));
  EXPECT_TRUE(contains(s.history.back().reason, "did not complete its start with device v1"))
      << s.history.back().reason;
  EXPECT_TRUE(contains(s.history.back().reason, "back to the local file alone"))
      << s.history.back().reason;

  again->start_completed();
  EXPECT_EQ(state().failed_starts, 0);
  EXPECT_TRUE(applies_.empty());  // a start is not a change of the running agent
}

// The other side of 6: a start after one that completed keeps what was pushed.
TEST_F(RemoteConfigMachine, StartAfterACompletedStartKeepsTheAppliedLayers) {
  const AppliedLayer v1 = applied_layer(kDeviceTarget, 1, {{"hub", {{"linger_ms", 11}}}});
  const AppliedLayer v2 = applied_layer(kDeviceTarget, 2, {{"hub", {{"linger_ms", 22}}}});
  RemoteConfigState s0;
  s0.applied = {{Scope::kDevice, v2}};
  s0.last_good = {{Scope::kDevice, v1}};
  s0.seen = {{Scope::kDevice, 2}};
  s0.unproven = true;  // applied live, then a clean restart
  s0.failed_starts = 0;
  ASSERT_TRUE(write_remote_config_state(state_path(), s0));

  auto rc = make();
  EXPECT_EQ(rc->begin_start().hub.linger_ms, 22);
  RemoteConfigState s = state();
  EXPECT_EQ(s.applied, (LayerSet{{Scope::kDevice, v2}}));
  EXPECT_EQ(s.failed_starts, 1);
  EXPECT_TRUE(s.history.empty());
  rc->start_completed();
  s = state();
  EXPECT_EQ(s.failed_starts, 0);
  EXPECT_FALSE(s.unproven);
  EXPECT_EQ(s.last_good, (LayerSet{{Scope::kDevice, v2}}));  // through a start: known good
}

// A layer nested deeper than kMaxConfigNesting is refused when pushed, so only a hand edit of
// the state file holds one. At start it is dropped with its reason, the others stay applied;
// it used to be left out of the merge silently while `config show` listed it as applied.
TEST_F(RemoteConfigMachine, ALayerNestedTooDeepInTheStateFileIsDroppedWithItsReasonAtStart) {
  // 41 levels: deeper than the bound, shallow enough to sign (signing dumps it recursively).
  json deep = json::array();
  for (int i = 0; i < 38; ++i) deep = json::array({std::move(deep)});
  const AppliedLayer store = applied_layer(kStoreTarget, 3, {{"hub", {{"x", std::move(deep)}}}});
  const AppliedLayer device = applied_layer(kDeviceTarget, 1, {{"hub", {{"linger_ms", 11}}}});
  RemoteConfigState s0;
  s0.applied = {{Scope::kStore, store}, {Scope::kDevice, device}};
  s0.last_good = s0.applied;
  s0.seen = {{Scope::kStore, 3}, {Scope::kDevice, 1}};
  ASSERT_TRUE(write_remote_config_state(state_path(), s0));

  auto rc = make();
  EXPECT_EQ(rc->begin_start().hub.linger_ms, 11);
  RemoteConfigState s = state();
  EXPECT_EQ(s.applied, (LayerSet{{Scope::kDevice, device}}));
  ASSERT_FALSE(s.history.empty());
  const ConfigRecord& r = s.history.back();
  EXPECT_EQ(r.kind, "rejected");
  EXPECT_EQ(r.scope, "store");
  EXPECT_TRUE(contains(r.reason, "store v3: payload: nested deeper than 32 levels")) << r.reason;
}

// 7.
TEST_F(RemoteConfigMachine, LocalKeyReadableByOthersRollsNothingBack) {
  auto key = platform::crypto::generate_p256_key();
  ASSERT_TRUE(key);
  write(file("device.key"), key->private_pem);
  write(file("device.crt"), "not checked here, only readable\n");
  ASSERT_EQ(::chmod(file("device.key").c_str(), 0644), 0);
  json j = base_local();
  j["hub"]["cert_file"] = file("device.crt");
  j["hub"]["key_file"] = file("device.key");
  write_local(j);

  const AppliedLayer v1 = applied_layer(kDeviceTarget, 1, {{"hub", {{"linger_ms", 11}}}});
  const AppliedLayer v2 = applied_layer(kDeviceTarget, 2, {{"hub", {{"linger_ms", 22}}}});
  RemoteConfigState s0;
  s0.applied = {{Scope::kDevice, v2}};
  s0.last_good = {{Scope::kDevice, v1}};
  s0.seen = {{Scope::kDevice, 2}};
  s0.unproven = true;
  s0.failed_starts = 1;  // would step down, were the layers to blame
  ASSERT_TRUE(write_remote_config_state(state_path(), s0));
  const std::string file_before = slurp(state_path());

  auto rc = make();
  const Config& c = rc->begin_start();
  EXPECT_EQ(sha(c), sha(local().config));
  auto problems = check_effective(c);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_TRUE(contains(problems[0], "chmod 600")) << problems[0];
  EXPECT_EQ(slurp(state_path()), file_before);
  RemoteConfigState s = state();
  EXPECT_EQ(s.applied, (LayerSet{{Scope::kDevice, v2}}));
  EXPECT_EQ(s.failed_starts, 1);
  rc.reset();

  // The fix (chmod 600): the failed start is then the layers' to answer for.
  ASSERT_EQ(::chmod(file("device.key").c_str(), 0600), 0);
  auto fixed = make();
  EXPECT_EQ(fixed->begin_start().hub.linger_ms, 11);
  EXPECT_EQ(state().applied, (LayerSet{{Scope::kDevice, v1}}));
}

// 8.
TEST_F(RemoteConfigMachine, DamagedStateFileIsKeptAsideAndTheStartBeginsAnew) {
  write(state_path(), "{\"format\": 1, \"applied\": [garbage");
  auto rc = make();
  EXPECT_EQ(sha(rc->begin_start()), sha(local().config));

  std::vector<std::string> kept;
  for (const auto& e : std::filesystem::directory_iterator(dir_)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("remote-config.json.damaged-", 0) == 0) kept.push_back(e.path().string());
  }
  ASSERT_EQ(kept.size(), 1u);
  EXPECT_EQ(slurp(kept[0]), "{\"format\": 1, \"applied\": [garbage");
  RemoteConfigState s = state();
  EXPECT_TRUE(s.applied.empty());
  EXPECT_TRUE(s.seen.empty());
  EXPECT_TRUE(s.history.empty());
  EXPECT_EQ(s.failed_starts, 1);

  // And it works as a fresh one.
  rc->start_completed();
  rc->on_message(kDeviceTopic, envelope(kDeviceTarget, 1, {{"hub", {{"linger_ms", 3}}}}));
  EXPECT_EQ(applies_.size(), 1u);
}

// 9.
TEST_F(RemoteConfigMachine, UnverifiedMessagesAreCountedAndNeverWritten) {
  auto rc = started();
  rc->on_message(kDeviceTopic, envelope(kDeviceTarget, 1, {{"hub", {{"linger_ms", 3}}}}));
  ASSERT_EQ(applies_.size(), 1u);
  const std::string file_before = slurp(state_path());
  struct stat before {};
  ASSERT_EQ(::stat(state_path().c_str(), &before), 0);
  const size_t reports = reports_.size();
  const std::string current_before = sha(rc->current());

  const std::string good = envelope(kDeviceTarget, 2, {{"hub", {{"linger_ms", 9}}}});
  const std::string topics[] = {kFleetTopic, kStoreTopic, kDeviceTopic};
  const std::string targets[] = {kFleetTarget, kStoreTarget, kDeviceTarget};
  for (int i = 0; i < 500; ++i) {
    const int64_t version = 100 + i;
    const json payload = {{"hub", {{"uri", "tcp://attacker.example:1883"}}}};
    std::string msg;
    switch (i % 4) {
      case 0:  // a key claiming to be ops-1
        msg = envelope(targets[i % 3], version, payload, "ops-1", ops2_.private_pem);
        break;
      case 1:  // a key the box does not know
        msg = envelope(targets[i % 3], version, payload, "ops-9", ops2_.private_pem);
        break;
      case 2: {  // the team's message, altered
        json tampered = json::parse(good);
        tampered["version"] = version;
        tampered["target"] = targets[i % 3];
        msg = tampered.dump();
        break;
      }
      default:  // not an envelope at all
        msg = "{\"version\":" + std::to_string(version) + ",\"junk\":\x01\xff";
        break;
    }
    rc->on_message(topics[i % 3], msg);
  }

  EXPECT_EQ(applies_.size(), 1u);
  // Reported (not written) at the log's pace: once per scope within the minute, not per message.
  EXPECT_EQ(reports_.size(), reports + 3);
  EXPECT_EQ(sha(rc->current()), current_before);
  struct stat after {};
  ASSERT_EQ(::stat(state_path().c_str(), &after), 0);
  EXPECT_EQ(after.st_ino, before.st_ino) << "the state file was replaced";
  EXPECT_EQ(after.st_mtim.tv_sec, before.st_mtim.tv_sec);
  EXPECT_EQ(after.st_mtim.tv_nsec, before.st_mtim.tv_nsec);
  EXPECT_EQ(slurp(state_path()), file_before);
  const json status = json::parse(rc->status_payload());
  EXPECT_EQ(status.value("unverified_dropped", 0), 500);
  EXPECT_FALSE(status.contains("last_rejection"));
  // The newest of them, with its scope and reason: message 499 (i % 4 == 3, on the store topic)
  // was not an envelope at all.
  ASSERT_TRUE(status.contains("last_unverified")) << status.dump(2);
  EXPECT_EQ(status["last_unverified"].value("kind", ""), "dropped");
  EXPECT_EQ(status["last_unverified"].value("scope", ""), "store");
  EXPECT_FALSE(status["last_unverified"].value("reason", "").empty());

  // The flood did not spend any version: the team's next push still applies.
  rc->on_message(kDeviceTopic, good);
  ASSERT_EQ(applies_.size(), 2u);
  EXPECT_EQ(rc->current().hub.linger_ms, 9);
}

// 10.
TEST_F(RemoteConfigMachine, LayerSignedForAnotherTargetIsRejectedAndReportedOnce) {
  auto rc = started();
  const size_t reports = reports_.size();
  const std::string other = envelope("store-042/pos-02", 7, {{"hub", {{"linger_ms", 50}}}});
  rc->on_message(kDeviceTopic, other);

  EXPECT_TRUE(applies_.empty());
  EXPECT_EQ(reports_.size(), reports + 1);
  RemoteConfigState s = state();
  EXPECT_TRUE(s.applied.empty());
  ASSERT_EQ(kinds(), std::vector<std::string>{"rejected"});
  EXPECT_EQ(s.history.back().scope, "device");
  EXPECT_EQ(s.history.back().version, 7);
  EXPECT_TRUE(contains(s.history.back().reason, "addressed to \"store-042/pos-02\""))
      << s.history.back().reason;
  EXPECT_TRUE(json::parse(rc->status_payload()).contains("last_rejection"));

  rc->on_message(kDeviceTopic, other);  // delivered again
  EXPECT_EQ(kinds().size(), 1u);
  EXPECT_EQ(reports_.size(), reports + 1);

  // Neither may the fleet's layer be replayed as this device's, nor this device's as the fleet's.
  rc->on_message(kDeviceTopic, envelope(kFleetTarget, 8, {{"hub", {{"linger_ms", 51}}}}));
  rc->on_message(kFleetTopic, envelope(kDeviceTarget, 9, {{"hub", {{"linger_ms", 52}}}}));
  EXPECT_TRUE(applies_.empty());
  s = state();
  EXPECT_TRUE(s.applied.empty());
  ASSERT_EQ(kinds(), (std::vector<std::string>{"rejected", "rejected", "rejected"}));
  EXPECT_TRUE(contains(s.history.back().reason, "addressed to")) << s.history.back().reason;

  // Someone else's high version does not spend this box's versions.
  rc->on_message(kDeviceTopic, envelope(kDeviceTarget, 1, {{"hub", {{"linger_ms", 4}}}}));
  ASSERT_EQ(applies_.size(), 1u);
  EXPECT_EQ(rc->current().hub.linger_ms, 4);
}

// 11a.
TEST_F(RemoteConfigMachine, ReloadAppliesAGoodLocalChange) {
  auto rc = started();
  json j = base_local();
  j["hub"]["linger_ms"] = 30;
  write_local(j);
  rc->reload_local();

  ASSERT_EQ(applies_.size(), 1u);
  EXPECT_EQ(applies_[0].change.keys, std::vector<std::string>{"hub.linger_ms"});
  EXPECT_FALSE(applies_[0].change.reconnect);
  EXPECT_EQ(rc->current().hub.linger_ms, 30);
  RemoteConfigState s = state();
  ASSERT_EQ(kinds(), std::vector<std::string>{"reloaded"});
  EXPECT_EQ(s.history.back().scope, "local");
  EXPECT_EQ(s.history.back().reason, "changed hub.linger_ms");
  EXPECT_EQ(s.effective_sha256, sha(rc->current()));
}

// 11b.
TEST_F(RemoteConfigMachine, ReloadRefusesAFileThatIsNotJson) {
  auto rc = started();
  const std::string before = sha(rc->current());
  write(local_path_, "{\"device\": {\"id\": \"pos-01\"");
  rc->reload_local();

  EXPECT_TRUE(applies_.empty());
  EXPECT_EQ(sha(rc->current()), before);
  RemoteConfigState s = state();
  ASSERT_EQ(kinds(), std::vector<std::string>{"refused"});
  EXPECT_EQ(s.history.back().scope, "local");
  EXPECT_TRUE(contains(s.history.back().reason, "not valid JSON")) << s.history.back().reason;
  ASSERT_TRUE(s.last_rejection.has_value());
  EXPECT_EQ(s.last_rejection->kind, "refused");
}

// 11c.
TEST_F(RemoteConfigMachine, ReloadRefusesAChangeOnlyARestartApplies) {
  auto rc = started();
  const std::string before = sha(rc->current());
  json j = base_local();
  j["storage"]["path"] = file("elsewhere.db");
  j["hub"]["linger_ms"] = 30;  // not taken either: the file is refused whole
  write_local(j);
  rc->reload_local();

  EXPECT_TRUE(applies_.empty());
  EXPECT_EQ(sha(rc->current()), before);
  EXPECT_EQ(rc->current().storage.path, file("outbox.db"));
  RemoteConfigState s = state();
  ASSERT_EQ(kinds(), std::vector<std::string>{"refused"});
  EXPECT_TRUE(contains(s.history.back().reason, "storage.path")) << s.history.back().reason;
  EXPECT_TRUE(contains(s.history.back().reason, "restart")) << s.history.back().reason;
}

// 11d.
TEST_F(RemoteConfigMachine, ReloadWithoutTheSigningKeyDropsItsLayers) {
  auto rc = started();
  rc->on_message(kDeviceTopic, envelope(kDeviceTarget, 1, {{"hub", {{"linger_ms", 40}}}}));
  ASSERT_EQ(applies_.size(), 1u);
  ASSERT_EQ(rc->current().hub.linger_ms, 40);

  json j = base_local();
  j["remote_config"]["trusted_keys"] = {{"ops-2", file("ops-2.pub")}};
  write_local(j);
  rc->reload_local();

  ASSERT_EQ(applies_.size(), 2u);
  const auto& keys = applies_[1].change.keys;
  EXPECT_NE(std::find(keys.begin(), keys.end(), "hub.linger_ms"), keys.end());
  EXPECT_EQ(rc->current().hub.linger_ms, local().config.hub.linger_ms);
  RemoteConfigState s = state();
  EXPECT_TRUE(s.applied.empty());
  EXPECT_EQ(s.last_good.count(Scope::kDevice), 0u);
  ASSERT_EQ(kinds(), (std::vector<std::string>{"applied", "rejected", "reloaded"}));
  const ConfigRecord& dropped = s.history[1];
  EXPECT_EQ(dropped.scope, "device");
  EXPECT_EQ(dropped.version, 1);
  EXPECT_TRUE(contains(dropped.reason, "at reload")) << dropped.reason;
  EXPECT_TRUE(contains(dropped.reason, "ops-1")) << dropped.reason;
  EXPECT_EQ(s.effective_sha256, sha(rc->current()));

  // The new key is in force, the old one is not.
  rc->on_message(kDeviceTopic,
                 envelope(kDeviceTarget, 2, {{"hub", {{"linger_ms", 41}}}}, "ops-1"));
  EXPECT_EQ(applies_.size(), 2u);
  rc->on_message(kDeviceTopic, envelope(kDeviceTarget, 2, {{"hub", {{"linger_ms", 42}}}}, "ops-2",
                                        ops2_.private_pem));
  ASSERT_EQ(applies_.size(), 3u);
  EXPECT_EQ(rc->current().hub.linger_ms, 42);
}

// 12.
TEST_F(RemoteConfigMachine, AfterStopNothingIsAppliedAndNoTimerFires) {
  auto rc = started();
  rc->on_message(kDeviceTopic,
                 envelope(kDeviceTarget, 1, {{"hub", {{"uri", "tcp://127.0.0.1:2"}}}}));
  ASSERT_EQ(applies_.size(), 1u);
  const std::string current_before = sha(rc->current());
  const std::string file_before = slurp(state_path());
  const size_t reports = reports_.size();

  rc->stop();
  rc->on_message(kDeviceTopic, envelope(kDeviceTarget, 2, {{"hub", {{"linger_ms", 7}}}}));
  rc->on_message(kStoreTopic, envelope(kStoreTarget, 1, {{"hub", {{"linger_ms", 8}}}}));
  rc->on_config_channel_up(rc->epoch());
  rc->start_completed();
  const auto waited = run_for(seconds(12));  // the probation timer was cancelled

  EXPECT_LT(waited.count(), 5000);
  EXPECT_EQ(applies_.size(), 1u);
  EXPECT_EQ(reports_.size(), reports);
  EXPECT_EQ(sha(rc->current()), current_before);
  EXPECT_EQ(slurp(state_path()), file_before);
}

// remote_config.h: after stop() "nothing is applied any more"; a reload is an apply too.
TEST_F(RemoteConfigMachine, AfterStopAReloadAppliesNothing) {
  auto rc = started();
  const std::string current_before = sha(rc->current());
  const std::string file_before = slurp(state_path());
  rc->stop();
  json j = base_local();
  j["hub"]["linger_ms"] = 30;
  write_local(j);
  rc->reload_local();

  EXPECT_TRUE(applies_.empty());
  EXPECT_EQ(sha(rc->current()), current_before);
  EXPECT_EQ(slurp(state_path()), file_before);
}

// Step 6 before 7 in docs/FLEET.md: what could not be persisted is not run.
TEST_F(RemoteConfigMachine, PushThatCannotBePersistedIsNotAppliedAndIsTakenWhenDeliveredAgain) {
  auto rc = started();
  const std::string before = sha(rc->current());
  // The state file cannot be replaced while a directory stands in its place.
  std::filesystem::remove(state_path());
  std::filesystem::create_directory(state_path());
  const std::string msg = envelope(kDeviceTarget, 1, {{"hub", {{"linger_ms", 12}}}});
  rc->on_message(kDeviceTopic, msg);

  EXPECT_TRUE(applies_.empty());
  EXPECT_EQ(sha(rc->current()), before);
  const json status = json::parse(rc->status_payload());
  ASSERT_TRUE(status.contains("last_rejection"));
  EXPECT_TRUE(contains(status["last_rejection"].value("reason", ""), "cannot persist"));
  EXPECT_TRUE(status["scopes"]["device"].is_null());

  std::filesystem::remove(state_path());
  rc->on_message(kDeviceTopic, msg);
  ASSERT_EQ(applies_.size(), 1u);
  EXPECT_EQ(rc->current().hub.linger_ms, 12);
  EXPECT_EQ(state().applied.at(Scope::kDevice).envelope, msg);
}

}  // namespace
}  // namespace edgesync::agent
