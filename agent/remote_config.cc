#include "agent/remote_config.h"

#include <iostream>

#include "agent/config_tools.h"
#include "agent/event_contract.h"
#include "events/json_text.h"
#include "platform/clock.h"
#include "platform/crypto.h"
#include "platform/files.h"
#include "platform/log.h"

namespace edgesync::agent {
namespace {

using nlohmann::json;

// Bytes of a dropped message's reason kept for the reports (the log line is cut the same way).
constexpr size_t kMaxUnverifiedReason = 200;

std::string join(const std::vector<std::string>& v, const char* sep) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) out += (i ? sep : "") + v[i];
  return out;
}

std::string versions(const LayerSet& layers) {
  if (layers.empty()) return "the local file alone";
  std::string out;
  for (const auto& [scope, l] : layers) {
    out += (out.empty() ? "" : ", ") + std::string(scope_name(scope)) + " v" +
           std::to_string(l.version);
  }
  return out;
}

}  // namespace

Result<LocalConfig> load_local_config(const std::string& path) {
  auto text = platform::read_file(path);
  if (!text) return Status::invalid_argument("cannot read config file " + path);
  LocalConfig local;
  try {
    local.json = json::parse(*text, nullptr, true, /*ignore_comments=*/true);
  } catch (const json::exception& e) {
    return Status::invalid_argument(path + ":\n  config is not valid JSON: " + e.what());
  }
  auto errors = parse_config_json(local.json, &local.config, FileChecks::kCheck);
  if (!errors.empty()) return Status::invalid_argument(path + ":\n  " + join(errors, "\n  "));
  return local;
}

std::vector<std::string> check_effective(const Config& c) {
  std::vector<std::string> errors;
  if (!c.hub.key_file.empty()) {
    Status s = platform::crypto::check_private_key_mode(c.hub.key_file);
    if (!s) errors.push_back("hub.key_file: " + s.message());
  }
  // A broken contract file stops a start and refuses a reload or push: events must never pass
  // unchecked because a schema did not load.
  auto contracts = ContractRegistry::load(c.ingest.contract_dirs());
  if (!contracts) errors.push_back("event contracts: " + contracts.status().message());
  return errors;
}

Config effective_config(const Config& local, const RemoteConfigState& state) {
  if (local.remote_config.trusted_keys.empty() || state.applied.empty()) return local;
  std::vector<Layer> layers;
  for (const auto& [scope, applied] : state.applied) {
    auto env = parse_envelope(applied.envelope);
    if (!env) continue;
    auto payload = parse_layer_json(env->payload);
    if (payload) layers.push_back(Layer{scope, applied.version, std::move(*payload)});
  }
  // The local settings with defaults filled in: the same values as the file merged with them.
  MergedConfig merged = merge_layers(config_to_json(local), layers);
  Config c;
  if (!parse_config_json(merged.json, &c, FileChecks::kSkip).empty()) return local;
  return c;
}

RemoteConfig::RemoteConfig(asio::io_context& io, std::string local_path, LocalConfig local)
    : io_(io),
      local_path_(std::move(local_path)),
      local_(std::move(local)),
      state_path_(remote_config_state_path(local_.config)),
      current_(local_.config),
      probation_timer_(io) {}

Result<Config> RemoteConfig::build(const LocalConfig& local, const LayerSet& layers, bool verify,
                                   std::vector<std::pair<Scope, std::string>>* dropped) const {
  std::vector<Layer> parsed;
  if (!local.config.remote_config.trusted_keys.empty()) {
    for (const auto& [scope, applied] : layers) {
      auto env = parse_envelope(applied.envelope);
      Status s = env ? Status::ok() : env.status();
      // At start the keys may have changed since the push: a layer signed by a key no longer
      // trusted is not used. Expiry is not checked again: it bounds when a message may be
      // applied, not how long it stays applied.
      if (s && verify) s = verify_envelope(*env, keys_, INT64_MIN);
      json payload;
      if (s) {
        auto parsed_payload = parse_layer_json(env->payload);
        if (parsed_payload) {
          payload = std::move(*parsed_payload);
        } else {
          s = Status::invalid_argument("payload: " + parsed_payload.status().message());
        }
      }
      if (!s) {
        if (dropped) {
          dropped->emplace_back(scope, std::string(scope_name(scope)) + " v" +
                                           std::to_string(applied.version) + ": " + s.message());
        }
        continue;
      }
      parsed.push_back(Layer{scope, applied.version, std::move(payload)});
    }
  }
  MergedConfig merged = merge_layers(local.json, parsed);
  Config c;
  auto errors = parse_config_json(merged.json, &c, FileChecks::kCheck);
  if (errors.empty()) errors = check_effective(c);
  if (!errors.empty()) return Status::invalid_argument(join(errors, "; "));
  return c;
}

