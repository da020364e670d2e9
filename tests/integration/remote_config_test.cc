// Signed configuration pushed over MQTT, against the real agent and a real broker: what the
// operator relies on when the central team pushes a layer.
//  - a valid push is applied, persisted and reported (retained config/status, the state file,
//    `edgesync status`), and the outbox goes on where it was;
//  - every kind of bad push is rejected with its reason, changes nothing, and delivery goes on;
//  - layers merge fleet < store < device whatever order they arrive in, with provenance;
//  - a push that cuts the box off the hub is rolled back after remote_config.probation_s to the
//    configuration before it, and events captured meanwhile arrive afterwards;
//  - a start that cannot use the pushed layers, or that did not complete, rolls them back;
//  - an applied push survives a restart without being applied again;
//  - SIGHUP reloads a good local file and refuses a bad one;
//  - the client certificate's validity is reported; a readable private key stops the start,
//    and once mended the box runs what was pushed to it;
//  - `edgesync enroll` makes a key and a CSR an operator's openssl accepts.
// The test plays the central team: it makes signing keys and envelopes with the agent's own
// sign_envelope and publishes them retained, as the fleet tooling does.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <thread>

#include "agent/config.h"
#include "agent/config_envelope.h"
#include "agent/config_layers.h"
#include "platform/clock.h"
#include "platform/crypto.h"
#include "tests/harness/net_util.h"
#include "tests/support/hub_fixture.h"

namespace edgesync::test {
namespace {

using namespace std::chrono_literals;
using agent::Scope;
using nlohmann::json;

constexpr int64_t kHourMs = 3600 * 1000;
constexpr int64_t kDayMs = 24 * kHourMs;

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

size_t occurrences(const std::string& text, const std::string& part) {
  size_t n = 0;
  for (size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) ++n;
  return n;
}

// j[k1][k2]... or null where a member is missing: never throws, never inserts.
json at(const json& j, std::initializer_list<std::string> path) {
  const json* p = &j;
  for (const auto& k : path) {
    if (!p->is_object()) return nullptr;
    auto it = p->find(k);
    if (it == p->end()) return nullptr;
    p = &*it;
  }
  return *p;
}
std::string text_at(const json& j, std::initializer_list<std::string> path) {
  json v = at(j, path);
  return v.is_string() ? v.get<std::string>() : std::string();
}

// The log written since the last "agent start #N" marker of the harness.
std::string log_of_last_start(const std::string& log) {
  const size_t at = log.rfind("===== [test harness] agent start #");
  return at == std::string::npos ? log : log.substr(at);
}

std::string utc_compact(int64_t ms) {  // YYYYMMDDHHMMSSZ, as `openssl ca -startdate` takes it
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%d%H%M%SZ", &tm);
  return buf;
}

// How the test signs an envelope.
struct Signing {
  const std::string* key = nullptr;  // default: the trusted key
  std::string key_id = "ops-1";
  int64_t issued_ms = 0;    // 0: now
  int64_t expires_ms = -1;  // -1: an hour after issued; 0: no expiry
  std::string target;       // empty: the target of the scope signed for
};

class RemoteConfigTest : public HubFixture {
 protected:
  void SetUp() override {
    HubFixture::SetUp();
    auto pair = platform::crypto::generate_p256_key();
    ASSERT_TRUE(pair) << pair.status().to_string();
    signing_key_ = pair->private_pem;
    trusted_pub_ = dir_->file("ops-1.pub");
    write_file(trusted_pub_, pair->public_pem);
    auto other = platform::crypto::generate_p256_key();
    ASSERT_TRUE(other) << other.status().to_string();
    untrusted_key_ = other->private_pem;
    agent_->config().extra = {
        {"remote_config", {{"trusted_keys", {{"ops-1", trusted_pub_}}}, {"probation_s", 10}}}};
  }

  std::string topic(Scope scope) const {
    const auto& c = agent_->config();
    switch (scope) {
      case Scope::kFleet: return c.topic_prefix + "/fleet/config";
      case Scope::kStore: return c.topic_prefix + "/" + c.store_id + "/config";
      case Scope::kDevice: return c.topic_base() + "/config";
    }
    return {};
  }
  std::string status_topic() const { return agent_->config().topic_base() + "/config/status"; }
  std::string state_path() const { return dir_->file("remote-config.json"); }

  // The target of `scope`'s topic for this test's agent.
  std::string target(Scope scope) const {
    const auto& c = agent_->config();
    switch (scope) {
      case Scope::kFleet: return "fleet";
      case Scope::kStore: return c.store_id;
      case Scope::kDevice: return c.store_id + "/" + c.device_id;
    }
    return {};
  }

  std::string sign(Scope scope, int64_t version, const json& payload, Signing s = {}) {
    const int64_t issued = s.issued_ms ? s.issued_ms : platform::unix_ms();
    const int64_t expires = s.expires_ms < 0 ? issued + kHourMs : s.expires_ms;
    auto env = agent::sign_envelope(s.key ? *s.key : signing_key_, s.key_id,
                                    s.target.empty() ? target(scope) : s.target, version, issued,
                                    expires, payload.dump());
    EXPECT_TRUE(env) << env.status().to_string();
    return env ? *env : std::string();
  }
  void push(Scope scope, const std::string& envelope) {
    hub_->publish(topic(scope), envelope, /*retained=*/true);
  }

  // The latest config/status message among `msgs` (null before the first).
  json config_status(const HubSubscriber::Messages& msgs) const {
    json latest;
    for (const auto& m : msgs) {
      if (m.topic == status_topic() && !m.payload.empty()) {
        latest = json::parse(m.payload, nullptr, false);
      }
    }
    return latest;
  }
  // Waits until the latest config/status satisfies `pred`; returns it (a failure if it never did).
  json wait_config_status(const std::function<bool(const json&)>& pred,
                          std::chrono::milliseconds timeout, const std::string& what) {
    // The predicate runs under the subscriber's lock: it reads the messages it is given.
    bool ok = hub_->wait_for(
        [&](const HubSubscriber::Messages& msgs) {
          json s = config_status(msgs);
          return s.is_object() && pred(s);
        },
        timeout);
    json s = config_status(hub_->messages());
    EXPECT_TRUE(ok) << "the retained config/status never showed " << what
                    << "; the latest: " << s.dump(2);
    return s;
  }
  static std::function<bool(const json&)> version_is(Scope scope, int64_t version) {
    return [scope, version](const json& s) {
      const json v = at(s, {"scopes", agent::scope_name(scope)});
      return version == 0 ? v.is_null() : v.is_object() && v.value("version", 0) == version;
    };
  }

  json read_state() const {
    return json::parse(read_file(state_path()), nullptr, false);
  }
  // The state file's history records of this kind (and scope, if given).
  std::vector<json> records(const json& state, const std::string& kind,
                            const std::string& scope = "") const {
    std::vector<json> out;
    if (!state.is_object() || !state.contains("history")) return out;
    for (const auto& r : at(state, {"history"})) {
      if (r.value("kind", "") == kind && (scope.empty() || r.value("scope", "") == scope)) {
        out.push_back(r);
      }
    }
    return out;
  }
  // Polls the state file until `pred` holds; returns the last read.
  json wait_state(const std::function<bool(const json&)>& pred, std::chrono::milliseconds timeout,
                  const std::string& what) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    json s;
    while (true) {
      s = read_state();
      if (s.is_object() && pred(s)) return s;
      if (std::chrono::steady_clock::now() > deadline) break;
      std::this_thread::sleep_for(50ms);
    }
    ADD_FAILURE() << "the state file " << state_path() << " never showed " << what << ":\n"
                  << s.dump(2);
    return s;
  }

