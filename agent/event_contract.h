// The local contract with POS producers: one NDJSON request line in, one reply line out.
//
// Request:  {"id"?: string 1-128 printable ASCII, "type": lowercase dotted name,
//            "occurred_at"?: RFC 3339, "trace_id"?: string 1-128 printable ASCII,
//            "data": object}   -- no other keys
// Replies:  {"ok":true,"id":"...","seq":42,"duplicate":false}
//           {"ok":false,"error":"<code>","message":"..."}
// docs/PROTOCOL.md is the integrator's copy of these rules; keep both in step.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <string_view>

#include "storage/outbox.h"

namespace edgesync::agent {

enum class IngestError { kBadJson, kInvalidEvent, kTooLarge, kOutboxFull, kStorageError };

// The wire name of an error code ("bad_json", ...).
const char* error_code_name(IngestError e);

// Generates ids for events sent without one: random UUIDv4 text.
class IdGenerator {
 public:
  IdGenerator();
  std::string next();

 private:
  std::mt19937_64 rng_;
};

struct ParseFailure {
  IngestError error;
  std::string message;
};

// Validates one request line and fills `out` (id generated when absent; data re-serialized
// compactly with key order kept). Returns false and fills `failure` when the line is rejected.
bool parse_event(std::string_view line, int64_t received_ms, IdGenerator& ids,
                 storage::AppendRequest* out, ParseFailure* failure);

bool is_valid_type(std::string_view type);
bool is_valid_id(std::string_view id);

// Reply lines, each ending in '\n'.
void append_ok_reply(std::string* out, std::string_view id, int64_t seq, bool duplicate);
void append_error_reply(std::string* out, IngestError error, std::string_view message);

// Appends `s` as a JSON string literal (quotes and escapes included).
void append_json_string(std::string* out, std::string_view s);

}  // namespace edgesync::agent
