#include "agent/config_layers.h"

#include <algorithm>

#include "events/json_nesting.h"
#include "platform/crypto.h"

namespace edgesync::agent {
namespace {

using nlohmann::json;

// Settings a running agent can only take at its next start: they name the box, its files and
// the channel its configuration comes in on.
// Every one of them is also local-only (a push could not take effect: the box cannot restart
// itself for it, yet would report it as running).
constexpr const char* kRestartOnly[] = {"device.id",        "device.store_id",
                                        "storage.path",     "ingest.socket",
                                        "control.socket",   "metrics.listen",
                                        "log.format",       "hub.topic_prefix",
                                        "ingest.http.listen", "ingest.http.max_connections",
                                        "ingest.http.max_body_bytes", "ingest.spool_dir"};
// hub.client_id is local-only for pushes but a reload may change it (with a reconnect).
// Hub settings that apply live; every other hub.* setting needs a new connection.
constexpr const char* kHubLive[] = {"hub.linger_ms", "hub.refused_retry_s"};

bool starts_with(const std::string& s, std::string_view prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

void flatten(const json& j, const std::string& path, std::map<std::string, json>* out) {
  // An empty object is a leaf of its own, except the whole document.
  if (j.is_object() && (!j.empty() || path.empty())) {
    for (const auto& [k, v] : j.items()) flatten(v, path.empty() ? k : path + "." + k, out);
  } else {
    (*out)[path] = j;
  }
}

void merge_into(json& base, const json& layer, const std::string& path, const std::string& from,
                std::map<std::string, std::string>* origin) {
  for (const auto& [k, v] : layer.items()) {
    const std::string key = path.empty() ? k : path + "." + k;
    auto it = base.find(k);
    if (v.is_object() && it != base.end() && it->is_object()) {
      // An empty object was a leaf of its own; once members come into it, they are the leaves.
      if (!v.empty()) origin->erase(key);
      merge_into(*it, v, key, from, origin);
      continue;
    }
    // Replaced whole: drop the origins recorded under it, then record the new leaves.
    for (auto o = origin->lower_bound(key); o != origin->end() && starts_with(o->first, key);) {
      if (o->first.size() == key.size() || o->first[key.size()] == '.') {
        o = origin->erase(o);
      } else {
        ++o;
      }
    }
    base[k] = v;
    std::map<std::string, json> leaves;
    flatten(v, key, &leaves);
    for (const auto& [leaf, value] : leaves) (*origin)[leaf] = from;
  }
}

}  // namespace

const char* scope_name(Scope scope) {
  switch (scope) {
    case Scope::kFleet: return "fleet";
    case Scope::kStore: return "store";
    case Scope::kDevice: return "device";
  }
  return "fleet";
}

std::optional<Scope> scope_from_name(std::string_view name) {
  for (Scope s : kScopes) {
    if (name == scope_name(s)) return s;
  }
  return std::nullopt;
}

std::string scope_topic(const Config& c, Scope scope) {
  switch (scope) {
    case Scope::kFleet: return c.hub.topic_prefix + "/fleet/config";
    case Scope::kStore: return c.hub.topic_prefix + "/" + c.device.store_id + "/config";
    case Scope::kDevice: return c.topic_base() + "/config";
  }
  return {};
}

std::optional<Scope> scope_of_topic(const Config& c, std::string_view topic) {
  for (Scope s : kScopes) {
    if (topic == scope_topic(c, s)) return s;
  }
  return std::nullopt;
}

std::string scope_target(const Config& c, Scope scope) {
  switch (scope) {
    case Scope::kFleet: return "fleet";
    case Scope::kStore: return c.device.store_id;
    case Scope::kDevice: return c.device.store_id + "/" + c.device.id;
  }
  return {};
}

std::string config_status_topic(const Config& c) { return c.topic_base() + "/config/status"; }

std::vector<std::string> restart_only_keys() {
  return {std::begin(kRestartOnly), std::end(kRestartOnly)};
}

const std::vector<LocalOnlyKey>& local_only_keys() {
  static const std::vector<LocalOnlyKey> keys = {
      {"device", "the box's identity: its topics, client id and certificate are made for it"},
      {"storage.path", "the outbox file: moving it by push would leave every pending event behind"},
      {"ingest.socket",
       "the local contract with the POS software, which connects to this path"},
      {"control",
       "the technician's socket on the box: who may hold and repair delivery is decided there"},
      {"metrics.listen",
       "opens a port on the box: the box's own file decides what listens, and where"},
      {"ingest.http",
       "opens a port on the box: the box's own file decides what listens, and where (its limits "
       "are set when the server starts)"},
      {"ingest.spool_dir",
       "a folder the agent reads and moves files out of: the box's own file decides which"},
      {"log.format",
       "where the agent's log goes, chosen once at start: a push could not take effect until a "
       "restart"},
      {"hub.topic_prefix",
       "where the box listens for its configuration: a push could cut it off from the next one"},
      {"hub.client_id",
       "the box's session on the broker: two boxes with one id throw each other off in a loop"},
      {"remote_config",
       "which keys the box trusts and its probation: a push may not widen its own authority"},
  };
  return keys;
}

Status check_pushable(const json& payload) {
  if (!payload.is_object()) return Status::invalid_argument("payload: must be a JSON object");
  if (events::json_nesting(payload, kMaxConfigNesting) > kMaxConfigNesting) {
    return Status::invalid_argument("payload: nested deeper than " +
                                    std::to_string(kMaxConfigNesting) + " levels");
  }
  std::map<std::string, json> leaves;
  flatten(payload, "", &leaves);
  std::vector<std::string> found;
  for (const auto& key : local_only_keys()) {
    const std::string k = key.path;
    for (const auto& [leaf, v] : leaves) {
      if (leaf == k || starts_with(leaf, k + ".")) {
        found.push_back(k + " (" + key.why + ")");
        break;
      }
    }
  }
  if (found.empty()) return Status::ok();
  std::string msg = "local-only key";
  msg += found.size() > 1 ? "s" : "";
  msg += " in a pushed config: ";
  for (size_t i = 0; i < found.size(); ++i) msg += (i ? "; " : "") + found[i];
  return Status::invalid_argument(msg);
}

MergedConfig merge_layers(const json& local, const std::vector<Layer>& layers) {
  MergedConfig m;
  m.json = local;
  std::map<std::string, json> leaves;
  flatten(local, "", &leaves);
  for (const auto& [leaf, v] : leaves) m.origin[leaf] = "local";
  // Sorted by reference: a copy of a payload recurses once per level of its nesting.
  std::vector<const Layer*> ordered;
  for (const auto& layer : layers) ordered.push_back(&layer);
  std::stable_sort(ordered.begin(), ordered.end(),
                   [](const Layer* a, const Layer* b) { return a->scope < b->scope; });
  for (const Layer* layer : ordered) {
    // Refused by check_pushable; merging it would recurse once per level.
    if (events::json_nesting(layer->payload, kMaxConfigNesting) > kMaxConfigNesting) continue;
    merge_into(m.json, layer->payload, "",
               std::string(scope_name(layer->scope)) + " v" + std::to_string(layer->version),
               &m.origin);
  }
  return m;
}

ConfigChange diff_configs(const Config& from, const Config& to) {
  std::map<std::string, json> a, b;
  flatten(config_to_json(from), "", &a);
  flatten(config_to_json(to), "", &b);
  std::map<std::string, bool> keys;
  for (const auto& [k, v] : a) keys[k] = true;
  for (const auto& [k, v] : b) keys[k] = true;
  ConfigChange change;
  for (const auto& [k, unused] : keys) {
    auto x = a.find(k);
    auto y = b.find(k);
    if (x != a.end() && y != b.end() && x->second == y->second) continue;
    change.keys.push_back(k);
    bool restart = false;
    for (const char* r : kRestartOnly) restart = restart || k == r;
    if (restart) {
      change.restart_keys.push_back(k);
      continue;
    }
    if (starts_with(k, "hub.") &&
        std::none_of(std::begin(kHubLive), std::end(kHubLive),
                     [&key = k](const char* live) { return key == live; })) {
      change.reconnect = true;
    }
  }
  return change;
}

std::string config_sha256(const Config& config) {
  return platform::crypto::sha256_hex(config_to_json(config).dump());
}

json redacted(const Config& config) {
  json j = config_to_json(config);
  if (!config.hub.password.empty()) j["hub"]["password"] = "<redacted>";
  return j;
}

}  // namespace edgesync::agent