  // The SHA-256 the agent must report for the local file with these layers, computed here with
  // the same merge and canonical form.
  std::string expected_sha(const std::vector<agent::Layer>& layers) const {
    return sha_of(agent::merge_layers(agent_->config().to_json(), layers).json);
  }
  static std::string sha_of(const json& config_json) {
    agent::Config c;
    auto errors = agent::parse_config_json(config_json, &c, agent::FileChecks::kSkip);
    EXPECT_TRUE(errors.empty()) << errors.front();
    return agent::config_sha256(c);
  }

  // Sends one event; asserts the agent acknowledged it with `seq` and the hub got it.
  void expect_delivered(const std::string& id, int64_t seq,
                        std::chrono::milliseconds timeout = 20s) {
    Producer producer(agent_->socket_path());
    json reply = producer.request(make_request(id, "sale.completed", json{{"id", id}}), 20s);
    EXPECT_EQ(reply.value("seq", int64_t{-1}), seq) << reply.dump();
    const std::string base = agent_->config().topic_base();
    EXPECT_TRUE(hub_->wait_for(
        [&](const HubSubscriber::Messages& msgs) {
          for (const auto& e : hub_events(msgs, base)) {
            if (e.id == id) return true;
          }
          return false;
        },
        timeout))
        << "event " << id << " (seq " << seq << ") did not reach the hub";
  }

