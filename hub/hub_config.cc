#include "hub/hub_config.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "events/resend.h"
#include "events/wire.h"

namespace edgesync::hub {

namespace {

using nlohmann::json;

// Collects every problem, so one run of check-config shows them all.
class Reader {
 public:
  void unknown_keys(const json& object, const std::string& where, std::set<std::string> known) {
    for (auto it = object.begin(); it != object.end(); ++it) {
      if (!known.count(it.key())) problem(where + it.key(), "is not a setting");
    }
  }
  void text(const json& object, const std::string& where, const char* key, std::string* out) {
    auto it = object.find(key);
    if (it == object.end()) return;
    if (!it->is_string()) return problem(where + key, "must be a string");
    *out = it->get<std::string>();
  }
  void flag(const json& object, const std::string& where, const char* key, bool* out) {
    auto it = object.find(key);
    if (it == object.end()) return;
    if (!it->is_boolean()) return problem(where + key, "must be true or false");
    *out = it->get<bool>();
  }
  template <typename Int>
  void integer(const json& object, const std::string& where, const char* key, Int* out,
               int64_t min, int64_t max) {
    auto it = object.find(key);
    if (it == object.end()) return;
    if (!it->is_number_integer() || it->get<int64_t>() < min || it->get<int64_t>() > max) {
      return problem(where + key,
                     "must be an integer " + std::to_string(min) + "-" + std::to_string(max));
    }
    *out = static_cast<Int>(it->get<int64_t>());
  }
  void texts(const json& object, const std::string& where, const char* key,
             std::vector<std::string>* out) {
    auto it = object.find(key);
    if (it == object.end()) return;
    if (!it->is_array()) return problem(where + key, "must be a list of strings");
    out->clear();
    for (const json& v : *it) {
      if (!v.is_string() || v.get_ref<const std::string&>().empty()) {
        return problem(where + key, "must be a list of non-empty strings");
      }
      out->push_back(v.get<std::string>());
    }
  }
  const json& section(const json& object, const char* key) {
    static const json kEmpty = json::object();
    auto it = object.find(key);
    if (it == object.end()) return kEmpty;
    if (!it->is_object()) {
      problem(key, "must be an object");
      return kEmpty;
    }
    return *it;
  }
  void problem(const std::string& key, const std::string& what) {
    problems_ << (problems_.tellp() > 0 ? "; " : "") << key << " " << what;
  }
  std::string problems() const { return problems_.str(); }