const Config& RemoteConfig::begin_start() {
  auto keys = load_trusted_keys(local_.config.remote_config.trusted_keys);
  if (keys) keys_ = std::move(*keys);
  auto read = read_remote_config_state(state_path_);
  if (read) {
    state_ = std::move(*read);
  } else if (read.status().code() != Status::Code::kNotFound) {
    // Kept for a look, not overwritten. Starting over loses the replay bookkeeping: a layer's
    // older envelope, signed and not expired, could be applied again (docs/FLEET.md).
    const std::string kept = state_path_ + ".damaged-" + std::to_string(platform::unix_ms());
    Status moved = platform::rename_no_replace(state_path_, kept);
    platform::log(platform::LogLevel::kError, "config_state_unreadable",
                  read.status().message() + (moved ? "; kept as " + kept : std::string()) +
                      "; pushed configuration starts over from the local file");
  }
  const int64_t now = platform::unix_ms();
  if (!enabled()) {
    current_ = local_.config;
    state_.effective_sha256 = config_sha256(current_);
    return current_;
  }
  // A problem of the local file itself (the client key's mode) is not the pushed layers'
  // fault: nothing is rolled back or counted, and run_agent refuses to start, naming it.
  if (!build(local_, {}, /*verify=*/false, nullptr)) {
    current_ = local_.config;
    return current_;
  }
  if (state_.unproven && state_.failed_starts >= 1 && !state_.applied.empty()) {
    // One step down per failed start: the layers before the newest push, then the local file
    // alone. Still unproven: if this start fails too, the next one steps down again.
    const bool to_local = state_.last_good == state_.applied;
    ConfigRecord r{
        now,
        "rolled_back",
        "",
        0,
        "the agent did not complete its start with " + versions(state_.applied) + " (" +
            std::to_string(state_.failed_starts) + " failed start(s)); back to " +
            (to_local ? std::string("the local file alone") : versions(state_.last_good)),
        ""};
    platform::log(platform::LogLevel::kWarning, "config_rolled_back",
                  "pushed configuration rolled back: " + r.reason);
    if (to_local) state_.last_good.clear();
    state_.applied = state_.last_good;
    state_.probation_since_ms = 0;
    state_.failed_starts = 0;
    state_.record(r);
  }
  std::vector<std::pair<Scope, std::string>> dropped;
  auto built = build(local_, state_.applied, /*verify=*/true, &dropped);
  for (const auto& [scope, why] : dropped) {
    platform::log(platform::LogLevel::kWarning, "config_layer_dropped",
                  "pushed layer not used: " + why, {{"scope", scope_name(scope)}});
    state_.record(ConfigRecord{now, "rejected", scope_name(scope), state_.applied[scope].version,
                               "at start: " + why, ""});
    state_.applied.erase(scope);
    state_.last_good.erase(scope);
  }
  if (!built) {
    ConfigRecord r{now,
                   "rolled_back",
                   "",
                   0,
                   "at start, " + versions(state_.applied) + " is not usable: " +
                       built.status().message() + "; back to " + versions(state_.last_good),
                   ""};
    state_.applied = state_.last_good;
    state_.unproven = false;
    state_.probation_since_ms = 0;
    built = build(local_, state_.applied, true, nullptr);
    if (!built) {
      r.reason +=
          "; that is not usable either (" + built.status().message() + "): the local file alone";
      state_.applied.clear();
      state_.last_good.clear();
      built = local_.config;
    }
    platform::log(platform::LogLevel::kWarning, "config_rolled_back",
                  "pushed configuration rolled back: " + r.reason);
    state_.record(r);
  }
  current_ = std::move(*built);
  state_.effective_sha256 = config_sha256(current_);
  ++state_.failed_starts;
  persist();
  return current_;
}

void RemoteConfig::start_completed() {
  if (!enabled() || start_completed_ || stopped_) return;
  start_completed_ = true;
  state_.failed_starts = 0;
  state_.unproven = false;
  if (state_.probation_since_ms > 0) {
    // A restart during probation keeps its deadline (at least 30 s more, to try the hub once):
    // restarting cannot stretch a probation forever.
    const int64_t left =
        state_.probation_since_ms + current_.remote_config.probation_s * 1000 - platform::unix_ms();
    probation_epoch_ = epoch_;
    arm_probation(std::chrono::milliseconds(std::max<int64_t>(left, 30000)));
  }
  promote_if_proven();
  persist();
  report();
}