  std::string signing_key_;
  std::string untrusted_key_;
  std::string trusted_pub_;
};

// ---------------------------------------------------------------------------------------------
// 1. A valid push.

TEST_F(RemoteConfigTest, ValidPushIsAppliedReportedAndEventsKeepFlowing) {
  agent_->start();
  const json before = wait_config_status(
      [](const json& s) { return !s.value("effective_sha256", "").empty(); }, 15s,
      "an effective sha256");
  const std::string sha0 = before.value("effective_sha256", "");
  EXPECT_EQ(sha0, expected_sha({})) << "before any push the agent runs the local file alone";
  EXPECT_EQ(before.value("remote_config", false), true) << before.dump(2);
  EXPECT_TRUE(at(before, {"scopes", "device"}).is_null()) << before.dump(2);
  expect_delivered("before-push", 1);

  const json layer = {{"hub", {{"linger_ms", 20}}}, {"storage", {{"keep_delivered", 500}}}};
  push(Scope::kDevice, sign(Scope::kDevice, 3, layer));
  const json st = wait_config_status(version_is(Scope::kDevice, 3), 15s, "device v3");
  const std::string sha1 = st.value("effective_sha256", "");
  EXPECT_NE(sha1, sha0);
  EXPECT_EQ(sha1, expected_sha({{Scope::kDevice, 3, layer}}))
      << "the reported configuration is not the local file with the pushed layer";
  EXPECT_EQ(at(st, {"scopes", "device", "key_id"}), "ops-1") << st.dump(2);
  EXPECT_TRUE(at(st, {"scopes", "fleet"}).is_null() && at(st, {"scopes", "store"}).is_null()) << st.dump(2);
  EXPECT_EQ(st.value("device_id", ""), "pos-01");
  EXPECT_EQ(st.value("store_id", ""), "store-042");
  EXPECT_FALSE(st.contains("last_rejection")) << st.dump(2);
  EXPECT_FALSE(st.contains("probation")) << "linger_ms and keep_delivered need no reconnect: "
                                         << st.dump(2);

  // The state file on the box agrees, with the change on record.
  const json state = read_state();
  ASSERT_TRUE(state.is_object()) << read_file(state_path());
  EXPECT_EQ(at(state, {"applied", "device", "version"}), 3) << state.dump(2);
  EXPECT_EQ(state.value("effective_sha256", ""), sha1);
  auto applied = records(state, "applied", "device");
  ASSERT_EQ(applied.size(), 1u) << state.dump(2);
  EXPECT_EQ(applied[0].value("version", 0), 3);
  EXPECT_EQ(applied[0].value("sha256", ""), sha1);
  EXPECT_TRUE(contains(applied[0].value("reason", ""), "hub.linger_ms") &&
              contains(applied[0].value("reason", ""), "storage.keep_delivered"))
      << applied[0].dump();
  EXPECT_TRUE(contains(agent_->log(), "pushed configuration applied: device v3 (key ops-1)"))
      << agent_->log();

  // The technician's tools say the same.
  const json status = status_json();
  EXPECT_EQ(at(status, {"config", "effective_sha256"}), sha1) << status.dump(2);
  EXPECT_EQ(at(status, {"config", "scopes", "device", "version"}), 3) << status.dump(2);
  CommandResult show =
      AgentProcess::run_cli({"config", "show", "--config", agent_->config_path(), "--json"});
  EXPECT_TRUE(show.exited_ok()) << show.describe();
  const json shown = json::parse(show.out, nullptr, false);
  EXPECT_EQ(shown.value("effective_sha256", ""), sha1) << show.describe();

  // Same outbox: numbering and incarnation go on.
  expect_delivered("after-push", 2);
  auto evs = events();
  ASSERT_GE(evs.size(), 2u);
  EXPECT_EQ(evs.front().payload.value("incarnation", "a"), evs.back().payload.value("incarnation", "b"));
  EXPECT_TRUE(first_arrivals_gap_free(evs));
}

// ---------------------------------------------------------------------------------------------
// 2. Bad pushes: each rejected with its reason, nothing changes, delivery goes on.

enum class Bad {
  kTamperedPayload,
  kSignedByUntrustedKey,
  kUnknownKeyId,
  kExpired,
  kInvalidValue,
  kWrongType,
  kLocalOnlyStoragePath,
  kLocalOnlyTrustedKeys,
  kOtherDevicesTarget,
};

struct RejectionCase {
  const char* name;
  Bad bad;
  Scope scope;
  std::vector<std::string> reason_has;  // every one must be in last_rejection.reason
  // Not signed by a trusted key: dropped and counted, not recorded (a flood of junk must not
  // fill the history or wear the flash); the log says why, at most once a minute.
  bool unverified = false;
};

class RejectionTest : public RemoteConfigTest,
                      public ::testing::WithParamInterface<RejectionCase> {
 protected:
  std::string bad_envelope(Bad bad, Scope scope) {
    const json harmless = {{"hub", {{"linger_ms", 9}}}};
    switch (bad) {
      case Bad::kTamperedPayload: {
        // One character of the base64 payload changed after signing: still valid base64,
        // other bytes.
        json env = json::parse(sign(scope, 2, harmless));
        std::string p = env["payload"];
        const size_t i = p.size() / 2;
        p[i] = p[i] == 'A' ? 'B' : 'A';
        env["payload"] = p;
        return env.dump();
      }
      case Bad::kSignedByUntrustedKey:
        return sign(scope, 2, harmless, {&untrusted_key_, "ops-1"});
      case Bad::kUnknownKeyId:
        return sign(scope, 2, harmless, {&untrusted_key_, "ops-9"});
      case Bad::kExpired: {
        const int64_t now = platform::unix_ms();
        return sign(scope, 2, harmless, {nullptr, "ops-1", now - 2 * kHourMs, now - kHourMs});
      }
      case Bad::kInvalidValue:
        return sign(scope, 2, {{"hub", {{"max_inflight", 0}}}});
      case Bad::kWrongType:
        return sign(scope, 2, {{"retry", {{"max_ms", "fast"}}}});
      case Bad::kLocalOnlyStoragePath:
        return sign(scope, 2, {{"storage", {{"path", dir_->file("elsewhere.db")}}}});
      case Bad::kOtherDevicesTarget: {
        Signing other;
        other.target = agent_->config().store_id + "/pos-99";
        return sign(scope, 2, harmless, other);
      }
      case Bad::kLocalOnlyTrustedKeys:
        return sign(scope, 2, {{"remote_config", {{"trusted_keys", {{"evil", trusted_pub_}}}}}});
    }
    return {};
  }
};

TEST_P(RejectionTest, IsReportedNotAppliedAndDeliveryGoesOn) {
  const RejectionCase& c = GetParam();
  agent_->start();
  // A good layer first, so "unchanged" means the pushed configuration stays, not just the file.
  const json good = {{"hub", {{"linger_ms", 4}}}};
  push(Scope::kDevice, sign(Scope::kDevice, 1, good));
  const json before = wait_config_status(version_is(Scope::kDevice, 1), 15s, "device v1");
  const std::string sha1 = before.value("effective_sha256", "");
  ASSERT_EQ(sha1, expected_sha({{Scope::kDevice, 1, good}}));
  expect_delivered("e-1", 1);

  push(c.scope, bad_envelope(c.bad, c.scope));
  if (c.unverified) {
    // A good fleet layer behind it: once that shows, the bad one was handled (same subscriber,
    // in order).
    push(Scope::kFleet, sign(Scope::kFleet, 1, json::object()));
    const json st = wait_config_status(version_is(Scope::kFleet, 1), 15s, "fleet v1");
    EXPECT_FALSE(st.contains("last_rejection")) << st.dump(2);
    EXPECT_GE(st.value("unverified_dropped", 0), 1) << st.dump(2);
    EXPECT_EQ(at(st, {"scopes", "device", "version"}), 1) << st.dump(2);
    const json state = read_state();
    EXPECT_TRUE(records(state, "rejected").empty()) << state.dump(2);
    for (const auto& part : c.reason_has) {
      EXPECT_TRUE(contains(agent_->log(), part)) << "the log should say \"" << part << "\"\n"
                                                 << agent_->log();
    }
    EXPECT_TRUE(contains(agent_->log(), "dropped, not from a trusted key")) << agent_->log();
    // The central team and the technician see when, where and why, not only a count.
    const json dropped = at(st, {"last_unverified"});
    EXPECT_EQ(at(dropped, {"kind"}), "dropped") << st.dump(2);
    EXPECT_EQ(at(dropped, {"scope"}), agent::scope_name(c.scope)) << st.dump(2);
    EXPECT_TRUE(dropped.contains("at")) << st.dump(2);
    for (const auto& part : c.reason_has) {
      EXPECT_TRUE(contains(text_at(dropped, {"reason"}), part)) << part << ": " << st.dump(2);
    }
    const json shown = status_json();
    EXPECT_EQ(at(shown, {"config", "last_unverified", "scope"}), agent::scope_name(c.scope))
        << shown.dump(2);
    CommandResult text = AgentProcess::run_cli({"status", "--config", agent_->config_path()});
    EXPECT_TRUE(contains(text.out, "config dropped")) << text.out;
    EXPECT_TRUE(agent_->running());
    expect_delivered("e-2", 2);
    return;
  }
  const json st = wait_config_status(
      [](const json& s) { return s.contains("last_rejection"); }, 15s, "a last_rejection");
  const json rej = at(st, {"last_rejection"});
  const std::string reason = text_at(rej, {"reason"});
  for (const auto& part : c.reason_has) {
    EXPECT_TRUE(contains(reason, part)) << "the reason should mention \"" << part << "\": "
                                        << rej.dump();
  }
  EXPECT_EQ(at(rej, {"scope"}), agent::scope_name(c.scope)) << rej.dump();
  EXPECT_EQ(at(rej, {"version"}), 2) << rej.dump();
  EXPECT_EQ(st.value("effective_sha256", ""), sha1) << "a rejected push changed the configuration";
  EXPECT_EQ(at(st, {"scopes", "device", "version"}), 1) << st.dump(2);
  if (c.scope != Scope::kDevice) {
    EXPECT_TRUE(at(st, {"scopes", agent::scope_name(c.scope)}).is_null()) << st.dump(2);
  }

  const json state = read_state();
  EXPECT_EQ(state.value("effective_sha256", ""), sha1);
  EXPECT_EQ(records(state, "applied").size(), 1u) << state.dump(2);
  auto rejected = records(state, "rejected");
  ASSERT_EQ(rejected.size(), 1u) << state.dump(2);
  EXPECT_EQ(rejected[0].value("reason", ""), reason);
  EXPECT_TRUE(contains(agent_->log(), "pushed configuration rejected (" +
                                          std::string(agent::scope_name(c.scope)) + " v2): " +
                                          reason))
      << agent_->log();

  EXPECT_TRUE(agent_->running());
  expect_delivered("e-2", 2);
}

INSTANTIATE_TEST_SUITE_P(
    EachCause, RejectionTest,
    ::testing::Values(
        RejectionCase{"TamperedPayload", Bad::kTamperedPayload, Scope::kDevice,
                      {"bad signature"}, true},
        RejectionCase{"SignedByUntrustedKeyUnderTrustedId", Bad::kSignedByUntrustedKey,
                      Scope::kDevice, {"bad signature", "ops-1"}, true},
        RejectionCase{"UnknownKeyId", Bad::kUnknownKeyId, Scope::kDevice,
                      {"unknown key id", "ops-9"}, true},
        RejectionCase{"AnotherDevicesLayer", Bad::kOtherDevicesTarget, Scope::kDevice,
                      {"addressed to", "pos-99"}},
        RejectionCase{"ADevicesLayerOnTheFleetTopic", Bad::kOtherDevicesTarget, Scope::kFleet,
                      {"addressed to", "fleet"}},
        RejectionCase{"Expired", Bad::kExpired, Scope::kDevice, {"expired"}},
        RejectionCase{"InvalidValue", Bad::kInvalidValue, Scope::kDevice,
                      {"invalid configuration", "hub.max_inflight"}},
        RejectionCase{"WrongType", Bad::kWrongType, Scope::kDevice,
                      {"invalid configuration", "retry.max_ms"}},
        RejectionCase{"LocalOnlyStoragePath", Bad::kLocalOnlyStoragePath, Scope::kStore,
                      {"local-only", "storage.path"}},
        RejectionCase{"LocalOnlyTrustedKeys", Bad::kLocalOnlyTrustedKeys, Scope::kFleet,
                      {"local-only", "remote_config"}}),
    [](const ::testing::TestParamInfo<RejectionCase>& info) { return info.param.name; });

TEST_F(RemoteConfigTest, OlderVersionIsRejectedAsReplayAndTheSameOneAgainIsIgnored) {
  agent_->start();
  const json v1 = {{"hub", {{"linger_ms", 3}}}};
  const json v2 = {{"hub", {{"linger_ms", 6}}}};
  const std::string env1 = sign(Scope::kDevice, 1, v1);
  const std::string env2 = sign(Scope::kDevice, 2, v2);
  push(Scope::kDevice, env1);
  wait_config_status(version_is(Scope::kDevice, 1), 15s, "device v1");
  push(Scope::kDevice, env2);
  const json applied = wait_config_status(version_is(Scope::kDevice, 2), 15s, "device v2");
  const std::string sha2 = applied.value("effective_sha256", "");
  EXPECT_EQ(sha2, expected_sha({{Scope::kDevice, 2, v2}}));

  // The genuine, correctly signed v1 published again: a replay.
  push(Scope::kDevice, env1);
  const json st = wait_config_status(
      [](const json& s) { return s.contains("last_rejection"); }, 15s, "a last_rejection");
  const json rejection = at(st, {"last_rejection"});
  EXPECT_TRUE(contains(text_at(rejection, {"reason"}), "replayed or stale")) << rejection.dump();
  EXPECT_EQ(at(rejection, {"version"}), 1) << rejection.dump();
  EXPECT_EQ(st.value("effective_sha256", ""), sha2);
  EXPECT_EQ(at(st, {"scopes", "device", "version"}), 2);

  // v2 again (what a broker redelivers at every connect): no record, no report. A fleet layer
  // pushed behind it shows the agent has handled it.
  push(Scope::kDevice, env2);
  push(Scope::kFleet, sign(Scope::kFleet, 1, json::object()));
  const json after = wait_config_status(version_is(Scope::kFleet, 1), 15s, "fleet v1");
  EXPECT_EQ(at(after, {"scopes", "device", "version"}), 2);
  EXPECT_EQ(at(after, {"last_rejection"}), rejection) << "the same v2 again was reported";
  EXPECT_EQ(after.value("effective_sha256", ""), sha2) << "an empty fleet layer changes nothing";
  const json state = read_state();
  EXPECT_EQ(records(state, "applied", "device").size(), 2u) << state.dump(2);
  EXPECT_EQ(records(state, "rejected").size(), 1u) << state.dump(2);
  EXPECT_EQ(occurrences(agent_->log(), "pushed configuration applied: device"), 2u)
      << agent_->log();
  expect_delivered("e-1", 1);
}

// ---------------------------------------------------------------------------------------------
// 3. Scope order and provenance.

TEST_F(RemoteConfigTest, LayersMergeFleetThenStoreThenDeviceWithProvenance) {
  agent_->start();
  const json fleet = {{"hub", {{"linger_ms", 5}}}, {"retry", {{"max_ms", 3000}}}};
  const json store = {{"hub", {{"linger_ms", 7}}}};
  const json device = {{"retry", {{"max_ms", 4000}}}};
  // Arriving in the reverse order: precedence is the scope's, not the arrival's.
  push(Scope::kDevice, sign(Scope::kDevice, 1, device));
  wait_config_status(version_is(Scope::kDevice, 1), 15s, "device v1");
  push(Scope::kStore, sign(Scope::kStore, 2, store));
  wait_config_status(version_is(Scope::kStore, 2), 15s, "store v2");
  push(Scope::kFleet, sign(Scope::kFleet, 3, fleet));
  const json st = wait_config_status(version_is(Scope::kFleet, 3), 15s, "fleet v3");

  json merged = agent_->config().to_json();
  merged["hub"]["linger_ms"] = 7;
  merged["retry"]["max_ms"] = 4000;
  json arrival_order = agent_->config().to_json();  // what "last message wins" would give
  arrival_order["hub"]["linger_ms"] = 5;
  arrival_order["retry"]["max_ms"] = 3000;
  EXPECT_EQ(st.value("effective_sha256", ""), sha_of(merged)) << st.dump(2);
  EXPECT_NE(st.value("effective_sha256", ""), sha_of(arrival_order));
  EXPECT_EQ(read_state().value("effective_sha256", ""), sha_of(merged));

  CommandResult r = AgentProcess::run_cli(
      {"config", "show", "--effective", "--json", "--config", agent_->config_path()});
  ASSERT_TRUE(r.exited_ok()) << r.describe();
  const json shown = json::parse(r.out, nullptr, false);
  ASSERT_TRUE(shown.is_object()) << r.describe();
  EXPECT_EQ(at(shown, {"settings", "hub.linger_ms", "value"}), 7) << shown.dump(2);
  EXPECT_EQ(at(shown, {"settings", "hub.linger_ms", "origin"}), "store v2") << shown.dump(2);
  EXPECT_EQ(at(shown, {"settings", "retry.max_ms", "value"}), 4000) << shown.dump(2);
  EXPECT_EQ(at(shown, {"settings", "retry.max_ms", "origin"}), "device v1") << shown.dump(2);
  EXPECT_EQ(at(shown, {"settings", "retry.initial_ms", "origin"}), "local") << shown.dump(2);
  EXPECT_EQ(shown.value("effective_sha256", ""), sha_of(merged)) << shown.dump(2);
  expect_delivered("e-1", 1);
}

// ---------------------------------------------------------------------------------------------
// 4. Probation: a push that cuts the box off the hub is undone.

TEST_F(RemoteConfigTest, PushThatLosesTheHubIsRolledBackAfterProbationAndNothingIsLost) {
  agent_->start();
  const json initial = wait_config_status(
      [](const json& s) { return !s.value("effective_sha256", "").empty(); }, 15s,
      "an effective sha256");
  const std::string sha0 = initial.value("effective_sha256", "");
  expect_delivered("before", 1);

  const int dead_port = pick_free_port();  // nothing listens there
  const json layer = {{"hub", {{"uri", "ssl://127.0.0.1:" + std::to_string(dead_port)}}}};
  const auto pushed_at = std::chrono::steady_clock::now();
  push(Scope::kDevice, sign(Scope::kDevice, 1, layer));
  // Cut off from the hub, the box cannot report it there: its own state file says so.
  wait_state(
      [](const json& s) {
        return at(s, {"applied", "device", "version"}) == 1 &&
               at(s, {"probation_since_ms"}).get<int64_t>() > 0;
      },
      5s, "device v1 on probation");

  // Events captured while the box cannot reach the hub.
  std::map<std::string, int64_t> acked;
  {
    Producer producer(agent_->socket_path());
    for (int i = 2; i <= 4; ++i) {
      const std::string id = "during-" + std::to_string(i);
      json reply = producer.request(make_request(id, "sale.completed", json{{"n", i}}), 20s);
      ASSERT_EQ(reply.value("seq", int64_t{-1}), i) << reply.dump();
      acked[id] = i;
    }
  }

  const json st = wait_config_status(
      [](const json& s) { return s.contains("last_rollback"); }, 20s, "a last_rollback");
  const double after_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - pushed_at).count();
  EXPECT_GE(after_s, 9.0) << "rolled back before remote_config.probation_s (10 s) ran out";
  EXPECT_LE(after_s, 16.0) << "rolled back too late";
  const std::string reason = text_at(st, {"last_rollback", "reason"});
  EXPECT_TRUE(contains(reason, "probation")) << st.dump(2);
  EXPECT_TRUE(at(st, {"scopes", "device"}).is_null()) << st.dump(2);
  EXPECT_EQ(st.value("effective_sha256", ""), sha0);
  EXPECT_FALSE(st.contains("probation")) << st.dump(2);

