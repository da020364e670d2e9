// The layers of the effective configuration and what a change between two of them needs.
//
// The local file is the base; three pushed layers (fleet, store, device) are merged onto it in
// that order, later wins per key (objects merge member by member, any other value replaces).
// Some keys are local-only: a push that names one is refused whole.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/config.h"
#include "platform/status.h"

namespace edgesync::agent {

enum class Scope { kFleet = 0, kStore = 1, kDevice = 2 };
inline constexpr Scope kScopes[] = {Scope::kFleet, Scope::kStore, Scope::kDevice};

const char* scope_name(Scope scope);  // "fleet", "store", "device"
std::optional<Scope> scope_from_name(std::string_view name);

// <prefix>/fleet/config, <prefix>/<store_id>/config, <prefix>/<store_id>/<device_id>/config
std::string scope_topic(const Config& config, Scope scope);
std::optional<Scope> scope_of_topic(const Config& config, std::string_view topic);
// What an envelope for this box's `scope` names as its target: "fleet", "<store_id>",
// "<store_id>/<device_id>".
std::string scope_target(const Config& config, Scope scope);
// <prefix>/<store_id>/<device_id>/config/status
std::string config_status_topic(const Config& config);

// Keys only the box's own file may set, each with the reason (docs/FLEET.md lists them).
struct LocalOnlyKey {
  const char* path;  // "storage.path", or "remote_config" for the whole section
  const char* why;
};
const std::vector<LocalOnlyKey>& local_only_keys();

// Settings a running agent applies only at its next start (a reload that changes one is
// refused). Each is covered by a local-only key.
std::vector<std::string> restart_only_keys();

// Ok iff `payload` is a JSON object, nested at most kMaxConfigNesting deep, that sets no
// local-only key; otherwise InvalidArgument naming every local-only key it sets.
Status check_pushable(const nlohmann::json& payload);

struct Layer {
  Scope scope;
  int64_t version = 0;
  nlohmann::json payload;  // a JSON object
};

// A layer nested deeper than kMaxConfigNesting (config.h) is left out: check_pushable refuses it.
struct MergedConfig {
  nlohmann::json json;
  // Each leaf's dotted path -> where its value came from: "local", "fleet v3", "store v12", ...
  std::map<std::string, std::string> origin;
};
MergedConfig merge_layers(const nlohmann::json& local, const std::vector<Layer>& layers);

// What moving the running agent from one effective config to another takes.
struct ConfigChange {
  std::vector<std::string> keys;          // every setting that differs, dotted
  std::vector<std::string> restart_keys;  // of those, the ones only a restart can apply
  bool reconnect = false;                 // the hub connection must be made again
  bool empty() const { return keys.empty(); }
};
ConfigChange diff_configs(const Config& from, const Config& to);

// SHA-256 (hex) of the effective config in a canonical form, defaults included: two boxes with
// the same hash run the same settings, however their layers were merged.
std::string config_sha256(const Config& config);

// The config as JSON with secrets (hub.password) replaced by "<redacted>".
nlohmann::json redacted(const Config& config);

}  // namespace edgesync::agent
