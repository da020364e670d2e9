#include "agent/remote_config_state.h"

#include "agent/state_file.h"
#include "events/json_nesting.h"
#include "events/json_text.h"
#include "platform/clock.h"
#include "platform/files.h"

namespace edgesync::agent {
namespace {

using nlohmann::json;

json layers_to_json(const LayerSet& layers) {
  json j = json::object();
  for (const auto& [scope, l] : layers) {
    j[scope_name(scope)] = {{"version", l.version},
                            {"envelope", l.envelope},
                            {"key_id", l.key_id},
                            {"issued_at_ms", l.issued_at_ms},
                            {"applied_at_ms", l.applied_at_ms}};
  }
  return j;
}

LayerSet layers_from_json(const json& j) {
  LayerSet out;
  if (!j.is_object()) return out;
  for (const auto& [name, v] : j.items()) {
    auto scope = scope_from_name(name);
    if (!scope || !v.is_object()) continue;
    AppliedLayer l;
    l.version = v.value("version", int64_t{0});
    l.envelope = v.value("envelope", std::string());
    l.key_id = v.value("key_id", std::string());
    l.issued_at_ms = v.value("issued_at_ms", int64_t{0});
    l.applied_at_ms = v.value("applied_at_ms", int64_t{0});
    out[*scope] = std::move(l);
  }
  return out;
}

json record_to_json(const ConfigRecord& r) {
  json j = {{"at_ms", r.at_ms}, {"kind", r.kind}};
  if (!r.scope.empty()) j["scope"] = r.scope;
  if (r.version) j["version"] = r.version;
  if (!r.reason.empty()) j["reason"] = r.reason;
  if (!r.sha256.empty()) j["sha256"] = r.sha256;
  return j;
}

ConfigRecord record_from_json(const json& j) {
  ConfigRecord r;
  r.at_ms = j.value("at_ms", int64_t{0});
  r.kind = j.value("kind", std::string());
  r.scope = j.value("scope", std::string());
  r.version = j.value("version", int64_t{0});
  r.reason = j.value("reason", std::string());
  r.sha256 = j.value("sha256", std::string());
  return r;
}

// What people read: RFC 3339 times instead of milliseconds.
RemoteConfigState state_from_json(const json& j);

json record_for_report(const ConfigRecord& r) {
  json j = record_to_json(r);
  j.erase("at_ms");
  j["at"] = platform::format_rfc3339_ms(r.at_ms);
  return j;
}

}  // namespace

void RemoteConfigState::record(ConfigRecord r) {
  if (r.kind == "rejected" || r.kind == "refused") last_rejection = r;
  if (r.kind == "rolled_back") last_rollback = r;
  history.push_back(std::move(r));
  while (history.size() > kMaxHistory) history.pop_front();
}

std::string remote_config_state_path(const Config& config) {
  return platform::dirname_of(config.storage.path) + "/remote-config.json";
}

Status write_remote_config_state(const std::string& path, const RemoteConfigState& s) {
  json seen = json::object();
  for (const auto& [scope, v] : s.seen) seen[scope_name(scope)] = v;
  json history = json::array();
  for (const auto& r : s.history) history.push_back(record_to_json(r));
  json j = {{"format", 1},
            {"applied", layers_to_json(s.applied)},
            {"last_good", layers_to_json(s.last_good)},
            {"seen", seen},
            {"unproven", s.unproven},
            {"failed_starts", s.failed_starts},
            {"probation_since_ms", s.probation_since_ms},
            {"effective_sha256", s.effective_sha256},
            {"history", history}};
  if (s.last_rejection) j["last_rejection"] = record_to_json(*s.last_rejection);
  if (s.last_rollback) j["last_rollback"] = record_to_json(*s.last_rollback);
  return platform::write_file_atomic(path, events::json_text(j, 2) + "\n");
}

Result<RemoteConfigState> read_remote_config_state(const std::string& path) {
  if (!platform::path_exists(path)) return Status::not_found(path + " does not exist");
  auto text = platform::read_file(path);
  if (!text) return Status::corruption("cannot read " + path);
  const Status bad = Status::corruption(path + " is not a remote configuration state file");
  // Measured first: the members are copied below, which recurses once per level of nesting.
  if (events::nesting_depth(*text) > kMaxStateFileNesting) return bad;
  auto j = json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return bad;
  // A member of the wrong type (a hand edit, a damaged file) throws from value(): the file is
  // unusable as a whole, and the caller starts over rather than trust half of it.
  try {
    if (j.value("format", 0) != 1) return bad;
    return state_from_json(j);
  } catch (const json::exception&) {
    return bad;
  }
}

namespace {

RemoteConfigState state_from_json(const json& j) {
  RemoteConfigState s;
  s.applied = layers_from_json(j.value("applied", json::object()));
  s.last_good = layers_from_json(j.value("last_good", json::object()));
  const json seen = j.value("seen", json::object());
  for (const auto& [name, v] : seen.items()) {
    auto scope = scope_from_name(name);
    if (scope && v.is_number_integer()) s.seen[*scope] = v.get<int64_t>();
  }
  s.unproven = j.value("unproven", false);
  s.failed_starts = j.value("failed_starts", int64_t{0});
  s.probation_since_ms = j.value("probation_since_ms", int64_t{0});
  s.effective_sha256 = j.value("effective_sha256", std::string());
  if (j.contains("last_rejection")) s.last_rejection = record_from_json(j["last_rejection"]);
  if (j.contains("last_rollback")) s.last_rollback = record_from_json(j["last_rollback"]);
  for (const auto& r : j.value("history", json::array())) s.history.push_back(record_from_json(r));
  return s;
}

}  // namespace

json config_status_json(const Config& config, const RemoteConfigState& s, int64_t now_ms) {
  json scopes = json::object();
  for (Scope scope : kScopes) {
    auto it = s.applied.find(scope);
    if (it == s.applied.end()) {
      scopes[scope_name(scope)] = nullptr;
      continue;
    }
    scopes[scope_name(scope)] = {
        {"version", it->second.version},
        {"key_id", it->second.key_id},
        {"issued_at", platform::format_rfc3339_ms(it->second.issued_at_ms)},
        {"applied_at", platform::format_rfc3339_ms(it->second.applied_at_ms)}};
  }
  json j = {{"device_id", config.device.id},
            {"store_id", config.device.store_id},
            {"remote_config", !config.remote_config.trusted_keys.empty()},
            {"scopes", scopes},
            {"effective_sha256", s.effective_sha256},
            {"at", platform::format_rfc3339_ms(now_ms)}};
  if (s.probation_since_ms > 0) {
    j["probation"] = {
        {"since", platform::format_rfc3339_ms(s.probation_since_ms)},
        {"until", platform::format_rfc3339_ms(s.probation_since_ms +
                                              config.remote_config.probation_s * 1000)}};
  }
  if (s.last_rejection) j["last_rejection"] = record_for_report(*s.last_rejection);
  if (s.last_rollback) j["last_rollback"] = record_for_report(*s.last_rollback);
  if (s.unverified_dropped > 0) j["unverified_dropped"] = s.unverified_dropped;
  if (s.last_unverified) j["last_unverified"] = record_for_report(*s.last_unverified);
  return j;
}

}  // namespace edgesync::agent