  // Back on the real broker: everything captured meanwhile arrives.
  const std::string base = agent_->config().topic_base();
  ASSERT_TRUE(hub_->wait_for(
      [&](const HubSubscriber::Messages& msgs) {
        std::set<std::string> ids;
        for (const auto& e : hub_events(msgs, base)) ids.insert(e.id);
        return std::all_of(acked.begin(), acked.end(),
                           [&](const auto& a) { return ids.count(a.first) > 0; });
      },
      20s))
      << "events sent during the outage did not arrive after the rollback";
  EXPECT_EQ(acked_not_delivered(events(), acked), 0u);
  EXPECT_TRUE(first_arrivals_gap_free(events()));

  // The retained v1 comes again at every connect: it is not applied again (a barrier layer
  // behind it shows it was handled).
  push(Scope::kFleet, sign(Scope::kFleet, 1, json::object()));
  wait_config_status(version_is(Scope::kFleet, 1), 15s, "fleet v1");
  const json state = read_state();
  EXPECT_EQ(records(state, "applied", "device").size(), 1u) << state.dump(2);
  EXPECT_EQ(records(state, "rolled_back").size(), 1u) << state.dump(2);
  EXPECT_FALSE(at(state, {"applied", "device"}).is_object()) << state.dump(2);
  EXPECT_TRUE(contains(agent_->log(), "pushed configuration rolled back")) << agent_->log();
  expect_delivered("after", 5);
}

