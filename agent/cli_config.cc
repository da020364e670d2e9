// `edgesync config sign | verify | show`: the central team signs a configuration layer and
// checks an envelope before publishing it; a technician sees on a box what was pushed, what the
// agent runs with and where each setting comes from.
//
// sign and verify apply the checks a box applies (docs/FLEET.md), short of the box's own file,
// so a layer a box would refuse is caught on the workstation.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "agent/cli.h"
#include "agent/config_envelope.h"
#include "agent/config_layers.h"
#include "agent/config_tools.h"
#include "agent/remote_config_state.h"
#include "events/json_text.h"
#include "platform/clock.h"
#include "platform/crypto.h"
#include "platform/files.h"

namespace edgesync::agent {
namespace {

using nlohmann::json;

// The whole file, or standard input for "" and "-".
Result<std::string> read_input(const std::string& file) {
  if (!file.empty() && file != "-") {
    auto text = platform::read_file(file);
    if (!text) return Status::invalid_argument("cannot read " + file);
    return text;
  }
  std::string text(std::istreambuf_iterator<char>(std::cin), {});
  if (std::cin.bad()) return Status::invalid_argument("cannot read standard input");
  return text;
}

std::string join(const std::vector<std::string>& v, const char* sep) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) out += (i ? sep : "") + v[i];
  return out;
}

void flatten(const json& j, const std::string& path, std::map<std::string, json>* out) {
  if (j.is_object() && !j.empty()) {
    for (const auto& [k, v] : j.items()) flatten(v, path.empty() ? k : path + "." + k, out);
  } else {
    (*out)[path] = j;
  }
}

// Rows whose columns are as wide as their widest cell (the last one is not padded).
void print_table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width;
  for (const auto& r : rows) {
    for (size_t i = 0; i < r.size(); ++i) {
      if (width.size() <= i) width.push_back(0);
      width[i] = std::max(width[i], r[i].size());
    }
  }
  for (const auto& r : rows) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size()) line += std::string(width[i] - r[i].size() + 2, ' ');
    }
    std::printf("%s\n", line.c_str());
  }
}

void row(const char* label, const std::string& value) {
  std::printf("%-18s %s\n", label, value.c_str());
}

// ---- sign / verify -------------------------------------------------------------------------

// Key id (the file's stem) -> PEM of every DIR/*.pub.
Result<TrustedKeys> read_key_dir(const std::string& dir) {
  std::error_code ec;
  std::filesystem::directory_iterator it(dir, ec);
  if (ec)
    return Status::invalid_argument("cannot read the key directory " + dir + ": " + ec.message());
  TrustedKeys keys;
  for (const auto& entry : it) {
    const auto& p = entry.path();
    if (p.extension() != ".pub" || !entry.is_regular_file(ec)) continue;
    auto pem = platform::read_file(p.string());
    if (!pem) return Status::invalid_argument("cannot read " + p.string());
    keys[p.stem().string()] = std::move(*pem);
  }
  if (keys.empty()) {
    return Status::invalid_argument("no *.pub file in " + dir +
                                    " (each NAME.pub is trusted with key id NAME)");
  }
  return keys;
}

json record_json(const ConfigRecord& r) {
  json j = {{"at", platform::format_rfc3339_ms(r.at_ms)}, {"kind", r.kind}};
  if (!r.scope.empty()) j["scope"] = r.scope;
  if (r.version) j["version"] = r.version;
  if (!r.reason.empty()) j["reason"] = r.reason;
  if (!r.sha256.empty()) j["sha256"] = r.sha256;
  return j;
}

// "2026-11-30T09:00:01.123Z store v4: reason"
std::string record_line(const ConfigRecord& r) {
  std::string s = platform::format_rfc3339_ms(r.at_ms);
  if (!r.scope.empty()) s += " " + r.scope;
  if (r.version) s += " v" + std::to_string(r.version);
  return s + ": " + r.reason;
}

}  // namespace

