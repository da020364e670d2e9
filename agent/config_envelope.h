// The signed envelope the central team publishes a configuration in (docs/FLEET.md):
//
//   {"version": 7, "issued_at": "2026-11-30T09:00:00Z", "expires_at": "2026-12-07T09:00:00Z",
//    "target": "store-042", "payload": "<base64 of the config JSON bytes>",
//    "key_id": "ops-2026",
//    "sig": "<base64 of the DER ECDSA P-256 SHA-256 signature over the canonical bytes>"}
//
// "target" names the one config topic the layer is for ("fleet", "<store_id>" or
// "<store_id>/<device_id>", relative to the topic prefix). It is signed, so a layer made for one
// device or store cannot be replayed on another's topic or on the fleet's.
//
// The canonical bytes are the envelope without "sig", serialized with its members sorted by
// name, no whitespace, integers in decimal and strings with JSON's minimal escaping (RFC 8785
// for these member types). Parsing and re-serializing a message gives the same bytes, whatever
// spacing or member order the publisher used.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "platform/status.h"

namespace edgesync::agent {

struct ConfigEnvelope {
  int64_t version = 0;
  int64_t issued_at_ms = 0;
  std::optional<int64_t> expires_at_ms;
  std::string issued_at;   // as sent
  std::string expires_at;  // as sent; empty when absent
  std::string target;      // "fleet", "<store_id>" or "<store_id>/<device_id>"
  std::string payload;     // the config JSON bytes (decoded from base64)
  std::string key_id;
  std::string signature;  // DER (decoded from base64)
  std::string canonical;  // the bytes the signature covers
};

// Structure only: every member present with its type, version >= 1, dates in RFC 3339, base64
// valid, key_id and target well formed, no unknown members. InvalidArgument naming the first
// problem (with any byte of the message that is not printable ASCII escaped).
Result<ConfigEnvelope> parse_envelope(std::string_view text);

// Key id -> PEM public key (the contents, not the file name).
using TrustedKeys = std::map<std::string, std::string>;

// Reads remote_config.trusted_keys (key id -> PEM file). InvalidArgument naming a file that
// cannot be read.
Result<TrustedKeys> load_trusted_keys(const std::map<std::string, std::string>& files);

// The signature against the named trusted key, then the expiry against `now_ms`.
// InvalidArgument: "unknown key id ...", "bad signature ...", "expired at ...".
Status verify_envelope(const ConfigEnvelope& envelope, const TrustedKeys& keys, int64_t now_ms);

// Signs `payload` (config JSON bytes) into an envelope's text (one line, canonical member
// order, "sig" last). `expires_at_ms` 0: no expiry.
Result<std::string> sign_envelope(const std::string& private_key_pem, const std::string& key_id,
                                  const std::string& target, int64_t version, int64_t issued_at_ms,
                                  int64_t expires_at_ms, const std::string& payload);

// Whether `target` is "fleet", "<name>" or "<name>/<name>" (names as device and store ids).
bool is_valid_target(std::string_view target);

// `text` with control characters and bytes outside printable ASCII as \xNN: what a message from
// outside may be logged as without forging lines.
// With `max_bytes`: only the first that many bytes of `text`, and "..." when it was longer.
std::string printable(std::string_view text, size_t max_bytes = std::string_view::npos);

}  // namespace edgesync::agent
