// Fuzzes the config loader: text -> Config, in both FileChecks modes. Besides "no crash, no
// leak, no UB" it checks what agent/config.h promises:
//   - parse_config never throws, whatever the text;
//   - every problem is reported as "key.path: what is wrong";
//   - a config with problems leaves the caller's Config untouched (a reload keeps the old one);
//   - an accepted config obeys every rule of validate(): ids usable in MQTT topics, ranges,
//     TLS settings, budgets, and (kCheck) readable TLS files;
//   - kSkip reports exactly kCheck's problems less the unreadable TLS files, so the tools that
//     skip file checks accept every config the agent accepts, with the same values;
//   - an accepted config written back as JSON parses to the same Config.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "agent/config.h"

namespace {

using edgesync::agent::Config;
using edgesync::agent::FileChecks;
using edgesync::agent::parse_config;
using nlohmann::json;

[[noreturn]] void fail(const char* what, const std::string& text) {
  std::fprintf(stderr, "invariant broken: %s\nconfig (%zu bytes):\n%.*s\n", what, text.size(),
               static_cast<int>(text.size() < 4000 ? text.size() : 4000), text.data());
  std::abort();
}

#define REQUIRE(cond)               \
  do {                              \
    if (!(cond)) fail(#cond, text); \
  } while (0)


// Every field, so that a value lost or changed on the way is seen.
bool same(const Config& a, const Config& b) {
  return edgesync::agent::config_to_json(a) == edgesync::agent::config_to_json(b);
}

Config sentinel() {
  Config c;
  c.device.id = "sentinel-device";
  c.device.store_id = "sentinel-store";
  c.hub.uri = "ssl://sentinel.invalid:8883";
  c.hub.keepalive_s = 77;
  return c;
}

bool is_name(const std::string& s) {
  if (s.empty() || s.size() > 64) return false;
  for (char ch : s) {
    if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
          ch == '.' || ch == '_' || ch == '-')) {
      return false;
    }
  }
  return true;
}

bool starts_with(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

bool in(int64_t v, int64_t lo, int64_t hi) { return v >= lo && v <= hi; }

void check_accepted(const Config& c, FileChecks files, const std::string& text) {
  REQUIRE(is_name(c.device.id));
  REQUIRE(is_name(c.device.store_id));

  REQUIRE(!c.storage.path.empty());
  REQUIRE(in(c.storage.max_bytes, 1 << 20, int64_t{1} << 50));
  REQUIRE(in(c.storage.keep_delivered, 0, 100000000));
  REQUIRE(in(c.storage.max_dead_letters, 1, 10000000));
  REQUIRE(in(c.storage.dead_letter_days, 1, 3650));

  REQUIRE(!c.ingest.socket.empty() && c.ingest.socket.size() <= 107);
  REQUIRE(in(c.ingest.max_line_bytes, 1024, 64 << 20));
  REQUIRE(in(c.ingest.max_connections, 1, 65536));
  REQUIRE(in(c.ingest.idle_timeout_s, 1, 86400));
  // One event of the largest allowed line must fit in the budget.
  REQUIRE(c.storage.max_bytes >= 2 * c.ingest.max_line_bytes);

  const std::string& uri = c.hub.uri;
  bool tls = starts_with(uri, "ssl://") || starts_with(uri, "mqtts://");
  bool plain = starts_with(uri, "tcp://") || starts_with(uri, "mqtt://");
  REQUIRE(tls || (plain && c.hub.allow_insecure));
  REQUIRE(uri.find(':', uri.find("//") + 2) != std::string::npos);
  REQUIRE(!tls || !c.hub.ca_file.empty());
  REQUIRE(c.hub.cert_file.empty() == c.hub.key_file.empty());
  if (files == FileChecks::kCheck) {
    for (const std::string* f : {&c.hub.ca_file, &c.hub.cert_file, &c.hub.key_file}) {
      REQUIRE(f->empty() || ::access(f->c_str(), R_OK) == 0);
    }
  }
  REQUIRE(in(c.hub.keepalive_s, 5, 3600));
  REQUIRE(in(c.hub.max_inflight, 1, 65535));
  REQUIRE(in(c.hub.linger_ms, 0, 10000));
  REQUIRE(in(c.hub.refused_retry_s, 0, 7 * 24 * 3600));
  REQUIRE(!c.hub.client_id.empty());

  REQUIRE(in(c.retry.initial_ms, 10, 3600000));
  REQUIRE(in(c.retry.max_ms, 10, 86400000));
  REQUIRE(c.retry.initial_ms <= c.retry.max_ms);
  REQUIRE(in(c.retry.reconnect_spread_ms, 0, 3600000));

  // The topic base is a publishable MQTT topic prefix: no wildcards, no empty first or last
  // level, store and device as its last two levels.
  const std::string& prefix = c.hub.topic_prefix;
  REQUIRE(!prefix.empty() && prefix.front() != '/' && prefix.back() != '/');
  std::string base = c.topic_base();
  REQUIRE(base == prefix + "/" + c.device.store_id + "/" + c.device.id);
  REQUIRE(base.find_first_of("#+") == std::string::npos);

  std::string state = c.state_file();
  REQUIRE(state.size() > 17 && state.compare(state.size() - 17, 17, "/agent-state.json") == 0);
}

bool is_file_check(const std::string& e) {
  return starts_with(e, "hub.ca_file: cannot read ") ||
         starts_with(e, "hub.cert_file: cannot read ") ||
         starts_with(e, "hub.key_file: cannot read ");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  const std::string text(reinterpret_cast<const char*>(bytes), size);

  Config checked = sentinel();
  std::vector<std::string> check_errors = parse_config(text, &checked, FileChecks::kCheck);
  Config skipped = sentinel();
  std::vector<std::string> skip_errors = parse_config(text, &skipped, FileChecks::kSkip);

  for (const auto* errors : {&check_errors, &skip_errors}) {
    for (const std::string& e : *errors) {
      size_t colon = e.find(": ");
      REQUIRE(colon != std::string::npos && colon + 2 < e.size());
    }
  }

  std::vector<std::string> check_less_files;
  for (const std::string& e : check_errors) {
    if (!is_file_check(e)) check_less_files.push_back(e);
  }
  REQUIRE(check_less_files == skip_errors);

  if (check_errors.empty()) {
    check_accepted(checked, FileChecks::kCheck, text);
    REQUIRE(skip_errors.empty() && same(checked, skipped));
  } else {
    REQUIRE(same(checked, sentinel()));
  }
  if (!skip_errors.empty()) {
    REQUIRE(same(skipped, sentinel()));
    return 0;
  }
  check_accepted(skipped, FileChecks::kSkip, text);

  // Written back, the accepted values read the same: nothing was accepted that the config
  // format cannot state, and nothing is changed on the way in.
  std::string again_text = edgesync::agent::config_to_json(skipped).dump();
  Config again = sentinel();
  std::vector<std::string> again_errors = parse_config(again_text, &again, FileChecks::kSkip);
  REQUIRE(again_errors.empty());
  REQUIRE(same(again, skipped));

  // Same text, same answer.
  Config twice = sentinel();
  REQUIRE(parse_config(text, &twice, FileChecks::kSkip).empty() && same(twice, skipped));
  return 0;
}