int cli_config_sign(const ConfigSignOptions& o) {
  const std::string me = "edgesync config sign: ";
  if (o.version < 1) {
    std::cerr << me << "--version must be at least 1 (got " << o.version << ")\n";
    return 2;
  }
  if (!is_valid_target(o.target)) {
    std::cerr << me << "--target \"" << o.target
              << "\": fleet, STORE_ID or STORE_ID/DEVICE_ID (the topic the layer is for)\n";
    return 2;
  }
  if (!is_key_id(o.key_id)) {
    std::cerr << me << "--key-id \"" << o.key_id << "\": use 1-64 of A-Z a-z 0-9 . _ -\n";
    return 2;
  }
  int64_t lifetime_ms = 0;
  if (o.expires_given) {
    auto d = parse_duration_ms(o.expires);
    if (!d) {
      std::cerr << me << "--expires: " << d.status().message() << "\n";
      return 2;
    }
    lifetime_ms = *d;
  }
  const std::string name = o.file.empty() || o.file == "-" ? "standard input" : o.file;
  auto text = read_input(o.file);
  if (!text) {
    std::cerr << me << text.status().message() << "\n";
    return 2;
  }
  auto layer = parse_layer_json(*text);
  if (!layer) {
    std::cerr << me << name << ": " << layer.status().message() << "\n";
    return 2;
  }
  LayerCheck check = check_layer(*layer);
  for (const auto& e : check.errors) std::cerr << me << name << ": " << e << "\n";
  if (!check.ok()) return 2;
  for (const auto& n : check.notes) {
    std::cerr << me << "note: " << n << " (depends on each box's own file; not checked here)\n";
  }
  auto key = platform::read_file(o.key_file);
  if (!key) {
    std::cerr << me << "cannot read the private key " << o.key_file << "\n";
    return 2;
  }
  const int64_t now = platform::unix_ms();
  auto envelope = sign_envelope(*key, o.key_id, o.target, o.version, now,
                                lifetime_ms ? now + lifetime_ms : 0, layer->dump());
  if (!envelope) {
    std::cerr << me << o.key_file << ": " << envelope.status().message() << "\n";
    return 2;
  }
  if (Status s = platform::crypto::check_private_key_mode(o.key_file); !s) {
    std::cerr << me << "warning: " << s.message() << "\n";
  }
  std::cout << *envelope << "\n";
  return 0;
}

int cli_config_verify(const std::string& keys_dir, const std::string& scope,
                      const std::string& envelope_file, bool as_json) {
  const std::string me = "edgesync config verify: ";
  auto keys = read_key_dir(keys_dir);
  if (!keys) {
    std::cerr << me << keys.status().message() << "\n";
    return 2;
  }
  auto text = read_input(envelope_file);
  if (!text) {
    std::cerr << me << text.status().message() << "\n";
    return 2;
  }
  json out = {{"ok", false},
              {"version", nullptr},
              {"key_id", nullptr},
              {"target", nullptr},
              {"issued_at", nullptr},
              {"expires_at", nullptr},
              {"bytes", nullptr},
              {"warnings", json::array()}};
  if (!scope.empty()) out["scope"] = scope;
  std::string error;
  json payload;
  std::vector<std::string> notes;
  auto env = parse_envelope(*text);
  if (!env) {
    error = env.status().message();
  } else {
    out["version"] = env->version;
    out["key_id"] = env->key_id;
    out["target"] = env->target;
    out["issued_at"] = env->issued_at;
    if (!env->expires_at.empty()) out["expires_at"] = env->expires_at;
    out["bytes"] = env->payload.size();
    Status s = keys->count(env->key_id)
                   ? verify_envelope(*env, *keys, platform::unix_ms())
                   : Status::invalid_argument("unknown key id \"" + env->key_id + "\" (no " +
                                              env->key_id + ".pub in " + keys_dir + ")");
    // The scope the operator means to publish on must be the one the envelope names.
    const bool fleet = env->target == "fleet";
    const bool device = env->target.find('/') != std::string::npos;
    if (s && !scope.empty() &&
        ((scope == "fleet") != fleet || (scope == "device") != device)) {
      s = Status::invalid_argument("target \"" + env->target + "\" is not a " + scope +
                                   " target (fleet, STORE_ID or STORE_ID/DEVICE_ID)");
    }
    if (!s) {
      error = s.message();
    } else if (auto layer = parse_layer_json(env->payload); !layer) {
      error = "payload: " + layer.status().message();
    } else {
      LayerCheck check = check_layer(*layer);
      if (!check.ok()) {
        error = "payload: " + join(check.errors, "; ");
      } else {
        payload = std::move(*layer);
        notes = std::move(check.notes);
      }
    }
  }
  for (const auto& n : notes) out["warnings"].push_back(n);
  if (error.empty()) {
    out["ok"] = true;
    out["payload"] = payload;
  } else {
    out["error"] = error;
  }
  if (as_json) {
    std::cout << events::json_text(out, 2) << "\n";
    return error.empty() ? 0 : 1;
  }
  if (!error.empty()) {
    std::cout << "invalid: " << error << "\n";
    return 1;
  }
  std::cout << "ok: version " << env->version << ", target " << env->target << ", key "
            << env->key_id << ", issued "
            << env->issued_at << ", "
            << (env->expires_at.empty() ? "no expiry" : "expires " + env->expires_at) << ", "
            << env->payload.size() << " bytes of config\n"
            << events::json_text(payload, 2) << "\n";
  for (const auto& n : notes) {
    std::cerr << me << "note: " << n << " (depends on each box's own file; not checked here)\n";
  }
  return 0;
}