// The configuration before the push is what the box goes back to (remote_config.probation_s):
// a layer pushed earlier in the same run, which reached the hub and has been running since,
// stays.
TEST_F(RemoteConfigTest, ProbationRollbackKeepsTheLayersThatRanBeforeThePush) {
  agent_->start();
  const json fleet = {{"retry", {{"max_ms", 3000}}}};
  push(Scope::kFleet, sign(Scope::kFleet, 1, fleet));
  const std::string sha_before =
      wait_config_status(version_is(Scope::kFleet, 1), 15s, "fleet v1").value("effective_sha256", "");
  EXPECT_EQ(sha_before, expected_sha({{Scope::kFleet, 1, fleet}}));
  expect_delivered("e-1", 1);

  const int dead_port = pick_free_port();
  push(Scope::kDevice,
       sign(Scope::kDevice, 1, {{"hub", {{"uri", "ssl://127.0.0.1:" + std::to_string(dead_port)}}}}));
  const json st = wait_config_status(
      [](const json& s) { return s.contains("last_rollback"); }, 20s, "a last_rollback");
  EXPECT_TRUE(contains(text_at(st, {"last_rollback", "reason"}), "probation")) << st.dump(2);
  EXPECT_TRUE(at(st, {"scopes", "device"}).is_null()) << st.dump(2);
  EXPECT_EQ(at(st, {"scopes", "fleet", "version"}), 1)
      << "the rollback also undid fleet v1, pushed and running before the bad push: "
      << st.dump(2);
  EXPECT_EQ(st.value("effective_sha256", ""), sha_before) << st.dump(2);
  expect_delivered("e-2", 2);
}

// ---------------------------------------------------------------------------------------------
// 5. Rollback at start.

TEST_F(RemoteConfigTest, StartWithALayerWhoseFileIsGoneRollsBackAndDelivers) {
  agent_->start();
  const std::string sha0 =
      wait_config_status([](const json& s) { return !s.value("effective_sha256", "").empty(); },
                         15s, "an effective sha256")
          .value("effective_sha256", "");
  const std::string ca_copy = dir_->file("ca-copy.pem");
  std::filesystem::copy_file(tls_.ca_file, ca_copy);
  push(Scope::kDevice, sign(Scope::kDevice, 1, {{"hub", {{"ca_file", ca_copy}}}}));
  // A new connection with the copy: on probation until the hub is reached, then confirmed.
  wait_config_status(
      [](const json& s) { return version_is(Scope::kDevice, 1)(s) && !s.contains("probation"); },
      15s, "device v1 confirmed");
  expect_delivered("e-1", 1);
  EXPECT_EQ(records(read_state(), "confirmed").size(), 1u) << read_state().dump(2);
  ASSERT_EQ(agent_->terminate(20s), 0);

  std::filesystem::remove(ca_copy);
  hub_->clear();
  agent_->start();
  const json st = wait_config_status(
      [](const json& s) { return s.contains("last_rollback"); }, 15s, "a last_rollback");
  const std::string reason = text_at(st, {"last_rollback", "reason"});
  EXPECT_TRUE(contains(reason, ca_copy)) << "the reason should name the missing file: " << reason;
  EXPECT_TRUE(contains(reason, "at start")) << reason;
  EXPECT_TRUE(at(st, {"scopes", "device"}).is_null()) << st.dump(2);
  EXPECT_EQ(st.value("effective_sha256", ""), sha0);
  EXPECT_TRUE(contains(log_of_last_start(agent_->log()), "pushed configuration rolled back"))
      << agent_->log();
  expect_delivered("e-2", 2);
}

TEST_F(RemoteConfigTest, StartThatDidNotCompleteRollsTheUnprovenLayersBackAtTheNextStart) {
  if (const char* w = std::getenv("EDGESYNC_BIN_WRAPPER"); w && *w) {
    GTEST_SKIP() << "the agent runs under " << w
                 << ": LD_PRELOAD would load the sync shim into the emulator, not the agent";
  }
  agent_->start();
  const std::string sha0 =
      wait_config_status([](const json& s) { return !s.value("effective_sha256", "").empty(); },
                         15s, "an effective sha256")
          .value("effective_sha256", "");
  push(Scope::kDevice, sign(Scope::kDevice, 1, {{"hub", {{"linger_ms", 6}}}}));
  wait_config_status(version_is(Scope::kDevice, 1), 15s, "device v1");
  expect_delivered("e-1", 1);
  ASSERT_EQ(agent_->terminate(20s), 0);
  json state = read_state();
  ASSERT_EQ(state.value("unproven", false), true)
      << "a push not yet through a start of the agent is unproven: " << state.dump(2);
  ASSERT_EQ(state.value("failed_starts", -1), 0) << state.dump(2);

  // The next start dies right after it has counted itself: the shim SIGKILLs the agent after its
  // first sync of the state directory, which is the one that makes the state file's update (the
  // start counter) durable, long before the ingest socket exists.
  const std::string sync_log = dir_->file("sync.log");
  const std::string state_dir = std::filesystem::canonical(dir_->path()).string();
  std::vector<std::string> env = preload_environment(EDGESYNC_KILL_AT_SYNC_SO);
  env.insert(env.end(), {"EDGESYNC_KILL_SYNC_MATCH=" + state_dir + "$", "EDGESYNC_KILL_AT_SYNC=1",
                         "EDGESYNC_KILL_WHEN=after", "EDGESYNC_KILL_SYNC_LOG=" + sync_log});
  agent_->set_environment(std::move(env));
  try {
    agent_->start();
    ADD_FAILURE() << "the agent got through its start under the kill shim";
  } catch (const std::runtime_error& e) {
    EXPECT_TRUE(contains(e.what(), "signal 9")) << e.what();
  }
  EXPECT_TRUE(contains(read_file(sync_log), "kill 1 after")) << read_file(sync_log);
  state = read_state();
  EXPECT_EQ(state.value("failed_starts", -1), 1) << state.dump(2);
  EXPECT_EQ(state.value("unproven", false), true) << state.dump(2);

  agent_->set_environment({});
  hub_->clear();
  agent_->start();
  const json st = wait_config_status(
      [](const json& s) { return s.contains("last_rollback"); }, 15s, "a last_rollback");
  EXPECT_TRUE(contains(text_at(st, {"last_rollback", "reason"}), "did not complete its start"))
      << st.dump(2);
  EXPECT_TRUE(at(st, {"scopes", "device"}).is_null()) << st.dump(2);
  EXPECT_EQ(st.value("effective_sha256", ""), sha0);
  // This start completes once it reached the hub.
  state = wait_state([](const json& s) { return s.value("failed_starts", -1) == 0; }, 15s,
                     "this start completed");
  auto rolled = records(state, "rolled_back");
  ASSERT_EQ(rolled.size(), 1u) << state.dump(2);
  EXPECT_TRUE(contains(rolled[0].value("reason", ""), "did not complete its start"));
  EXPECT_EQ(state.value("unproven", true), false) << state.dump(2);
  expect_delivered("e-2", 2);
}