void RemoteConfig::stop() {
  stopped_ = true;
  probation_timer_.cancel();
}

std::vector<std::string> RemoteConfig::topics() const {
  if (!enabled()) return {};
  return {scope_topic(current_, Scope::kFleet), scope_topic(current_, Scope::kStore),
          scope_topic(current_, Scope::kDevice)};
}

std::string RemoteConfig::status_payload() const {
  return events::json_text(config_status_json(current_, state_, platform::unix_ms()));
}

void RemoteConfig::on_message(const std::string& topic, const std::string& payload) {
  if (!enabled() || stopped_) return;
  auto scope_opt = scope_of_topic(current_, topic);
  if (!scope_opt) return;
  const Scope scope = *scope_opt;
  // An empty retained message clears the topic on the broker; it does not remove the layer
  // the box applied (only a newer signed version can change it).
  if (payload.empty()) return;
  auto applied = state_.applied.find(scope);
  if (applied != state_.applied.end() && applied->second.envelope == payload) return;

  // Until the signature verifies, a message is anybody's: what fails before that is counted
  // and logged at most once a minute, never written, never in the history or the status (a
  // flood of junk must not wear the flash or push the team's own records out).
  auto env = parse_envelope(payload);
  if (!env) return unverified(scope, env.status().message());
  const int64_t seen = state_.seen.count(scope) ? state_.seen[scope] : 0;
  const int64_t applied_version = applied == state_.applied.end() ? 0 : applied->second.version;
  if (env->version <= seen && env->version > applied_version) {
    // Rejected or rolled back before and reported then: the broker delivers it again at every
    // connect while it stays retained.
    return;
  }
  if (!keys_.count(env->key_id)) {
    return unverified(scope,
                      "unknown key id \"" + env->key_id + "\" (not in remote_config.trusted_keys)");
  }
  Status s = verify_envelope(*env, keys_, INT64_MIN);  // the signature alone
  if (!s) return unverified(scope, s.message());
  const std::string version = " v" + std::to_string(env->version);
  if (env->version <= seen || env->version <= applied_version) {
    return reject(scope, env->version,
                  "replayed or stale: version " + std::to_string(env->version) +
                      " is not newer than version " +
                      std::to_string(std::max(seen, applied_version)) + " already " +
                      (applied_version >= seen ? "applied" : "seen") + " for the " +
                      scope_name(scope) + " scope",
                  payload);
  }
  const int64_t now = platform::unix_ms();
  if (env->expires_at_ms && *env->expires_at_ms <= now) {
    return reject(scope, env->version,
                  "expired at " + env->expires_at + " (the box's clock reads " +
                      platform::format_rfc3339_ms(now) + ")",
                  payload);
  }
  if (env->target != scope_target(current_, scope)) {
    return reject(scope, env->version,
                  "addressed to \"" + env->target + "\", not to this box's " + scope_name(scope) +
                      " topic (\"" + scope_target(current_, scope) + "\")",
                  payload);
  }
  // From here the message is the team's own: its version is spent whatever becomes of it.
  state_.seen[scope] = env->version;
  auto layer = parse_layer_json(env->payload);
  if (!layer) return reject(scope, env->version, "payload: " + layer.status().message(), payload);
  s = check_pushable(*layer);
  if (!s) return reject(scope, env->version, s.message(), payload);

  LayerSet candidate = state_.applied;
  candidate[scope] = AppliedLayer{env->version, payload, env->key_id, env->issued_at_ms, now};
  auto next = build(local_, candidate, /*verify=*/false, nullptr);
  if (!next) {
    return reject(scope, env->version, "invalid configuration: " + next.status().message(),
                  payload);
  }
  const ConfigChange change = diff_configs(current_, *next);
  // check_pushable keeps restart-only keys out; should one get through, the push is refused
  // rather than reported as running while the old value runs.
  if (!change.restart_keys.empty()) {
    return reject(scope, env->version,
                  join(change.restart_keys, ", ") + " would apply only at a restart", payload);
  }
  // Known good: what ran before this push, unless that is still on probation (it never reached
  // the hub). Layers applied live and not yet through a restart count: they ran.
  if (state_.probation_since_ms == 0) state_.last_good = state_.applied;
  const RemoteConfigState before = state_;
  state_.applied = std::move(candidate);
  state_.unproven = true;
  if (change.reconnect) state_.probation_since_ms = now;
  state_.effective_sha256 = config_sha256(*next);
  state_.record(
      ConfigRecord{now, "applied", scope_name(scope), env->version,
                   change.empty() ? "no setting changed" : "changed " + join(change.keys, ", "),
                   state_.effective_sha256});
  if (!persist()) {
    // Never run what could not be kept: a restart would come back without it.
    state_ = before;
    state_.seen[scope] = seen;
    return reject(scope, env->version, "cannot persist the configuration state", payload);
  }
  last_rejected_message_.erase(scope);
  platform::log(platform::LogLevel::kNotice, "config_applied",
                std::string("pushed configuration applied: ") + scope_name(scope) + " v" +
                    std::to_string(env->version) + " (key " + env->key_id + "), " +
                    (change.empty() ? "no setting changed" : "changed " + join(change.keys, ", ")) +
                    (change.reconnect ? "; reconnecting, on probation for " +
                                            std::to_string(next->remote_config.probation_s) + " s"
                                      : ""),
                {{"scope", scope_name(scope)},
                 {"version", std::to_string(env->version)},
                 {"key_id", env->key_id}});
  switch_to(std::move(*next));
  if (change.reconnect) {
    probation_epoch_ = epoch_;
    arm_probation(std::chrono::seconds(current_.remote_config.probation_s));
  }
  report();
}

