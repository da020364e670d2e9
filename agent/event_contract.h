// The local contract with POS producers: one NDJSON request line in, one reply line out.
//
// Request:  {"id"?: string 1-128 printable ASCII, "type": lowercase dotted name,
//            "v"?: contract version 1-9999, "occurred_at"?: RFC 3339,
//            "trace_id"?: string 1-128 printable ASCII, "data": object}   -- no other keys
// `data` is checked against the type's contract (agent/contract_registry.h): version `v`, or the
// newest the agent knows.
// Replies:  {"ok":true,"id":"...","seq":42,"duplicate":false,"v":1}   (v null: not checked)
//           {"ok":false,"error":"<code>","message":"...","violations"?:[{path,rule,expected}]}
// docs/PROTOCOL.md is the integrator's copy of these rules; keep both in step.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "events/contract_registry.h"
#include "events/json_nesting.h"
#include "events/names.h"
#include "storage/outbox.h"

namespace edgesync::agent {

// The contracts are shared with the hub (events/); the agent names them as its own.
using events::ContractInfo;
using events::ContractRegistry;
using events::check_contract_schema;
using events::parse_contract_file_name;
using events::kMaxViolations;
using events::Violation;

// The reply's error codes. Appended only: counters index by the value.
enum class IngestError {
  kBadJson,
  kInvalidEvent,
  kTooLarge,
  kOutboxFull,
  kStorageError,
  kUnknownType,
};

// The wire name of an error code ("bad_json", ...).
const char* error_code_name(IngestError e);

// One finished request, on any way in: the reply line (ending in '\n') and whether the event
// is in the outbox (stored now, or before: a duplicate).
struct IngestReply {
  std::string text;
  bool ok = false;
  IngestError error = IngestError::kBadJson;  // when !ok
};

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
  std::vector<Violation> violations;  // kInvalidEvent from the contract: every rule broken
};

// How parse_event checks `data`. Without a registry nothing is checked (the envelope still is).
struct ContractCheck {
  const ContractRegistry* registry = nullptr;
  bool accept_unknown_types = false;  // ingest.unknown_types: "accept"
};

// Validates one request line and fills `out` (id generated when absent; data re-serialized
// compactly with key order kept; contract_version the version checked, or the "v" given for a
// type accepted unchecked). Returns false and fills `failure` when the line is rejected.
// `*checked` says whether a contract checked the data.
bool parse_event(std::string_view line, int64_t received_ms, IdGenerator& ids,
                 const ContractCheck& contracts, storage::AppendRequest* out,
                 ParseFailure* failure, bool* checked = nullptr);

// How deep objects and arrays may nest in a request line, the line's own object included:
// "data" gets 64 levels. Parsing is iterative, but re-serializing "data" (and every consumer
// that walks it) recurses once per level: a 200 KB line of '[' (under the default
// max_line_bytes) overflowed the ingest thread's stack and ended the agent.
constexpr int kMaxNesting = events::kMaxEventNesting;
using events::nesting_depth;

using events::is_valid_id;
using events::is_valid_type;

// Reply lines, each ending in '\n'. `version` 0: "v":null (no contract checked the data).
void append_ok_reply(std::string* out, std::string_view id, int64_t seq, bool duplicate,
                     int version);
void append_error_reply(std::string* out, IngestError error, std::string_view message,
                        const std::vector<Violation>& violations = {});

// A refusal as a finished request: the error reply line and its code.
IngestReply error_reply(IngestError error, std::string_view message,
                        const std::vector<Violation>& violations = {});
// Appends `s` as a JSON string literal (quotes and escapes included).
void append_json_string(std::string* out, std::string_view s);

}  // namespace edgesync::agent
