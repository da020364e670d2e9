// Fuzzes what a pushed configuration goes through on the box (docs/FLEET.md): the MQTT message
// as an envelope, its signature and expiry, then its payload as a layer merged onto the local
// file and read as a Config. Besides "no crash, no leak, no UB, no exception" it checks what
// agent/config_envelope.h and agent/config_layers.h promise:
//   - parse_envelope: an accepted envelope has a version of at least 1, its dates are the
//     RFC 3339 text it names, and its canonical bytes are a fixed point: the canonical bytes
//     with the signature put back parse to the same envelope and the same canonical bytes;
//   - verify_envelope: an unknown key id is reported as such; nothing random verifies; an
//     envelope whose canonical bytes are signed with the trusted key verifies exactly when it
//     has not expired (for key id "fuzz-resign" the target signs them itself, which is slow,
//     so only inputs that name it pay for it);
//   - a payload that check_pushable accepts and that makes a valid Config once merged changes
//     no local-only setting, needs no restart (every restart-only key is local-only), and the
//     merge names an origin for exactly the leaves of the merged JSON.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "agent/config.h"
#include "agent/config_envelope.h"
#include "agent/config_layers.h"
#include "platform/clock.h"
#include "platform/crypto.h"

namespace {

using edgesync::Status;
using edgesync::agent::Config;
using edgesync::agent::ConfigEnvelope;
using edgesync::agent::FileChecks;
using edgesync::agent::Layer;
using edgesync::agent::MergedConfig;
using edgesync::agent::Scope;
using edgesync::agent::TrustedKeys;
using nlohmann::json;
namespace crypto = edgesync::platform::crypto;

// 2026-11-30T09:00:00Z: the box's clock during the run.
constexpr int64_t kNowMs = 1796029200000;

[[noreturn]] void fail(const char* what, std::string_view text) {
  std::fprintf(stderr, "invariant broken: %s\ninput (%zu bytes): %.*s\n", what, text.size(),
               static_cast<int>(text.size() < 4000 ? text.size() : 4000), text.data());
  std::abort();
}

#define REQUIRE(cond)               \
  do {                              \
    if (!(cond)) fail(#cond, text); \
  } while (0)

bool contains(const std::string& s, const char* needle) {
  return s.find(needle) != std::string::npos;
}

struct Fixture {
  crypto::KeyPairPem key;
  TrustedKeys trusted;
  json local;
  Config local_config;
};

const Fixture& fixture() {
  static const Fixture f = [] {
    Fixture f;
    auto key = crypto::generate_p256_key();
    if (!key) {
      std::fprintf(stderr, "generate_p256_key: %s\n", key.status().message().c_str());
      std::abort();
    }
    f.key = *key;
    f.trusted = {{"fuzz-key", f.key.public_pem}, {"fuzz-resign", f.key.public_pem}};
    f.local = json::parse(R"({
      "device": {"id": "d1", "store_id": "s1"},
      "storage": {"path": "/var/lib/edgesync/outbox.db", "max_bytes": 1073741824},
      "ingest": {"socket": "/run/edgesync/ingest.sock"},
      "hub": {"uri": "ssl://hub.example.net:8883", "ca_file": "/etc/edgesync/ca.pem",
              "password": "secret", "linger_ms": 0},
      "retry": {"initial_ms": 500, "max_ms": 60000},
      "remote_config": {"trusted_keys": {"fuzz-key": "/etc/edgesync/fuzz-key.pem"},
                        "probation_s": 300}
    })");
    if (!edgesync::agent::parse_config_json(f.local, &f.local_config, FileChecks::kSkip)
             .empty()) {
      std::fprintf(stderr, "the fixed local config does not parse\n");
      std::abort();
    }
    return f;
  }();
  return f;
}

void leaves(const json& j, const std::string& path, std::map<std::string, int>* out) {
  if (j.is_object() && !j.empty()) {
    for (const auto& [k, v] : j.items()) leaves(v, path.empty() ? k : path + "." + k, out);
  } else {
    (*out)[path] = 1;
  }
}

void check_envelope(const ConfigEnvelope& e, std::string_view text) {
  const Fixture& f = fixture();
  REQUIRE(e.version >= 1);
  REQUIRE(!e.key_id.empty());
  REQUIRE(edgesync::platform::parse_rfc3339_ms(e.issued_at) == e.issued_at_ms);
  REQUIRE(e.expires_at.empty() == !e.expires_at_ms.has_value());
  if (e.expires_at_ms) {
    REQUIRE(edgesync::platform::parse_rfc3339_ms(e.expires_at) == *e.expires_at_ms);
  }
  REQUIRE(!e.canonical.empty() && e.canonical.front() == '{' && e.canonical.back() == '}');
  REQUIRE(!contains(e.canonical, "\n"));

  // The canonical bytes are a fixed point, whatever spacing and order the input had.
  std::string again_text = e.canonical;
  again_text.pop_back();
  again_text += ",\"sig\":\"" + crypto::base64_encode(e.signature) + "\"}";
  auto again = edgesync::agent::parse_envelope(again_text);
  REQUIRE(again.is_ok());
  REQUIRE(again->canonical == e.canonical);
  REQUIRE(again->version == e.version && again->payload == e.payload &&
          again->key_id == e.key_id && again->signature == e.signature &&
          again->issued_at == e.issued_at && again->expires_at == e.expires_at);

  const bool expired = e.expires_at_ms && *e.expires_at_ms <= kNowMs;
  Status s = edgesync::agent::verify_envelope(e, f.trusted, kNowMs);
  if (!f.trusted.count(e.key_id)) {
    REQUIRE(!s.is_ok() && contains(s.message(), "unknown key id"));
  } else {
    // A signature the target did not make does not verify (a forgery from random bytes).
    REQUIRE(!s.is_ok() && contains(s.message(), "bad signature"));
  }
  if (e.key_id == "fuzz-resign") {
    auto sig = crypto::sign_p256(f.key.private_pem, e.canonical);
    REQUIRE(sig.is_ok());
    ConfigEnvelope signed_e = e;
    signed_e.signature = *sig;
    Status v = edgesync::agent::verify_envelope(signed_e, f.trusted, kNowMs);
    REQUIRE(v.is_ok() == !expired);
    if (expired) REQUIRE(contains(v.message(), "expired at "));
    // The signature covers the key id: the same envelope re-parsed under the other trusted
    // id (same public key) does not verify.
    std::string other_text = e.canonical;
    const std::string from = "\"key_id\":\"fuzz-resign\"";
    const size_t at = other_text.find(from);
    REQUIRE(at != std::string::npos);
    other_text.replace(at, from.size(), "\"key_id\":\"fuzz-key\"");
    other_text.pop_back();
    other_text += ",\"sig\":\"" + crypto::base64_encode(*sig) + "\"}";
    auto other = edgesync::agent::parse_envelope(other_text);
    REQUIRE(other.is_ok());
    REQUIRE(!edgesync::agent::verify_envelope(*other, f.trusted, kNowMs).is_ok());
  }
}

void check_payload(const std::string& payload, int64_t version, std::string_view text) {
  const Fixture& f = fixture();
  json layer = json::parse(payload, nullptr, false);
  if (layer.is_discarded()) return;
  Status pushable = edgesync::agent::check_pushable(layer);
  if (!layer.is_object()) REQUIRE(!pushable.is_ok());
  if (!pushable.is_ok()) {
    REQUIRE(pushable.code() == Status::Code::kInvalidArgument);
    // merge_layers is given only pushable objects by the agent; a refused object must still
    // merge without harm (check-config shows what a refused push would have done).
    if (!layer.is_object()) return;
  }
  const Scope scope = static_cast<Scope>(version % 3);
  // Moved in, as the agent does: a copy recurses once per level of nesting, and a refused
  // payload may be nested far deeper than the stack allows.
  std::vector<Layer> layers;
  layers.push_back(Layer{scope, version, std::move(layer)});
  MergedConfig merged = edgesync::agent::merge_layers(f.local, layers);
  REQUIRE(merged.json.is_object());
  Config c;
  std::vector<std::string> errors =
      edgesync::agent::parse_config_json(merged.json, &c, FileChecks::kSkip);
  if (!errors.empty() || !pushable.is_ok()) return;

  // Accepted: only settings a push may change have changed.
  const Config& l = f.local_config;
  REQUIRE(c.device.id == l.device.id && c.device.store_id == l.device.store_id);
  REQUIRE(c.storage.path == l.storage.path);
  REQUIRE(c.ingest.socket == l.ingest.socket);
  REQUIRE(c.hub.topic_prefix == l.hub.topic_prefix);
  REQUIRE(c.remote_config.trusted_keys == l.remote_config.trusted_keys);
  REQUIRE(c.remote_config.probation_s == l.remote_config.probation_s);
  edgesync::agent::ConfigChange change = edgesync::agent::diff_configs(l, c);
  REQUIRE(change.restart_keys.empty());
  REQUIRE(change.empty() ==
          (edgesync::agent::config_sha256(l) == edgesync::agent::config_sha256(c)));
  REQUIRE(edgesync::agent::redacted(c)["hub"]["password"] ==
          (c.hub.password.empty() ? "" : "<redacted>"));

  // One origin per leaf of the merged JSON, each "local" or this layer's.
  std::map<std::string, int> merged_leaves;
  leaves(merged.json, "", &merged_leaves);
  REQUIRE(merged_leaves.size() == merged.origin.size());
  const std::string from =
      std::string(edgesync::agent::scope_name(scope)) + " v" + std::to_string(version);
  for (const auto& [leaf, origin] : merged.origin) {
    REQUIRE(merged_leaves.count(leaf));
    REQUIRE(origin == "local" || origin == from);
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fixture();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(bytes), size);
  auto e = edgesync::agent::parse_envelope(text);
  if (!e.is_ok()) {
    REQUIRE(e.status().code() == Status::Code::kInvalidArgument);
    REQUIRE(e.status().message().rfind("envelope: ", 0) == 0);
    // The payload alone, as if it had been signed: the layer code sees only verified
    // payloads, but those come from people, and people make mistakes.
    check_payload(std::string(text), 1, text);
    return 0;
  }
  // Same input, same answer.
  auto twice = edgesync::agent::parse_envelope(text);
  REQUIRE(twice.is_ok() && twice->canonical == e->canonical);
  check_envelope(*e, text);
  check_payload(e->payload, e->version, text);
  return 0;
}
