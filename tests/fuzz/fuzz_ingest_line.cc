// Fuzzes the ingest line parser the way the ingest server feeds it: the input is a producer's
// byte stream, cut at '\n' (a last unterminated piece counts as a line too), a trailing '\r'
// dropped and blank lines skipped, each line then given to parse_event. Besides "no crash, no
// leak, no UB" it checks what the contract in agent/event_contract.h and docs/PROTOCOL.md
// promises:
//   - accepted: the id is valid (the producer's own, or a generated UUIDv4), trace_id and v are
//     as given (v defaulting to the type's newest contract), the type is a
//     valid lowercase dotted name, occurred_at is empty or RFC 3339 as given, data is the
//     request's "data" object re-serialized compactly with key order kept and nested at most
//     64 deep (consumers walk it recursively), the request had no other key, and the ok reply
//     built from it is one JSON line naming that id;
//   - rejected: bad_json exactly when the line is not JSON, otherwise invalid_event, a message
//     that says why, and an error reply that is one JSON line carrying that message and, for a
//     contract's findings, 1-32 violations each with a JSON pointer under /data;
//   - data is checked against the shipped contracts (config/contracts/events, read from the
//     working directory: .ci/fuzz.sh runs from the source tree); other types pass unchecked;
//   - the same line gives the same answer twice.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "agent/event_contract.h"
#include "platform/clock.h"

namespace {

using edgesync::agent::IngestError;
using nlohmann::json;
using nlohmann::ordered_json;

constexpr int64_t kReceivedMs = 1763885702123;

[[noreturn]] void fail(const char* what, std::string_view line) {
  std::fprintf(stderr, "invariant broken: %s\nline (%zu bytes): %.*s\n", what, line.size(),
               static_cast<int>(line.size() < 2000 ? line.size() : 2000), line.data());
  std::abort();
}

#define REQUIRE(cond)               \
  do {                              \
    if (!(cond)) fail(#cond, line); \
  } while (0)

// Objects and arrays nested in `j`, its outermost one counting as 1. Walks the parsed tree, not
// the text the agent scans, so the check does not share the agent's reasoning (inputs are at most
// a few KiB here: recursion is fine).
int nesting_depth(const ordered_json& j) {
  if (!j.is_structured()) return 0;
  int deepest = 0;
  for (const auto& child : j) deepest = std::max(deepest, nesting_depth(child));
  return deepest + 1;
}

bool is_uuid_v4(const std::string& s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-') return false;
    } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return false;
    }
  }
  return s[14] == '4' && (s[19] == '8' || s[19] == '9' || s[19] == 'a' || s[19] == 'b');
}

// The reply must be exactly one line of JSON: a producer reads replies with getline.
json parse_reply(const std::string& reply, std::string_view line) {
  REQUIRE(!reply.empty() && reply.back() == '\n');
  REQUIRE(reply.find('\n') == reply.size() - 1);
  json j = json::parse(reply, nullptr, false);
  REQUIRE(!j.is_discarded() && j.is_object());
  return j;
}

const edgesync::agent::ContractCheck& contracts() {
  static const auto registry = [] {
    auto r = edgesync::agent::ContractRegistry::load({"config/contracts/events"});
    if (!r) {
      std::fprintf(stderr, "fuzz_ingest_line: %s\n", r.status().to_string().c_str());
      std::abort();
    }
    return *r;
  }();
  static const edgesync::agent::ContractCheck check{registry.get(), true};
  return check;
}