 private:
  std::ostringstream problems_;
};

bool topic_level_ok(const std::string& s) {
  return !s.empty() && s.find_first_of("/+#") == std::string::npos;
}

}  // namespace

Result<HubConfig> parse_hub_config(const std::string& text) {
  json j = json::parse(text, nullptr, false, /*ignore_comments=*/true);
  if (j.is_discarded() || !j.is_object()) {
    return Status::invalid_argument("the hub's configuration is not a JSON object");
  }
  HubConfig c;
  Reader r;
  r.unknown_keys(j, "", {"broker", "topic_prefix", "subscription", "database", "consumers",
                         "max_batch", "web", "resend"});
  const json& b = r.section(j, "broker");
  r.unknown_keys(b, "broker.", {"uris", "client_id", "username", "password", "ca_file",
                                "cert_file", "key_file", "allow_insecure", "session_expiry_s",
                                "receive_maximum"});
  r.texts(b, "broker.", "uris", &c.broker.uris);
  r.text(b, "broker.", "client_id", &c.broker.client_id);
  r.text(b, "broker.", "username", &c.broker.username);
  r.text(b, "broker.", "password", &c.broker.password);
  r.text(b, "broker.", "ca_file", &c.broker.ca_file);
  r.text(b, "broker.", "cert_file", &c.broker.cert_file);
  r.text(b, "broker.", "key_file", &c.broker.key_file);
  r.flag(b, "broker.", "allow_insecure", &c.broker.allow_insecure);
  r.integer(b, "broker.", "session_expiry_s", &c.broker.session_expiry_s, 60, 0xFFFFFFFE);
  r.integer(b, "broker.", "receive_maximum", &c.broker.receive_maximum, 1, 65535);
  r.text(j, "", "topic_prefix", &c.topic_prefix);
  const json& s = r.section(j, "subscription");
  r.unknown_keys(s, "subscription.", {"shared_group", "stores"});
  r.text(s, "subscription.", "shared_group", &c.subscription.shared_group);
  r.texts(s, "subscription.", "stores", &c.subscription.stores);
  r.text(j, "", "database", &c.database);
  r.integer(j, "", "consumers", &c.consumers, 1, 64);
  r.integer(j, "", "max_batch", &c.max_batch, 1, 10000);
  const json& w = r.section(j, "web");
  r.unknown_keys(w, "web.", {"listen"});
  r.text(w, "web.", "listen", &c.web.listen);
  const json& rs = r.section(j, "resend");
  r.unknown_keys(rs, "resend.", {"interval_s", "max_seqs"});
  r.integer(rs, "resend.", "interval_s", &c.resend.interval_s, 0, 86400);
  r.integer(rs, "resend.", "max_seqs", &c.resend.max_seqs, 1, 1000000);

  if (c.broker.uris.empty()) r.problem("broker.uris", "must name at least one broker");
  int tls_uris = 0;
  for (const std::string& uri : c.broker.uris) {
    Result<BrokerAddress> a = parse_broker_uri(uri);
    bool tls = a && a->tls;
    bool plain = a && !a->tls;
    tls_uris += tls ? 1 : 0;
    if (!a) {
      r.problem("broker.uris", a.status().message() + " (ssl://host:port, or tcp:// for a local test)");
    } else if (plain && !c.broker.allow_insecure) {
      r.problem("broker.uris", "'" + uri + "' is not TLS: set broker.allow_insecure to allow it");
    } else if (tls && c.broker.ca_file.empty()) {
      r.problem("broker.ca_file", "is needed for '" + uri + "'");
    }
  }
  // One connection's TLS settings serve every broker of the list.
  if (tls_uris != 0 && tls_uris != static_cast<int>(c.broker.uris.size())) {
    r.problem("broker.uris", "must be all TLS (ssl://) or all plain (tcp://)");
  }
  if (!c.broker.password.empty() && c.broker.username.empty()) {
    r.problem("broker.password", "needs broker.username");
  }
  if (c.broker.cert_file.empty() != c.broker.key_file.empty()) {
    r.problem("broker.cert_file", "and broker.key_file go together");
  }
  if (c.broker.client_id.empty()) r.problem("broker.client_id", "must not be empty");
  if (c.topic_prefix.empty() || c.topic_prefix.find_first_of("+#") != std::string::npos) {
    r.problem("topic_prefix", "must be a topic without wildcards");
  }
  if (!c.subscription.shared_group.empty() && !topic_level_ok(c.subscription.shared_group)) {
    r.problem("subscription.shared_group", "must be one topic level (no /, + or #)");
  }
  for (const std::string& store : c.subscription.stores) {
    if (!topic_level_ok(store)) {
      r.problem("subscription.stores", "'" + store + "' must be one topic level (no /, + or #)");
    }
  }
  if (c.consumers > 1 && c.subscription.shared_group.empty()) {
    r.problem("consumers", "above 1 needs subscription.shared_group (else every connection "
                           "receives every message)");
  }
  if (c.database.empty()) r.problem("database", "must be a libpq connection string");
  if (!r.problems().empty()) return Status::invalid_argument(r.problems());
  return c;
}

Result<HubConfig> load_hub_config(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::not_found("cannot read the hub's configuration " + path);
  std::ostringstream text;
  text << in.rdbuf();
  auto c = parse_hub_config(text.str());
  if (!c) return Status::invalid_argument(path + ": " + c.status().message());
  return c;
}

std::vector<std::string> subscription_filters(const HubConfig& config) {
  std::vector<std::string> stores = config.subscription.stores;
  if (stores.empty()) stores.push_back("+");
  std::vector<std::string> out;
  const std::string& p = config.topic_prefix;
  const std::string share = config.subscription.shared_group.empty()
                                ? std::string()
                                : "$share/" + config.subscription.shared_group + "/";
  for (const std::string& s : stores) {
    out.push_back(share + events::events_filter(p, s));
    out.push_back(share + events::dead_letter_filter(p, s));
    out.push_back(share + events::resend_reply_filter(p, s));
    out.push_back(events::status_filter(p, s));
    out.push_back(events::health_filter(p, s));
  }
  return out;
}

Result<BrokerAddress> parse_broker_uri(const std::string& uri) {
  BrokerAddress a;
  size_t scheme_end = uri.find("://");
  std::string scheme = scheme_end == std::string::npos ? "" : uri.substr(0, scheme_end);
  if (scheme == "ssl" || scheme == "mqtts") {
    a.tls = true;
  } else if (scheme != "tcp" && scheme != "mqtt") {
    return Status::invalid_argument("'" + uri + "' must start with ssl://, mqtts://, tcp:// or mqtt://");
  }
  std::string rest = uri.substr(scheme_end + 3);
  std::string port;
  if (!rest.empty() && rest.front() == '[') {  // [IPv6]:port
    size_t close = rest.find(']');
    if (close == std::string::npos) return Status::invalid_argument("'" + uri + "': no ]");
    a.host = rest.substr(1, close - 1);
    if (close + 1 < rest.size()) {
      if (rest[close + 1] != ':') return Status::invalid_argument("'" + uri + "': junk after ]");
      port = rest.substr(close + 2);
    }
  } else {
    size_t colon = rest.find(':');
    a.host = rest.substr(0, colon);
    if (colon != std::string::npos) port = rest.substr(colon + 1);
  }
  if (a.host.empty()) return Status::invalid_argument("'" + uri + "': no host");
  if (port.empty()) {
    a.port = a.tls ? 8883 : 1883;
  } else {
    if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
        std::stoi(port) < 1 || std::stoi(port) > 65535) {
      return Status::invalid_argument("'" + uri + "': the port must be 1-65535");
    }
    a.port = std::stoi(port);
  }
  return a;
}

}  // namespace edgesync::hub
