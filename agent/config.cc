#include "agent/config.h"

#include <unistd.h>

#include <algorithm>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <utility>
#include <vector>

#include "events/json_nesting.h"
#include "platform/files.h"
#include "platform/log.h"

namespace edgesync::agent {
namespace {

using nlohmann::json;

// Reads the known keys of one JSON object and reports the unknown ones when done.
class Fields {
 public:
  Fields(const json* obj, std::string path, std::vector<std::string>* errors)
      : obj_(obj), path_(std::move(path)), errors_(errors) {}

  ~Fields() {
    if (!obj_) return;
    for (const auto& [key, value] : obj_->items()) {
      if (!known_.count(key)) errors_->push_back(name(key) + ": unknown key");
    }
  }

  void text(const char* key, std::string* out, bool required = false) {
    const json* v = get(key, required);
    if (!v) return;
    if (!v->is_string()) {
      errors_->push_back(name(key) + ": must be a string");
    } else if (v->get_ref<const std::string&>().empty() && required) {
      errors_->push_back(name(key) + ": must not be empty");
    } else {
      *out = v->get<std::string>();
    }
  }

  void integer(const char* key, int64_t* out, int64_t min, int64_t max) {
    const json* v = get(key, false);
    if (!v) return;
    if (!v->is_number_integer()) {
      errors_->push_back(name(key) + ": must be an integer");
      return;
    }
    // Above INT64_MAX, get<int64_t>() would wrap to a negative number and the message would
    // name a value the file does not hold.
    if (v->is_number_unsigned() &&
        v->get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      errors_->push_back(name(key) + ": must be between " + std::to_string(min) + " and " +
                         std::to_string(max) + ", got " + v->dump());
      return;
    }
    int64_t n = v->get<int64_t>();
    if (n < min || n > max) {
      errors_->push_back(name(key) + ": must be between " + std::to_string(min) + " and " +
                         std::to_string(max) + ", got " + std::to_string(n));
      return;
    }
    *out = n;
  }

  void boolean(const char* key, bool* out) {
    const json* v = get(key, false);
    if (!v) return;
    if (!v->is_boolean()) {
      errors_->push_back(name(key) + ": must be true or false");
      return;
    }
    *out = v->get<bool>();
  }

  // An array of non-empty strings.
  void text_list(const char* key, std::vector<std::string>* out) {
    const json* v = get(key, false);
    if (!v) return;
    if (!v->is_array()) {
      errors_->push_back(name(key) + ": must be an array of strings");
      return;
    }
    std::vector<std::string> list;
    for (size_t i = 0; i < v->size(); ++i) {
      const json& item = (*v)[i];
      if (!item.is_string() || item.get_ref<const std::string&>().empty()) {
        errors_->push_back(name(key) + "[" + std::to_string(i) + "]: must be a non-empty string");
      } else {
        list.push_back(item.get<std::string>());
      }
    }
    *out = std::move(list);
  }

  // An object of strings (key -> text), e.g. key id -> file.
  void text_map(const char* key, std::map<std::string, std::string>* out) {
    const json* v = object(key, false);
    if (!v) return;
    std::map<std::string, std::string> m;
    for (const auto& [k, value] : v->items()) {
      if (!value.is_string() || value.get_ref<const std::string&>().empty()) {
        errors_->push_back(name(key) + "." + k + ": must be a non-empty string");
      } else {
        m[k] = value.get<std::string>();
      }
    }
    *out = std::move(m);
  }

  // A nested object; null if absent (reported when required) or not an object.
  const json* object(const char* key, bool required) {
    const json* v = get(key, required);
    if (v && !v->is_object()) {
      errors_->push_back(name(key) + ": must be an object");
      return nullptr;
    }
    return v;
  }

  std::string name(const std::string& key) const {
    return path_.empty() ? key : path_ + "." + key;
  }

 private:
  const json* get(const char* key, bool required) {
    known_.insert(key);
    if (!obj_) return nullptr;
    auto it = obj_->find(key);
    if (it == obj_->end()) {
      if (required) errors_->push_back(name(key) + ": required");
      return nullptr;
    }
    return &*it;
  }