void check_accepted(std::string_view line, const edgesync::storage::AppendRequest& req) {
  ordered_json doc = ordered_json::parse(line.begin(), line.end(), nullptr, false);
  REQUIRE(!doc.is_discarded() && doc.is_object());
  for (const auto& [key, value] : doc.items()) {
    REQUIRE(key == "id" || key == "type" || key == "v" || key == "occurred_at" ||
            key == "trace_id" || key == "data");
  }

  // trace_id: as given, or none.
  if (doc.contains("trace_id") && !doc["trace_id"].is_null()) {
    REQUIRE(doc["trace_id"] == req.trace_id && edgesync::agent::is_valid_id(req.trace_id));
  } else {
    REQUIRE(req.trace_id.empty());
  }
  // v: the version asked for, or the type's newest; none for a type passed on unchecked.
  const int newest = contracts().registry->newest(req.type);
  if (newest == 0) {
    REQUIRE(req.contract_version == 0);
  } else if (doc.contains("v") && !doc["v"].is_null()) {
    REQUIRE(doc["v"].is_number_integer() && doc["v"] == req.contract_version);
    REQUIRE(contracts().registry->has(req.type, req.contract_version));
  } else {
    REQUIRE(req.contract_version == newest);
  }

  REQUIRE(edgesync::agent::is_valid_id(req.id));
  if (doc.contains("id")) {
    REQUIRE(doc["id"].is_string() && doc["id"].get<std::string>() == req.id);
  } else {
    REQUIRE(is_uuid_v4(req.id));
  }

  REQUIRE(edgesync::agent::is_valid_type(req.type));
  REQUIRE(doc.contains("type") && doc["type"] == req.type);

  if (doc.contains("occurred_at") && !doc["occurred_at"].is_null()) {
    REQUIRE(doc["occurred_at"] == req.occurred_at);
    REQUIRE(edgesync::platform::is_rfc3339(req.occurred_at));
  } else {
    REQUIRE(req.occurred_at.empty());
  }

  REQUIRE(req.received_ms == kReceivedMs);

  // data: the same JSON object, compact (dumping it again changes nothing), order kept.
  REQUIRE(doc.contains("data") && doc["data"].is_object());
  ordered_json data = ordered_json::parse(req.data, nullptr, false);
  REQUIRE(!data.is_discarded() && data.is_object());
  REQUIRE(data == doc["data"]);
  REQUIRE(data.dump() == req.data);
  // What the agent stores is what every consumer must walk, recursively: bounded depth.
  REQUIRE(nesting_depth(data) <= 64);

  std::string reply;
  edgesync::agent::append_ok_reply(&reply, req.id, 42, false, req.contract_version);
  json r = parse_reply(reply, line);
  REQUIRE(r["ok"] == true && r["id"] == req.id && r["seq"] == 42 && r["duplicate"] == false);
}

void check_rejected(std::string_view line, const edgesync::agent::ParseFailure& failure) {
  bool is_json = json::accept(line.begin(), line.end());
  REQUIRE(failure.error == IngestError::kBadJson || failure.error == IngestError::kInvalidEvent);
  REQUIRE((failure.error == IngestError::kBadJson) == !is_json);
  REQUIRE(!failure.message.empty());
  REQUIRE(failure.violations.size() <= edgesync::agent::kMaxViolations);
  for (const auto& v : failure.violations) {
    REQUIRE(v.path.rfind("/data", 0) == 0 && !v.rule.empty());
  }

  std::string reply;
  edgesync::agent::append_error_reply(&reply, failure.error, failure.message, failure.violations);
  json r = parse_reply(reply, line);
  REQUIRE(r["ok"] == false);
  REQUIRE(r["error"] == edgesync::agent::error_code_name(failure.error));
  REQUIRE(r["message"] == failure.message);
}

void check_line(std::string_view line, edgesync::agent::IdGenerator& ids) {
  edgesync::storage::AppendRequest req;
  edgesync::agent::ParseFailure failure;
  bool ok = edgesync::agent::parse_event(line, kReceivedMs, ids, contracts(), &req, &failure);
  if (ok) {
    check_accepted(line, req);
  } else {
    check_rejected(line, failure);
  }

  edgesync::storage::AppendRequest again;
  edgesync::agent::ParseFailure failure_again;
  bool ok_again =
      edgesync::agent::parse_event(line, kReceivedMs, ids, contracts(), &again, &failure_again);
  REQUIRE(ok_again == ok);
  if (ok) {
    // A generated id is new each time; everything else is a function of the line.
    REQUIRE(again.type == req.type && again.occurred_at == req.occurred_at &&
            again.data == req.data && again.received_ms == req.received_ms);
  } else {
    REQUIRE(failure_again.error == failure.error && failure_again.message == failure.message &&
            failure_again.violations.size() == failure.violations.size());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  static edgesync::agent::IdGenerator ids;
  std::string_view input(reinterpret_cast<const char*>(bytes), size);
  // As the ingest server cuts a stream into request lines (agent/ingest_server.cc).
  while (!input.empty()) {
    size_t nl = input.find('\n');
    std::string_view line = input.substr(0, nl);
    input.remove_prefix(nl == std::string_view::npos ? input.size() : nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.find_first_not_of(" \t") == std::string_view::npos) continue;
    check_line(line, ids);
  }
  return 0;
}