// ---------------------------------------------------------------------------------------------
// 6. Restart.

// The central team's own tools, end to end: keys generate makes the pair (private key 0600),
// config sign makes the envelope, config verify accepts it and refuses it altered, and a box
// that trusts the public key applies it.
TEST_F(RemoteConfigTest, TheTeamsToolsMakeAKeySignAndVerifyAPushTheBoxApplies) {
  const std::string keys = dir_->file("team-keys");
  CommandResult gen =
      AgentProcess::run_cli({"keys", "generate", "--out", keys, "--name", "team-1"}, "", 30s);
  ASSERT_TRUE(gen.exited_ok()) << gen.describe();
  struct stat key_stat {};
  ASSERT_EQ(::stat((keys + "/team-1.key").c_str(), &key_stat), 0);
  EXPECT_EQ(key_stat.st_mode & 0777, 0600u) << "the private key is the team's alone";
  ASSERT_TRUE(std::filesystem::exists(keys + "/team-1.pub"));
  CommandResult again =
      AgentProcess::run_cli({"keys", "generate", "--out", keys, "--name", "team-1"}, "", 30s);
  EXPECT_EQ(again.exit_code(), 2) << "an existing key is never overwritten: " << again.describe();

  const std::string layer = dir_->file("fleet.json");
  write_file(layer, R"({"hub": {"linger_ms": 6}})");
  CommandResult signed_env = AgentProcess::run_cli(
      {"config", "sign", "--key", keys + "/team-1.key", "--key-id", "team-1", "--target", "fleet",
       "--version", "4", "--expires", "1h", layer},
      "", 30s);
  ASSERT_TRUE(signed_env.exited_ok()) << signed_env.describe();
  const std::string envelope_file = dir_->file("fleet.envelope");
  write_file(envelope_file, signed_env.out);
  CommandResult verify = AgentProcess::run_cli(
      {"config", "verify", "--keys", keys, "--scope", "fleet", envelope_file}, "", 30s);
  EXPECT_TRUE(verify.exited_ok()) << verify.describe();
  json tampered = json::parse(signed_env.out);
  tampered["version"] = 5;
  const std::string tampered_file = dir_->file("tampered.envelope");
  write_file(tampered_file, tampered.dump());
  CommandResult refused = AgentProcess::run_cli(
      {"config", "verify", "--keys", keys, "--scope", "fleet", tampered_file}, "", 30s);
  EXPECT_FALSE(refused.exited_ok()) << "an altered envelope verified: " << refused.describe();
  CommandResult local_only = AgentProcess::run_cli(
      {"config", "sign", "--key", keys + "/team-1.key", "--key-id", "team-1", "--target", "fleet",
       "--version", "6"},
      R"({"log": {"format": "json"}})", 30s);
  EXPECT_EQ(local_only.exit_code(), 2) << local_only.describe();
  EXPECT_TRUE(contains(local_only.err, "log.format")) << local_only.describe();

  agent_->config().extra["remote_config"]["trusted_keys"]["team-1"] = keys + "/team-1.pub";
  agent_->start();
  push(Scope::kFleet, signed_env.out);
  const json st = wait_config_status(version_is(Scope::kFleet, 4), 15s, "fleet v4");
  EXPECT_EQ(at(st, {"scopes", "fleet", "key_id"}), "team-1") << st.dump(2);
  EXPECT_EQ(st.value("effective_sha256", ""),
            expected_sha({{Scope::kFleet, 4, json::parse(R"({"hub": {"linger_ms": 6}})")}}));
  expect_delivered("after-team-push", 1);
}

TEST_F(RemoteConfigTest, AppliedPushSurvivesARestartWithoutBeingAppliedAgain) {
  agent_->start();
  const json layer = {{"hub", {{"linger_ms", 15}}}, {"retry", {{"max_ms", 2500}}}};
  push(Scope::kDevice, sign(Scope::kDevice, 1, layer));
  const std::string sha1 =
      wait_config_status(version_is(Scope::kDevice, 1), 15s, "device v1").value("effective_sha256", "");
  EXPECT_EQ(sha1, expected_sha({{Scope::kDevice, 1, layer}}));
  expect_delivered("e-1", 1);
  const size_t history_before = at(read_state(), {"history"}).size();

  ASSERT_EQ(agent_->terminate(20s), 0);
  hub_->clear();
  agent_->start();
  // The retained device layer arrives at the subscription; a fleet layer pushed after it shows
  // the agent has handled it.
  push(Scope::kFleet, sign(Scope::kFleet, 1, json::object()));
  const json st = wait_config_status(version_is(Scope::kFleet, 1), 15s, "fleet v1");
  EXPECT_EQ(at(st, {"scopes", "device", "version"}), 1) << st.dump(2);
  EXPECT_EQ(st.value("effective_sha256", ""), sha1) << "the pushed settings are not in effect";
  EXPECT_FALSE(st.contains("last_rollback")) << st.dump(2);
  const json state = read_state();
  EXPECT_EQ(records(state, "applied", "device").size(), 1u)
      << "the retained layer was applied again after the restart: " << state.dump(2);
  EXPECT_EQ(records(state, "rejected").size(), 0u) << state.dump(2);
  EXPECT_EQ(at(state, {"history"}).size(), history_before + 1) << "only the fleet layer is new: "
                                                         << state.dump(2);
  EXPECT_EQ(occurrences(log_of_last_start(agent_->log()), "pushed configuration applied: device"),
            0u)
      << agent_->log();
  expect_delivered("e-2", 2);
}

// ---------------------------------------------------------------------------------------------
// 7. SIGHUP.

// Rotation: a layer signed by a key the box no longer trusts is out as soon as the file that
// removed the key is reloaded, and the record says so; nothing is left claiming to be applied.
TEST_F(RemoteConfigTest, ReloadThatRemovesASigningKeyDropsItsLayersAndSaysSo) {
  agent_->start();
  const json layer = {{"hub", {{"linger_ms", 3}}}};
  push(Scope::kDevice, sign(Scope::kDevice, 1, layer));
  wait_config_status(version_is(Scope::kDevice, 1), 15s, "device v1");
  expect_delivered("e-1", 1);

  auto other = platform::crypto::generate_p256_key();
  ASSERT_TRUE(other) << other.status().to_string();
  const std::string other_pub = dir_->file("ops-2.pub");
  write_file(other_pub, other->public_pem);
  agent_->config().extra = {
      {"remote_config", {{"trusted_keys", {{"ops-2", other_pub}}}, {"probation_s", 10}}}};
  write_file(agent_->config_path(), agent_->config().to_text());
  agent_->signal(SIGHUP);

  const json st = wait_config_status(
      [](const json& s) { return s.contains("scopes") && s["scopes"]["device"].is_null(); }, 10s,
      "the device layer gone");
  EXPECT_EQ(st.value("effective_sha256", ""), expected_sha({})) << st.dump(2);
  const json state = read_state();
  auto rejected = records(state, "rejected");
  ASSERT_EQ(rejected.size(), 1u) << state.dump(2);
  EXPECT_TRUE(contains(rejected[0].value("reason", ""), "at reload")) << state.dump(2);
  EXPECT_TRUE(contains(rejected[0].value("reason", ""), "ops-1")) << state.dump(2);
  EXPECT_TRUE(state["applied"].empty()) << state.dump(2);
  expect_delivered("e-2", 2);
}