void RemoteConfig::unverified(Scope scope, const std::string& reason) {
  ++state_.unverified_dropped;
  // Anybody may publish there: the reason (which can quote the message) is cut short before
  // it goes into every health and status message.
  std::string shown = printable(reason, kMaxUnverifiedReason);
  state_.last_unverified =
      ConfigRecord{platform::unix_ms(), "dropped", scope_name(scope), 0, std::move(shown), ""};
  const auto now = std::chrono::steady_clock::now();
  auto& last = last_unverified_log_[scope];
  if (last.time_since_epoch().count() != 0 && now - last < std::chrono::minutes(1)) return;
  last = now;
  platform::log(platform::LogLevel::kWarning, "config_dropped",
                std::string("config message on the ") + scope_name(scope) +
                    " topic dropped, not from a trusted key: " + state_.last_unverified->reason +
                    " (" + std::to_string(state_.unverified_dropped) +
                    " dropped since the agent started; more within a minute are counted, not "
                    "logged)",
                {{"scope", scope_name(scope)}});
  // Reported (config/status, health) at the pace of the log line; never written to disk.
  report();
}

void RemoteConfig::reject(Scope scope, int64_t version, const std::string& reason,
                          const std::string& message) {
  const std::string hash = platform::crypto::sha256_hex(message);
  auto& last = last_rejected_message_[scope];
  if (last == hash) return;
  last = hash;
  platform::log(platform::LogLevel::kWarning, "config_rejected",
                std::string("pushed configuration rejected (") + scope_name(scope) +
                    (version ? " v" + std::to_string(version) : std::string()) +
                    "): " + printable(reason),
                {{"scope", scope_name(scope)}, {"version", std::to_string(version)}});
  state_.record(
      ConfigRecord{platform::unix_ms(), "rejected", scope_name(scope), version, reason, ""});
  persist();
  report();
}

void RemoteConfig::on_config_channel_up(uint64_t epoch) {
  if (stopped_ || state_.probation_since_ms == 0 || epoch < probation_epoch_) return;
  probation_timer_.cancel();
  state_.probation_since_ms = 0;
  state_.record(ConfigRecord{
      platform::unix_ms(), "confirmed", "", 0,
      "the hub was reached and granted the config topics with " + versions(state_.applied),
      state_.effective_sha256});
  promote_if_proven();
  persist();
  report();
}

void RemoteConfig::promote_if_proven() {
  if (!state_.unproven && state_.probation_since_ms == 0) state_.last_good = state_.applied;
}

void RemoteConfig::arm_probation(std::chrono::milliseconds after) {
  probation_timer_.expires_after(after);
  probation_timer_.async_wait([this](asio::error_code ec) {
    if (ec || stopped_ || state_.probation_since_ms == 0) return;
    rollback("the hub was not reached within remote_config.probation_s (" +
             std::to_string(current_.remote_config.probation_s) + " s) after " +
             versions(state_.applied) + " changed the connection");
  });
}