// ---- show ----------------------------------------------------------------------------------

int cli_config_show(const std::string& config_path, ConfigView view, bool as_json) {
  const std::string me = "edgesync config show: ";
  // The local file as the agent reads it, without requiring the TLS files to be readable: an
  // operator's account may not read the device's key.
  auto text = platform::read_file(config_path);
  if (!text) {
    std::cerr << me << "cannot read config file " << config_path << "\n";
    return 2;
  }
  json local = json::parse(*text, nullptr, false, /*ignore_comments=*/true);
  Config config;
  auto errors = local.is_discarded() ? std::vector<std::string>{"config is not valid JSON"}
                                     : parse_config_json(local, &config, FileChecks::kSkip);
  if (!errors.empty()) {
    std::cerr << me << "invalid configuration " << config_path << ":\n  " << join(errors, "\n  ")
              << "\n";
    return 2;
  }
  const std::string state_path = remote_config_state_path(config);
  RemoteConfigState state;
  bool pushed = false;
  if (auto read = read_remote_config_state(state_path)) {
    state = std::move(*read);
    pushed = true;
  } else if (read.status().code() != Status::Code::kNotFound) {
    std::cerr << me << read.status().message() << "\n";
    return 1;
  }
  const bool remote_on = !config.remote_config.trusted_keys.empty();

  // The effective configuration as the agent builds it: the pushed layers count only while
  // remote configuration is on (some key is trusted).
  std::vector<Layer> layers;
  std::vector<std::string> unusable;
  if (remote_on) {
    for (const auto& [scope, applied] : state.applied) {
      auto env = parse_envelope(applied.envelope);
      auto payload = env ? parse_layer_json(env->payload) : Result<json>(env.status());
      if (!payload) {
        unusable.push_back(std::string(scope_name(scope)) + " v" + std::to_string(applied.version) +
                           ": " + payload.status().message());
        continue;
      }
      layers.push_back(Layer{scope, applied.version, std::move(*payload)});
    }
  }
  MergedConfig merged = merge_layers(local, layers);
  Config effective;
  auto merge_errors = parse_config_json(merged.json, &effective, FileChecks::kSkip);
  const std::string computed_sha = merge_errors.empty() ? config_sha256(effective) : "";
  if (state.effective_sha256.empty()) state.effective_sha256 = computed_sha;
  const int64_t now = platform::unix_ms();

  if (view == ConfigView::kHistory) {
    if (as_json) {
      json arr = json::array();
      for (const auto& r : state.history) arr.push_back(record_json(r));
      std::cout << events::json_text(arr, 2) << "\n";
      return 0;
    }
    std::vector<std::vector<std::string>> rows = {{"TIME", "KIND", "SCOPE", "VERSION", "REASON"}};
    for (const auto& r : state.history) {
      rows.push_back({platform::format_rfc3339_ms(r.at_ms), r.kind, r.scope.empty() ? "-" : r.scope,
                      r.version ? std::to_string(r.version) : "-",
                      r.reason.empty() ? "-" : r.reason});
    }
    print_table(rows);
    std::printf("(%zu records%s)\n", state.history.size(),
                pushed ? "" : "; nothing was pushed to this box");
    return 0;
  }

  if (view == ConfigView::kEffective) {
    if (!merge_errors.empty()) {
      std::cerr << me << "the local file with the applied layers is not a valid configuration:\n  "
                << join(merge_errors, "\n  ") << "\n";
      return 1;
    }
    std::map<std::string, json> leaves;
    flatten(redacted(effective), "", &leaves);
    auto origin_of = [&](const std::string& key) {
      auto it = merged.origin.find(key);
      return it == merged.origin.end() ? std::string("default") : it->second;
    };
    if (as_json) {
      json layer_list = json::array();
      for (const auto& l : layers) {
        layer_list.push_back({{"scope", scope_name(l.scope)}, {"version", l.version}});
      }
      json settings = json::object();
      for (const auto& [key, value] : leaves) {
        settings[key] = {{"value", value}, {"origin", origin_of(key)}};
      }
      json j = {{"config_file", config_path}, {"remote_config", remote_on},
                {"layers", layer_list},       {"unusable_layers", unusable},
                {"settings", settings},       {"effective_sha256", computed_sha}};
      std::cout << events::json_text(j, 2) << "\n";
      return 0;
    }
    std::string from = config_path;
    for (const auto& l : layers) {
      from += " + " + std::string(scope_name(l.scope)) + " v" + std::to_string(l.version);
    }
    std::printf("effective configuration: %s%s\n", from.c_str(),
                remote_on ? "" : " (remote configuration off: no remote_config.trusted_keys)");
    for (const auto& u : unusable) std::printf("layer not usable: %s\n", u.c_str());
    std::vector<std::vector<std::string>> rows = {{"KEY", "VALUE", "ORIGIN"}};
    for (const auto& [key, value] : leaves) rows.push_back({key, value.dump(), origin_of(key)});
    print_table(rows);
    std::printf("effective sha256: %s\n", computed_sha.c_str());
    return 0;
  }

  if (as_json) {
    json j = config_status_json(config, state, now);
    j["config_file"] = config_path;
    j["state_file"] = state_path;
    j["pushed"] = pushed;
    j["unproven"] = state.unproven;
    j["failed_starts"] = state.failed_starts;
    std::cout << events::json_text(j, 2) << "\n";
    return 0;
  }
  row("config file", config_path);
  std::string keys;
  for (const auto& [id, file] : config.remote_config.trusted_keys)
    keys += (keys.empty() ? "" : ", ") + id;
  row("remote config", remote_on
                           ? "on (trusted keys: " + keys + ")"
                           : "off (no remote_config.trusted_keys; pushed layers are not used)");
  row("state file", state_path + (pushed ? "" : " (none yet: nothing was pushed)"));
  for (Scope scope : kScopes) {
    auto it = state.applied.find(scope);
    if (it == state.applied.end()) {
      row(scope_name(scope), "none");
      continue;
    }
    const AppliedLayer& l = it->second;
    row(scope_name(scope), "v" + std::to_string(l.version) + ", key " + l.key_id + ", issued " +
                               platform::format_rfc3339_ms(l.issued_at_ms) + ", applied " +
                               platform::format_rfc3339_ms(l.applied_at_ms));
  }
  row("probation", state.probation_since_ms > 0
                       ? "since " + platform::format_rfc3339_ms(state.probation_since_ms) +
                             ", until " +
                             platform::format_rfc3339_ms(state.probation_since_ms +
                                                         config.remote_config.probation_s * 1000) +
                             " (rolled back unless the hub is reached by then)"
                       : "none");
  row("unproven", state.unproven
                      ? "yes (the applied layers have not completed a start of the agent; "
                        "starts begun and not completed: " +
                            std::to_string(state.failed_starts) + ")"
                      : "no");
  row("last rejection", state.last_rejection ? record_line(*state.last_rejection) : "none");
  row("last rollback", state.last_rollback ? record_line(*state.last_rollback) : "none");
  row("effective sha256", state.effective_sha256);
  if (!computed_sha.empty() && computed_sha != state.effective_sha256) {
    row("", "(the local file with the applied layers gives " + computed_sha +
                " now; the agent takes a changed file at its next reload or start)");
  }
  for (const auto& u : unusable) row("layer not usable", u);
  return 0;
}

}  // namespace edgesync::agent