TEST_F(RemoteConfigTest, SighupReloadsAGoodFileAndRefusesABadOneKeepingTheRunningConfig) {
  agent_->start();
  wait_config_status([](const json& s) { return !s.value("effective_sha256", "").empty(); }, 15s,
                     "an effective sha256");
  expect_delivered("e-1", 1);
  const std::string path = agent_->config_path();

  // A live setting.
  agent_->config().linger_ms = 25;
  write_file(path, agent_->config().to_text());
  agent_->signal(SIGHUP);
  json state = wait_state(
      [&](const json& s) { return records(s, "reloaded").size() == 1; }, 10s, "a reload");
  EXPECT_TRUE(contains(records(state, "reloaded")[0].value("reason", ""), "hub.linger_ms"))
      << state.dump(2);
  const std::string sha_reloaded = expected_sha({});
  EXPECT_EQ(state.value("effective_sha256", ""), sha_reloaded);
  wait_config_status(
      [&](const json& s) { return s.value("effective_sha256", "") == sha_reloaded; }, 10s,
      "the reloaded configuration");
  expect_delivered("e-2", 2);

  struct BadFile {
    const char* what;
    std::string text;
    std::vector<std::string> reason_has;
  };
  json unknown_key = agent_->config().to_json();
  unknown_key["hub"]["lingr_ms"] = 3;
  json moved_db = agent_->config().to_json();
  moved_db["storage"]["path"] = dir_->file("moved.db");
  const std::vector<BadFile> bad_files = {
      {"not JSON", "{ \"device\": ", {"not valid JSON"}},
      {"an unknown key", unknown_key.dump(2), {"lingr_ms"}},
      {"a restart-only change", moved_db.dump(2), {"storage.path", "restart"}},
  };
  int64_t seq = 2;
  for (size_t i = 0; i < bad_files.size(); ++i) {
    const BadFile& b = bad_files[i];
    SCOPED_TRACE(b.what);
    write_file(path, b.text);
    agent_->signal(SIGHUP);
    state = wait_state(
        [&](const json& s) { return records(s, "refused").size() == i + 1; }, 10s, "a refusal");
    const std::string reason = records(state, "refused").back().value("reason", "");
    for (const auto& part : b.reason_has) {
      EXPECT_TRUE(contains(reason, part)) << "should mention \"" << part << "\": " << reason;
    }
    EXPECT_EQ(state.value("effective_sha256", ""), sha_reloaded);
    const json st = wait_config_status(
        [&](const json& s) { return text_at(s, {"last_rejection", "reason"}) == reason; }, 10s,
        "the refusal");
    EXPECT_EQ(at(st, {"last_rejection", "scope"}), "local") << st.dump(2);
    EXPECT_EQ(st.value("effective_sha256", ""), sha_reloaded) << st.dump(2);
    ASSERT_TRUE(agent_->running());
    expect_delivered("after-bad-" + std::to_string(i), ++seq);
  }
  EXPECT_EQ(records(state, "reloaded").size(), 1u) << state.dump(2);
  EXPECT_TRUE(contains(agent_->log(), "configuration reload refused")) << agent_->log();
  // Where the running outbox is, the database still is: nothing moved.
  EXPECT_FALSE(std::filesystem::exists(dir_->file("moved.db")));
}

// ---------------------------------------------------------------------------------------------
// 8. The client certificate and its key.

class CertificateTest : public RemoteConfigTest {
 protected:
  // A client certificate for the agent signed by the test CA, valid from `from_ms` to `to_ms`;
  // returns its path (the key is beside it, <name>.key, mode 0600).
  std::string make_client_cert(const std::string& name, int64_t from_ms, int64_t to_ms) {
    const std::string d = dir_->path().string();
    const std::string cnf = d + "/" + name + ".cnf";
    const std::string db = d + "/" + name + ".index";
    write_file(db, "");
    write_file(d + "/" + name + ".serial", name == "expired" ? "0a1b\n" : "0c2d\n");
    write_file(cnf,
               "[ req ]\ndistinguished_name = dn\nprompt = no\n[ dn ]\nCN = unused\n"
               "[ client_ext ]\nbasicConstraints = critical, CA:FALSE\n"
               "keyUsage = critical, digitalSignature\nextendedKeyUsage = clientAuth\n"
               "subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n"
               "[ one_ca ]\ndatabase = " + db + "\nnew_certs_dir = " + d + "\nserial = " + d +
                   "/" + name + ".serial\ndefault_md = sha256\npolicy = any_name\n"
                   "unique_subject = no\n[ any_name ]\ncommonName = supplied\n");
    const std::string key = d + "/" + name + ".key";
    const std::string csr = d + "/" + name + ".csr";
    const std::string pem = d + "/" + name + ".pem";
    const std::string ca_key = std::filesystem::path(tls_.ca_file).parent_path() / "ca.key";
    for (const std::vector<std::string>& argv : std::vector<std::vector<std::string>>{
             {"openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
              "-out", key},
             {"openssl", "req", "-new", "-config", cnf, "-key", key, "-subj", "/CN=" + name,
              "-out", csr},
             // `openssl ca` takes explicit validity dates (x509 -req only counts days from now).
             {"openssl", "ca", "-batch", "-config", cnf, "-name", "one_ca", "-cert", tls_.ca_file,
              "-keyfile", ca_key, "-in", csr, "-out", pem, "-extfile", cnf, "-extensions",
              "client_ext", "-notext", "-startdate", utc_compact(from_ms), "-enddate",
              utc_compact(to_ms)}}) {
      CommandResult r = run_command(argv, "", 30s);
      EXPECT_TRUE(r.exited_ok()) << argv[1] << ": " << r.describe();
    }
    ::chmod(key.c_str(), 0600);
    return pem;
  }
};