void RemoteConfig::rollback(const std::string& reason) {
  const int64_t now = platform::unix_ms();
  const LayerSet from = state_.applied;
  auto next = build(local_, state_.last_good, /*verify=*/true, nullptr);
  std::string to = versions(state_.last_good);
  if (!next) {
    state_.last_good.clear();
    next = build(local_, state_.last_good, true, nullptr);
    to = "the local file alone";
  }
  if (!next) {
    // Nothing to go back to: stay, and say so (the probation is over either way).
    state_.probation_since_ms = 0;
    state_.record(ConfigRecord{now, "rolled_back", "", 0,
                               reason +
                                   "; cannot roll back: the local file alone is not usable "
                                   "either (" +
                                   next.status().message() + ")",
                               state_.effective_sha256});
    platform::log(
        platform::LogLevel::kError, "config_rollback_failed",
        "cannot roll back: the local file is not usable either: " + next.status().message());
    persist();
    report();
    return;
  }
  state_.applied = state_.last_good;
  state_.unproven = false;
  state_.probation_since_ms = 0;
  state_.effective_sha256 = config_sha256(*next);
  state_.record(ConfigRecord{now, "rolled_back", "", 0,
                             reason + "; from " + versions(from) + " back to " + to,
                             state_.effective_sha256});
  platform::log(platform::LogLevel::kWarning, "config_rolled_back",
                "pushed configuration rolled back: " + reason + "; back to " + to);
  persist();
  switch_to(std::move(*next));
  report();
}

void RemoteConfig::switch_to(Config next) {
  const ConfigChange change = diff_configs(current_, next);
  const auto old_topics = topics();
  current_ = std::move(next);
  ++epoch_;
  const bool topics_changed = topics() != old_topics;
  if (hooks_.apply) hooks_.apply(current_, change, topics_changed);
}

void RemoteConfig::reload_local() {
  if (stopped_) return;
  const int64_t now = platform::unix_ms();
  auto refuse = [&](const std::string& reason) {
    platform::log(platform::LogLevel::kWarning, "config_reload_refused",
                  "configuration reload refused, the running configuration stays: " + reason);
    state_.record(ConfigRecord{now, "refused", "local", 0, reason, ""});
    persist();
    report();
  };
  auto local = load_local_config(local_path_);
  if (!local) return refuse(local.status().message());
  auto keys = load_trusted_keys(local->config.remote_config.trusted_keys);
  if (!keys) return refuse(keys.status().message());
  const TrustedKeys old_keys = std::move(keys_);
  keys_ = std::move(*keys);
  std::vector<std::pair<Scope, std::string>> dropped;
  auto next = build(*local, state_.applied, /*verify=*/true, &dropped);
  if (!next) {
    keys_ = old_keys;
    return refuse(local_path_ + " with the pushed layers: " + next.status().message());
  }
  const ConfigChange change = diff_configs(current_, *next);
  if (!change.restart_keys.empty()) {
    keys_ = old_keys;
    return refuse(join(change.restart_keys, ", ") +
                  " changed: only a restart applies that (systemctl restart edgesync)");
  }
  local_ = std::move(*local);
  // Layers signed by a key the file no longer trusts are out, as at a start.
  for (const auto& [scope, why] : dropped) {
    platform::log(platform::LogLevel::kWarning, "config_layer_dropped",
                  "pushed layer not used: " + why, {{"scope", scope_name(scope)}});
    state_.record(ConfigRecord{now, "rejected", scope_name(scope), state_.applied[scope].version,
                               "at reload: " + why, ""});
    state_.applied.erase(scope);
    state_.last_good.erase(scope);
  }
  state_.effective_sha256 = config_sha256(*next);
  state_.record(
      ConfigRecord{now, "reloaded", "local", 0,
                   change.empty() ? "no setting changed" : "changed " + join(change.keys, ", "),
                   state_.effective_sha256});
  persist();
  platform::log(platform::LogLevel::kNotice, "config_reloaded",
                "configuration reloaded from " + local_path_ + ": " +
                    (change.empty() ? "no setting changed" : "changed " + join(change.keys, ", ")) +
                    (change.reconnect ? "; reconnecting" : ""));
  switch_to(std::move(*next));
  report();
}

bool RemoteConfig::persist() {
  Status s = write_remote_config_state(state_path_, state_);
  if (!s) {
    platform::log(platform::LogLevel::kError, "storage_error",
                  "cannot write " + state_path_ + ": " + s.to_string());
  }
  return s.is_ok();
}

void RemoteConfig::report() {
  if (hooks_.report) hooks_.report(status_payload());
}

}  // namespace edgesync::agent
