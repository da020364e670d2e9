#include "agent/config_envelope.h"

#include <cstdio>
#include <nlohmann/json.hpp>

#include "agent/config.h"
#include "platform/clock.h"
#include "platform/crypto.h"
#include "platform/files.h"

namespace edgesync::agent {
namespace {

using nlohmann::json;

constexpr size_t kMaxEnvelopeBytes = 1 << 20;

// The members sorted by name (nlohmann's object is an ordered map), no whitespace, minimal
// string escaping, UTF-8 left as is: RFC 8785 for strings and integers.
std::string canonical_bytes(const json& without_sig) { return without_sig.dump(); }

Status bad(const std::string& what) {
  return Status::invalid_argument("envelope: " + printable(what));
}

}  // namespace

Result<ConfigEnvelope> parse_envelope(std::string_view text) {
  if (text.size() > kMaxEnvelopeBytes) {
    return bad("larger than " + std::to_string(kMaxEnvelopeBytes) + " bytes");
  }
  json j;
  try {
    j = json::parse(text.begin(), text.end());
  } catch (const json::exception& e) {
    return bad(std::string("not valid JSON: ") + e.what());
  }
  if (!j.is_object()) return bad("must be a JSON object");
  for (const auto& [key, value] : j.items()) {
    if (key != "version" && key != "issued_at" && key != "expires_at" && key != "target" &&
        key != "payload" && key != "key_id" && key != "sig") {
      return bad("unknown member \"" + key + "\"");
    }
  }
  auto text_member = [&](const char* key, bool required, std::string* out) -> Status {
    auto it = j.find(key);
    if (it == j.end()) return required ? bad(std::string(key) + ": required") : Status::ok();
    if (!it->is_string() || it->get_ref<const std::string&>().empty()) {
      return bad(std::string(key) + ": must be a non-empty string");
    }
    *out = it->get<std::string>();
    return Status::ok();
  };
  ConfigEnvelope e;
  auto v = j.find("version");
  if (v == j.end()) return bad("version: required");
  if (!v->is_number_integer() || (v->is_number_unsigned() && v->get<uint64_t>() > INT64_MAX) ||
      v->get<int64_t>() < 1) {
    return bad("version: must be an integer of at least 1");
  }
  e.version = v->get<int64_t>();
  std::string payload_b64, sig_b64;
  for (Status s :
       {text_member("issued_at", true, &e.issued_at),
        text_member("expires_at", false, &e.expires_at), text_member("payload", true, &payload_b64),
        text_member("key_id", true, &e.key_id), text_member("target", true, &e.target),
        text_member("sig", true, &sig_b64)}) {
    if (!s) return s;
  }
  if (!is_valid_name(e.key_id)) return bad("key_id: 1-64 of A-Z a-z 0-9 . _ -");
  if (!is_valid_target(e.target)) {
    return bad("target: \"fleet\", \"<store_id>\" or \"<store_id>/<device_id>\"");
  }
  auto issued = platform::parse_rfc3339_ms(e.issued_at);
  if (!issued) return bad("issued_at: not an RFC 3339 date-time: " + e.issued_at);
  e.issued_at_ms = *issued;
  if (!e.expires_at.empty()) {
    auto expires = platform::parse_rfc3339_ms(e.expires_at);
    if (!expires) return bad("expires_at: not an RFC 3339 date-time: " + e.expires_at);
    e.expires_at_ms = *expires;
  }
  auto payload = platform::crypto::base64_decode(payload_b64);
  if (!payload) return bad("payload: not valid base64");
  e.payload = std::move(*payload);
  auto sig = platform::crypto::base64_decode(sig_b64);
  if (!sig) return bad("sig: not valid base64");
  e.signature = std::move(*sig);
  j.erase("sig");
  e.canonical = canonical_bytes(j);
  return e;
}

Result<TrustedKeys> load_trusted_keys(const std::map<std::string, std::string>& files) {
  TrustedKeys keys;
  for (const auto& [id, file] : files) {
    auto pem = platform::read_file(file);
    if (!pem) {
      return Status::invalid_argument("remote_config.trusted_keys." + id + ": cannot read " + file);
    }
    keys[id] = std::move(*pem);
  }
  return keys;
}

Status verify_envelope(const ConfigEnvelope& e, const TrustedKeys& keys, int64_t now_ms) {
  auto key = keys.find(e.key_id);
  if (key == keys.end()) {
    return Status::invalid_argument("unknown key id \"" + e.key_id +
                                    "\" (not in remote_config.trusted_keys)");
  }
  Status s = platform::crypto::verify_p256(key->second, e.canonical, e.signature);
  if (!s) {
    return Status::invalid_argument("bad signature for key id \"" + e.key_id +
                                    "\": " + s.message());
  }
  if (e.expires_at_ms && *e.expires_at_ms <= now_ms) {
    return Status::invalid_argument("expired at " + e.expires_at + " (the box's clock reads " +
                                    platform::format_rfc3339_ms(now_ms) + ")");
  }
  return Status::ok();
}

bool is_valid_target(std::string_view target) {
  const size_t slash = target.find('/');
  if (slash == std::string_view::npos) return is_valid_name(target);
  return is_valid_name(target.substr(0, slash)) && is_valid_name(target.substr(slash + 1));
}

std::string printable(std::string_view text, size_t max_bytes) {
  std::string out;
  const std::string_view shown = text.substr(0, max_bytes);
  out.reserve(shown.size());
  for (unsigned char c : shown) {
    if (c >= 0x20 && c < 0x7f) {
      out.push_back(static_cast<char>(c));
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  if (shown.size() < text.size()) out += "...";
  return out;
}

Result<std::string> sign_envelope(const std::string& private_key_pem, const std::string& key_id,
                                  const std::string& target, int64_t version, int64_t issued_at_ms,
                                  int64_t expires_at_ms, const std::string& payload) {
  // Whole seconds: what a person reads and writes in the other tools.
  auto rfc3339_s = [](int64_t ms) {
    std::string t = platform::format_rfc3339_ms(ms - ms % 1000);
    return t.substr(0, 19) + "Z";
  };
  json j = {{"version", version},
            {"issued_at", rfc3339_s(issued_at_ms)},
            {"target", target},
            {"payload", platform::crypto::base64_encode(payload)},
            {"key_id", key_id}};
  if (expires_at_ms > 0) j["expires_at"] = rfc3339_s(expires_at_ms);
  auto sig = platform::crypto::sign_p256(private_key_pem, canonical_bytes(j));
  if (!sig) return sig.status();
  // "sig" last, after the members it covers, for a reader's sake; order does not matter to
  // the verifier.
  std::string out = j.dump();
  out.pop_back();
  out += ",\"sig\":\"" + platform::crypto::base64_encode(*sig) + "\"}";
  return out;
}

}  // namespace edgesync::agent