TEST_F(CertificateTest, ExpiringAndExpiredClientCertificatesAreReported) {
  const int64_t now = platform::unix_ms();
  // 5.5 days left: "expiring" (under 30), 5 whole days.
  const std::string expiring = make_client_cert("expiring", now - 20 * kDayMs, now + 5 * kDayMs + 12 * kHourMs);
  agent_->config().cert_file = expiring;
  agent_->config().key_file = dir_->file("expiring.key");
  agent_->start();
  const std::string base = agent_->config().topic_base();
  // It is still valid: the hub takes the connection, and the status message carries it.
  ASSERT_TRUE(hub_->wait_for(
      [&](const HubSubscriber::Messages& msgs) {
        for (const auto& m : msgs) {
          if (m.topic != base + "/status") continue;
          json s = json::parse(m.payload, nullptr, false);
          if (s.is_object() && s.value("online", false) && s.contains("certificate")) return true;
        }
        return false;
      },
      15s))
      << "no online status message with a certificate";
  json hub_status;
  for (const auto& m : hub_->messages()) {
    if (m.topic == base + "/status") hub_status = json::parse(m.payload, nullptr, false);
  }
  const json cert = at(hub_status, {"certificate"});
  EXPECT_EQ(at(cert, {"state"}), "expiring") << hub_status.dump(2);
  EXPECT_EQ(at(cert, {"days_left"}), 5) << hub_status.dump(2);
  EXPECT_EQ(at(cert, {"file"}), expiring) << hub_status.dump(2);
  EXPECT_TRUE(contains(text_at(cert, {"subject"}), "CN=expiring")) << hub_status.dump(2);
  EXPECT_TRUE(contains(agent_->log(), "WARNING: the client certificate " + expiring +
                                          " expires in 5 day(s)"))
      << agent_->log();
  json status = status_json();
  EXPECT_EQ(at(status, {"certificate", "state"}), "expiring") << status.dump(2);
  EXPECT_EQ(at(status, {"certificate", "days_left"}), 5) << status.dump(2);
  expect_delivered("e-1", 1);
  ASSERT_EQ(agent_->terminate(20s), 0);

  // Expired 19.5 days ago: the hub will refuse it; the agent says so and keeps capturing.
  const std::string expired = make_client_cert("expired", now - 40 * kDayMs, now - 19 * kDayMs - 12 * kHourMs);
  agent_->config().cert_file = expired;
  agent_->config().key_file = dir_->file("expired.key");
  agent_->start();
  status = status_json();
  EXPECT_EQ(at(status, {"certificate", "state"}), "expired") << status.dump(2);
  EXPECT_EQ(at(status, {"certificate", "days_left"}), -20) << status.dump(2);
  EXPECT_TRUE(contains(log_of_last_start(agent_->log()),
                       "ERROR: the client certificate " + expired + " expired at"))
      << agent_->log();
  Producer producer(agent_->socket_path());
  json reply = producer.request(make_request("e-2", "sale.completed", json{{"n", 2}}), 20s);
  EXPECT_EQ(reply.value("seq", 0), 2) << reply.dump();
}

TEST_F(RemoteConfigTest, AgentRefusesToStartWithAPrivateKeyOthersCanRead) {
  const std::string loose = dir_->file("loose.key");
  std::filesystem::copy_file(tls_.client_key_file, loose);
  ASSERT_EQ(::chmod(loose.c_str(), 0644), 0);
  agent_->config().key_file = loose;
  EXPECT_THROW(agent_->start(), std::runtime_error);
  EXPECT_FALSE(agent_->running());
  const std::string log = log_of_last_start(agent_->log());
  EXPECT_TRUE(contains(log, loose)) << log;
  EXPECT_TRUE(contains(log, "chmod 600")) << log;
  EXPECT_EQ(events().size(), 0u);
}

// A key left readable by others is the box's own mistake, not the pushed layers': once it is
// mended, the box runs what was pushed to it, and its record holds no rollback.
TEST_F(RemoteConfigTest, RefusedStartForTheKeyModeKeepsThePushedConfiguration) {
  const std::string key = dir_->file("own.key");
  std::filesystem::copy_file(tls_.client_key_file, key);
  ASSERT_EQ(::chmod(key.c_str(), 0600), 0);
  agent_->config().key_file = key;
  agent_->start();
  const json layer = {{"hub", {{"linger_ms", 8}}}};
  push(Scope::kDevice, sign(Scope::kDevice, 1, layer));
  const std::string sha1 =
      wait_config_status(version_is(Scope::kDevice, 1), 15s, "device v1").value("effective_sha256", "");
  expect_delivered("e-1", 1);
  // Through a start of its own: proven once that start reached the hub.
  ASSERT_EQ(agent_->terminate(20s), 0);
  agent_->start();
  const auto deadline = std::chrono::steady_clock::now() + 15s;
  while (read_state().value("unproven", true) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_EQ(agent_->terminate(20s), 0);
  ASSERT_EQ(read_state().value("unproven", true), false) << read_state().dump(2);

  ASSERT_EQ(::chmod(key.c_str(), 0644), 0);
  EXPECT_THROW(agent_->start(), std::runtime_error);
  EXPECT_TRUE(contains(log_of_last_start(agent_->log()), "chmod 600")) << agent_->log();
  ASSERT_EQ(::chmod(key.c_str(), 0600), 0);
  hub_->clear();
  agent_->start();
  push(Scope::kFleet, sign(Scope::kFleet, 1, json::object()));  // behind the retained device layer
  const json st = wait_config_status(version_is(Scope::kFleet, 1), 15s, "fleet v1");
  EXPECT_EQ(at(st, {"scopes", "device", "version"}), 1)
      << "the pushed device layer was dropped because of the local key's mode: " << st.dump(2);
  EXPECT_EQ(st.value("effective_sha256", ""), sha1) << st.dump(2);
  const json state = read_state();
  EXPECT_EQ(records(state, "rolled_back").size(), 0u)
      << "the refusal for the key's mode is on record as a rollback of pushed configuration: "
      << state.dump(2);
  expect_delivered("e-2", 2);
}

// ---------------------------------------------------------------------------------------------
// 9. Enrolment.

TEST_F(RemoteConfigTest, EnrollMakesAPrivateKeyAndACsrOpensslAccepts) {
  write_file(agent_->config_path(), agent_->config().to_text());
  const std::string out = dir_->file("tls-new");
  CommandResult r =
      AgentProcess::run_cli({"enroll", "--config", agent_->config_path(), "--out", out}, "", 30s);
  ASSERT_TRUE(r.exited_ok()) << r.describe();
  const std::string key = out + "/device.key";
  const std::string csr = out + "/device.csr";
  struct stat st {};
  ASSERT_EQ(::stat(key.c_str(), &st), 0) << r.describe();
  EXPECT_EQ(st.st_mode & 0777, 0600u) << "device.key mode " << std::oct << (st.st_mode & 0777);
  ASSERT_EQ(::stat(out.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u) << "the key directory's mode " << std::oct
                                      << (st.st_mode & 0777);

  CommandResult verify = run_command({"openssl", "req", "-in", csr, "-noout", "-verify"}, "", 30s);
  EXPECT_TRUE(verify.exited_ok()) << verify.describe();
  CommandResult subject = run_command(
      {"openssl", "req", "-in", csr, "-noout", "-subject", "-nameopt", "RFC2253"}, "", 30s);
  ASSERT_TRUE(subject.exited_ok()) << subject.describe();
  EXPECT_TRUE(contains(subject.out, "CN=pos-01")) << subject.out;
  EXPECT_TRUE(contains(subject.out, "O=store-042")) << subject.out;
  // The CSR is for this key.
  CommandResult csr_pub = run_command({"openssl", "req", "-in", csr, "-noout", "-pubkey"}, "", 30s);
  CommandResult key_pub = run_command({"openssl", "pkey", "-in", key, "-pubout"}, "", 30s);
  ASSERT_TRUE(csr_pub.exited_ok() && key_pub.exited_ok()) << csr_pub.describe() << key_pub.describe();
  EXPECT_EQ(csr_pub.out, key_pub.out);

  // A second run never replaces the key.
  const std::string key_before = read_file(key);
  CommandResult again =
      AgentProcess::run_cli({"enroll", "--config", agent_->config_path(), "--out", out}, "", 30s);
  EXPECT_FALSE(again.exited_ok()) << again.describe();
  EXPECT_EQ(read_file(key), key_before);
}

}  // namespace
}  // namespace edgesync::test