  const json* obj_;
  std::string path_;
  std::vector<std::string>* errors_;
  std::set<std::string> known_;
};

// HOST:PORT, the port 0-65535 (0: any free one).
bool is_host_port(const std::string& listen) {
  const auto colon = listen.rfind(':');
  const std::string port = colon == std::string::npos ? "" : listen.substr(colon + 1);
  return colon != 0 && colon != std::string::npos && !port.empty() && port.size() <= 5 &&
         port.find_first_not_of("0123456789") == std::string::npos && std::stoi(port) <= 65535;
}

void check_readable(const std::string& key, const std::string& file,
                    std::vector<std::string>* errors) {
  if (!file.empty() && ::access(file.c_str(), R_OK) != 0) {
    errors->push_back(key + ": cannot read " + file);
  }
}

// Rules that span several keys, checked after every key was read.
void validate(const Config& c, FileChecks files, std::vector<std::string>* errors) {
  if (!c.device.id.empty() && !is_valid_name(c.device.id)) {
    errors->push_back("device.id: use 1-64 of A-Z a-z 0-9 . _ - (it is part of MQTT topics)");
  }
  if (!c.device.store_id.empty() && !is_valid_name(c.device.store_id)) {
    errors->push_back(
        "device.store_id: use 1-64 of A-Z a-z 0-9 . _ - (it is part of MQTT topics)");
  }
  // <prefix>/fleet/config is the fleet's configuration topic: a store of that name would
  // share it (docs/FLEET.md).
  if (c.device.store_id == "fleet") {
    errors->push_back("device.store_id: \"fleet\" is reserved (the fleet's configuration topic)");
  }
  if (c.storage.path.empty()) errors->push_back("storage.path: must not be empty");
  if (c.ingest.socket.empty()) errors->push_back("ingest.socket: must not be empty");
  if (c.ingest.unknown_types != "reject" && c.ingest.unknown_types != "accept") {
    errors->push_back("ingest.unknown_types: must be \"reject\" or \"accept\"");
  }
  if (!c.ingest.spool_dir.empty() && c.ingest.spool_dir.front() != '/') {
    errors->push_back("ingest.spool_dir: must be an absolute path");
  }
  if (!c.ingest.http.listen.empty()) {
    const std::string& l = c.ingest.http.listen;
    if (l.front() == '/') {
      if (l.size() > 107) {
        errors->push_back("ingest.http.listen: path longer than 107 bytes cannot be a Unix socket");
      }
    } else if (!is_host_port(l)) {
      errors->push_back(
          "ingest.http.listen: must be HOST:PORT (e.g. 127.0.0.1:8788) or an absolute path "
          "(a Unix socket, e.g. /run/edgesync/http.sock)");
    }
  }
  // sun_path holds 108 bytes including the terminating NUL.
  if (c.ingest.socket.size() > 107) {
    errors->push_back("ingest.socket: path longer than 107 bytes cannot be a Unix socket");
  }
  if (c.control_socket().size() > 107) {
    errors->push_back("control.socket: path longer than 107 bytes cannot be a Unix socket");
  }
  if (c.control_socket() == c.ingest.socket) {
    errors->push_back("control.socket: must differ from ingest.socket (producers may not hold "
                      "or repair delivery)");
  }
  if (!platform::parse_log_level(c.log.level)) {
    errors->push_back("log.level: must be error, warning, notice, info or debug");
  }
  if (!platform::parse_log_format(c.log.format)) {
    errors->push_back("log.format: must be auto, text, json or journal");
  }
  if (!c.metrics.listen.empty() && !is_host_port(c.metrics.listen)) {
    errors->push_back("metrics.listen: must be HOST:PORT, e.g. 127.0.0.1:9465");
  }
  bool any_tls = false;
  for (size_t i = 0; i < c.hub.fallback_uris.size() + 1; ++i) {
    const std::string& uri = i == 0 ? c.hub.uri : c.hub.fallback_uris[i - 1];
    const std::string key = i == 0 ? "hub.uri" : "hub.fallback_uris[" + std::to_string(i - 1) + "]";
    if (uri.empty()) {
      if (i > 0) errors->push_back(key + ": must not be empty");
      continue;
    }
    bool tls = uri.rfind("ssl://", 0) == 0 || uri.rfind("mqtts://", 0) == 0;
    bool plain = uri.rfind("tcp://", 0) == 0 || uri.rfind("mqtt://", 0) == 0;
    any_tls = any_tls || tls;
    if (!tls && !plain) {
      errors->push_back(key + ": must start with ssl:// (or tcp:// with hub.allow_insecure)");
    } else if (plain && !c.hub.allow_insecure) {
      errors->push_back(
          key + ": tcp:// sends events unencrypted; use ssl:// or set hub.allow_insecure: true");
    } else if (uri.find(':', uri.find("//") + 2) == std::string::npos) {
      errors->push_back(key + ": must name a port, e.g. ssl://hub.example.net:8883");
    }
  }
  if (c.hub.fallback_uris.size() > 8) {
    errors->push_back("hub.fallback_uris: at most 8 (each one tried costs a connect timeout)");
  }
  if (any_tls && c.hub.ca_file.empty()) {
    errors->push_back("hub.ca_file: required for ssl:// (the CA that signed the hub)");
  }
  if (c.hub.cert_file.empty() != c.hub.key_file.empty()) {
    errors->push_back(c.hub.cert_file.empty() ? "hub.cert_file: required with hub.key_file"
                                              : "hub.key_file: required with hub.cert_file");
  }
  if (files == FileChecks::kCheck) {
    check_readable("hub.ca_file", c.hub.ca_file, errors);
    check_readable("hub.cert_file", c.hub.cert_file, errors);
    check_readable("hub.key_file", c.hub.key_file, errors);
  }
  if (c.hub.topic_prefix.empty() ||
      c.hub.topic_prefix.find_first_of("#+") != std::string::npos ||
      c.hub.topic_prefix.front() == '/' || c.hub.topic_prefix.back() == '/') {
    errors->push_back("hub.topic_prefix: must be non-empty, without + or #, not start or end with /");
  }
  // Otherwise one event of the largest allowed line could never fit and would always be refused.
  if (c.storage.max_bytes < 2 * c.ingest.max_line_bytes) {
    errors->push_back("storage.max_bytes: must be at least twice ingest.max_line_bytes (" +
                      std::to_string(2 * c.ingest.max_line_bytes) + ")");
  }
  if (c.retry.initial_ms > c.retry.max_ms) {
    errors->push_back("retry.initial_ms: must not exceed retry.max_ms");
  }
  for (const auto& [id, file] : c.remote_config.trusted_keys) {
    if (!is_valid_name(id)) {
      errors->push_back("remote_config.trusted_keys." + id +
                        ": a key id is 1-64 of A-Z a-z 0-9 . _ -");
    }
    if (files == FileChecks::kCheck) {
      check_readable("remote_config.trusted_keys." + id, file, errors);
    }
  }
}

}  // namespace

bool is_valid_name(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

std::string Config::topic_base() const {
  return hub.topic_prefix + "/" + device.store_id + "/" + device.id;
}

std::vector<std::string> Config::hub_uris() const {
  std::vector<std::string> out{hub.uri};
  out.insert(out.end(), hub.fallback_uris.begin(), hub.fallback_uris.end());
  return out;
}

std::string Config::state_file() const {
  return platform::dirname_of(storage.path) + "/agent-state.json";
}

std::string Config::control_socket() const {
  if (!control.socket.empty()) return control.socket;
  return platform::dirname_of(ingest.socket) + "/control.sock";
}

std::vector<std::string> Config::Ingest::contract_dirs() const {
  std::vector<std::string> dirs;
  if (!contracts_dir.empty()) dirs.push_back(contracts_dir);
  dirs.insert(dirs.end(), extra_contract_dirs.begin(), extra_contract_dirs.end());
  return dirs;
}

std::vector<std::string> parse_config(const std::string& text, Config* out, FileChecks files) {
  json root;
  try {
    root = json::parse(text, nullptr, true, /*ignore_comments=*/true);
  } catch (const json::exception& e) {
    // Not only parse_error: a number too large for a double ("1e400") is out_of_range, and
    // an escaped exception would end the agent (or check-config) instead of naming the problem.
    return {std::string("config is not valid JSON: ") + e.what()};
  }
  return parse_config_json(root, out, files);
}

std::vector<std::string> parse_config_json(const json& root, Config* out, FileChecks files) {
  std::vector<std::string> errors;
  if (!root.is_object()) {
    errors.push_back("config: must be a JSON object");
    return errors;
  }
  if (events::json_nesting(root, kMaxConfigNesting) > kMaxConfigNesting) {
    errors.push_back("config: nested deeper than " + std::to_string(kMaxConfigNesting) +
                     " levels");
    return errors;
  }
  Config c;
  {
    Fields top(&root, "", &errors);
    Fields device(top.object("device", true), "device", &errors);
    device.text("id", &c.device.id, true);
    device.text("store_id", &c.device.store_id, true);

    Fields storage(top.object("storage", false), "storage", &errors);
    storage.text("path", &c.storage.path);
    storage.integer("max_bytes", &c.storage.max_bytes, 1 << 20, int64_t{1} << 50);
    storage.integer("keep_delivered", &c.storage.keep_delivered, 0, 100000000);
    storage.integer("max_dead_letters", &c.storage.max_dead_letters, 1, 10000000);
    storage.integer("dead_letter_days", &c.storage.dead_letter_days, 1, 3650);

    Fields ingest(top.object("ingest", false), "ingest", &errors);
    ingest.text("socket", &c.ingest.socket);
    ingest.integer("max_line_bytes", &c.ingest.max_line_bytes, 1024, 64 << 20);
    ingest.integer("max_connections", &c.ingest.max_connections, 1, 65536);
    ingest.integer("idle_timeout_s", &c.ingest.idle_timeout_s, 1, 86400);
    ingest.text("contracts_dir", &c.ingest.contracts_dir);
    ingest.text_list("extra_contract_dirs", &c.ingest.extra_contract_dirs);
    ingest.text("unknown_types", &c.ingest.unknown_types);
    ingest.text("spool_dir", &c.ingest.spool_dir);
    Fields http(ingest.object("http", false), "ingest.http", &errors);
    http.text("listen", &c.ingest.http.listen);
    http.integer("max_body_bytes", &c.ingest.http.max_body_bytes, 1024, 64 << 20);
    http.integer("max_connections", &c.ingest.http.max_connections, 1, 256);

    Fields control(top.object("control", false), "control", &errors);
    control.text("socket", &c.control.socket);

    Fields health(top.object("health", false), "health", &errors);
    health.integer("interval_s", &c.health.interval_s, 5, 86400);

    Fields log(top.object("log", false), "log", &errors);
    log.text("level", &c.log.level);
    log.text("format", &c.log.format);

    Fields metrics(top.object("metrics", false), "metrics", &errors);
    metrics.text("listen", &c.metrics.listen);

    Fields hub(top.object("hub", true), "hub", &errors);
    hub.text("uri", &c.hub.uri, true);
    hub.text_list("fallback_uris", &c.hub.fallback_uris);
    hub.text("topic_prefix", &c.hub.topic_prefix);
    hub.text("client_id", &c.hub.client_id);
    hub.text("ca_file", &c.hub.ca_file);
    hub.text("cert_file", &c.hub.cert_file);
    hub.text("key_file", &c.hub.key_file);
    hub.text("username", &c.hub.username);
    hub.text("password", &c.hub.password);
    hub.integer("keepalive_s", &c.hub.keepalive_s, 5, 3600);
    hub.integer("max_inflight", &c.hub.max_inflight, 1, 65535);
    hub.integer("linger_ms", &c.hub.linger_ms, 0, 10000);
    hub.integer("refused_retry_s", &c.hub.refused_retry_s, 0, 7 * 24 * 3600);
    hub.boolean("allow_insecure", &c.hub.allow_insecure);

    Fields retry(top.object("retry", false), "retry", &errors);
    retry.integer("initial_ms", &c.retry.initial_ms, 10, 3600000);
    retry.integer("max_ms", &c.retry.max_ms, 10, 86400000);
    retry.integer("reconnect_spread_ms", &c.retry.reconnect_spread_ms, 0, 3600000);

    Fields remote(top.object("remote_config", false), "remote_config", &errors);
    remote.text_map("trusted_keys", &c.remote_config.trusted_keys);
    remote.integer("probation_s", &c.remote_config.probation_s, 10, 7 * 24 * 3600);
  }
  validate(c, files, &errors);
  if (c.hub.client_id.empty()) c.hub.client_id = "edgesync-" + c.device.store_id + "-" + c.device.id;
  if (errors.empty()) *out = std::move(c);
  return errors;
}

json config_to_json(const Config& c) {
  json trusted = json::object();
  for (const auto& [id, file] : c.remote_config.trusted_keys) trusted[id] = file;
  return json{
      {"device", {{"id", c.device.id}, {"store_id", c.device.store_id}}},
      {"storage",
       {{"path", c.storage.path},
        {"max_bytes", c.storage.max_bytes},
        {"keep_delivered", c.storage.keep_delivered},
        {"max_dead_letters", c.storage.max_dead_letters},
        {"dead_letter_days", c.storage.dead_letter_days}}},
      {"ingest",
       {{"socket", c.ingest.socket},
        {"max_line_bytes", c.ingest.max_line_bytes},
        {"max_connections", c.ingest.max_connections},
        {"idle_timeout_s", c.ingest.idle_timeout_s},
        {"contracts_dir", c.ingest.contracts_dir},
        {"extra_contract_dirs", c.ingest.extra_contract_dirs},
        {"unknown_types", c.ingest.unknown_types},
        {"spool_dir", c.ingest.spool_dir},
        {"http",
         {{"listen", c.ingest.http.listen},
          {"max_body_bytes", c.ingest.http.max_body_bytes},
          {"max_connections", c.ingest.http.max_connections}}}}},
      {"control", {{"socket", c.control.socket}}},
      {"health", {{"interval_s", c.health.interval_s}}},
      {"log", {{"level", c.log.level}, {"format", c.log.format}}},
      {"metrics", {{"listen", c.metrics.listen}}},
      {"hub",
       {{"uri", c.hub.uri},
        {"fallback_uris", c.hub.fallback_uris},
        {"topic_prefix", c.hub.topic_prefix},
        {"client_id", c.hub.client_id},
        {"ca_file", c.hub.ca_file},
        {"cert_file", c.hub.cert_file},
        {"key_file", c.hub.key_file},
        {"username", c.hub.username},
        {"password", c.hub.password},
        {"keepalive_s", c.hub.keepalive_s},
        {"max_inflight", c.hub.max_inflight},
        {"linger_ms", c.hub.linger_ms},
        {"refused_retry_s", c.hub.refused_retry_s},
        {"allow_insecure", c.hub.allow_insecure}}},
      {"retry",
       {{"initial_ms", c.retry.initial_ms},
        {"max_ms", c.retry.max_ms},
        {"reconnect_spread_ms", c.retry.reconnect_spread_ms}}},
      {"remote_config", {{"trusted_keys", trusted}, {"probation_s", c.remote_config.probation_s}}},
  };
}

Result<Config> load_config(const std::string& path, FileChecks files) {
  auto text = platform::read_file(path);
  if (!text) return Status::invalid_argument("cannot read config file " + path);
  Config c;
  auto errors = parse_config(*text, &c, files);
  if (errors.empty()) return c;
  std::string msg = path + ":";
  for (const auto& e : errors) msg += "\n  " + e;
  return Status::invalid_argument(msg);
}

}  // namespace edgesync::agent
