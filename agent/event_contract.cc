#include "agent/event_contract.h"

#include <algorithm>
#include <array>
#include <nlohmann/json.hpp>

#include "platform/clock.h"

namespace edgesync::agent {

using ordered_json = nlohmann::ordered_json;

const char* error_code_name(IngestError e) {
  switch (e) {
    case IngestError::kBadJson: return "bad_json";
    case IngestError::kInvalidEvent: return "invalid_event";
    case IngestError::kTooLarge: return "too_large";
    case IngestError::kOutboxFull: return "outbox_full";
    case IngestError::kStorageError: return "storage_error";
    case IngestError::kUnknownType: return "unknown_type";
  }
  return "storage_error";
}

namespace {
// All 19,968 bits of the generator's state from the kernel's entropy: one 32-bit seed would allow
// only 2^32 id sequences, and two agents (or one agent after a restart) drawing the same one
// would generate the same ids, a later event then answered as a duplicate of an earlier one.
std::mt19937_64 seeded_from_entropy() {
  std::random_device source;
  std::array<std::random_device::result_type, std::mt19937_64::state_size * 2> words;
  for (auto& w : words) w = source();
  std::seed_seq seq(words.begin(), words.end());
  return std::mt19937_64(seq);
}
}  // namespace

IdGenerator::IdGenerator() : rng_(seeded_from_entropy()) {}

std::string IdGenerator::next() {
  uint64_t hi = rng_(), lo = rng_();
  hi = (hi & ~uint64_t{0xF000}) | 0x4000;                     // version 4
  lo = (lo & ~(uint64_t{0xC} << 60)) | (uint64_t{0x8} << 60);  // RFC 4122 variant
  static const char kHex[] = "0123456789abcdef";
  std::string s(36, '-');
  int pos = 0;
  auto put = [&](uint64_t v, int nibbles) {
    for (int i = nibbles - 1; i >= 0; --i) {
      if (pos == 8 || pos == 13 || pos == 18 || pos == 23) ++pos;
      s[pos++] = kHex[(v >> (i * 4)) & 0xF];
    }
  };
  put(hi, 16);
  put(lo, 16);
  return s;
}

namespace {

// "/data/lines/0/qty: type (expected \"integer\"), and 2 more": the first rule broken, for the
// message; the violations list has them all.
std::string describe_violations(const std::vector<Violation>& violations) {
  if (violations.empty()) return "does not conform";
  const Violation& v = violations.front();
  std::string s = v.path + ": " + v.rule;
  if (!v.expected.is_null()) s += " (expected " + v.expected.dump() + ")";
  if (violations.size() > 1) s += ", and " + std::to_string(violations.size() - 1) + " more";
  return s;
}

constexpr int64_t kMaxContractVersion = 9999;
constexpr size_t kDetailedViolationsBytes = 64 * 1024;

}  // namespace

bool parse_event(std::string_view line, int64_t received_ms, IdGenerator& ids,
                 const ContractCheck& contracts, storage::AppendRequest* out,
                 ParseFailure* failure, bool* checked) {
  auto fail = [failure](IngestError e, std::string msg) {
    failure->error = e;
    failure->message = std::move(msg);
    failure->violations.clear();
    return false;
  };
  bool validated = false;
  ordered_json doc = ordered_json::parse(line.begin(), line.end(), nullptr, false);
  if (doc.is_discarded()) {
    return fail(IngestError::kBadJson,
                "the line is not valid JSON; send one JSON object per line, UTF-8, "
                "terminated by \\n");
  }
  if (!doc.is_object()) return fail(IngestError::kInvalidEvent, "the event must be a JSON object");
  if (nesting_depth(line) > kMaxNesting) {
    return fail(IngestError::kInvalidEvent,
                "objects and arrays in \"data\" may nest at most " +
                    std::to_string(kMaxNesting - 1) + " levels deep");
  }

  const ordered_json* type = nullptr;
  const ordered_json* id = nullptr;
  const ordered_json* occurred_at = nullptr;
  const ordered_json* data = nullptr;
  const ordered_json* trace_id = nullptr;
  const ordered_json* version = nullptr;
  for (const auto& [key, value] : doc.items()) {
    if (key == "type") {
      type = &value;
    } else if (key == "id") {
      id = &value;
    } else if (key == "occurred_at") {
      occurred_at = &value;
    } else if (key == "data") {
      data = &value;
    } else if (key == "trace_id") {
      trace_id = &value;
    } else if (key == "v") {
      version = &value;
    } else {
      return fail(IngestError::kInvalidEvent,
                  "unknown key \"" + key +
                      "\"; allowed keys are id, type, v, occurred_at, trace_id, data");
    }
  }
  if (!type) return fail(IngestError::kInvalidEvent, "\"type\" is required");
  if (!type->is_string() || !is_valid_type(type->get_ref<const std::string&>())) {
    return fail(IngestError::kInvalidEvent,
                "\"type\" must be a lowercase dotted name such as \"inventory.adjusted\" "
                "(segments of a-z, 0-9, _ starting with a letter; at most 128 chars)");
  }
  if (id && (!id->is_string() || !is_valid_id(id->get_ref<const std::string&>()))) {
    return fail(IngestError::kInvalidEvent,
                "\"id\" must be a string of 1-128 printable ASCII characters");
  }
  if (occurred_at && !occurred_at->is_null() &&
      (!occurred_at->is_string() ||
       !platform::is_rfc3339(occurred_at->get_ref<const std::string&>()))) {
    return fail(IngestError::kInvalidEvent,
                "\"occurred_at\" must be an RFC 3339 timestamp such as "
                "\"2026-11-23T08:15:02.123Z\"");
  }
  if (trace_id && !trace_id->is_null() &&
      (!trace_id->is_string() || !is_valid_id(trace_id->get_ref<const std::string&>()))) {
    return fail(IngestError::kInvalidEvent,
                "\"trace_id\" must be a string of 1-128 printable ASCII characters (a W3C "
                "traceparent or the till's own receipt reference both fit)");
  }
  int v = 0;
  if (version && !version->is_null()) {
    if (!version->is_number_integer() || version->get<int64_t>() < 1 ||
        version->get<int64_t>() > kMaxContractVersion) {
      return fail(IngestError::kInvalidEvent,
                  "\"v\" must be a contract version, an integer from 1 to 9999 (leave it out "
                  "for the newest this agent knows)");
    }
    v = static_cast<int>(version->get<int64_t>());
  }
  if (!data) return fail(IngestError::kInvalidEvent, "\"data\" is required (a JSON object)");
  if (!data->is_object()) return fail(IngestError::kInvalidEvent, "\"data\" must be a JSON object");
  const std::string& type_name = type->get_ref<const std::string&>();
  if (contracts.registry) {
    const ContractRegistry& reg = *contracts.registry;
    const int newest = reg.newest(type_name);
    if (newest == 0) {
      if (!contracts.accept_unknown_types) {
        return fail(IngestError::kUnknownType,
                    "no contract for type \"" + type_name +
                        "\" (edgesync contracts list shows the known types; an operator can "
                        "set ingest.unknown_types to \"accept\" to pass unknown types unchecked)");
      }
    } else {
      if (v == 0) v = newest;
      if (!reg.has(type_name, v)) {
        std::string known;
        for (int k : reg.versions(type_name)) known += (known.empty() ? "v" : ", v") + std::to_string(k);
        return fail(IngestError::kInvalidEvent, "\"" + type_name + "\" has no contract v" +
                                                    std::to_string(v) + "; this agent knows " +
                                                    known);
      }
      std::vector<Violation> violations;
      // Every violation for ordinary events; past 64 KiB only the first failure (a hostile
      // line of 100,000 wrong items would cost the ingest thread tens of ms and megabytes).
      if (!reg.validate(type_name, v, *data, &violations, line.size() <= kDetailedViolationsBytes)) {
        fail(IngestError::kInvalidEvent,
             "data does not match the contract " + type_name + " v" + std::to_string(v) + ": " +
                 describe_violations(violations));
        failure->violations = std::move(violations);
        return false;
      }
      validated = true;
    }
  }

  out->id = id ? id->get<std::string>() : ids.next();
  out->type = type->get<std::string>();
  if (occurred_at && occurred_at->is_string()) {
    out->occurred_at = occurred_at->get<std::string>();
  } else {
    out->occurred_at.clear();
  }
  if (trace_id && trace_id->is_string()) {
    out->trace_id = trace_id->get<std::string>();
  } else {
    out->trace_id.clear();
  }
  // Only a checked event carries a version to the hub: a type passed on unchecked has none,
  // whatever the producer wrote, so a consumer never takes it for a checked one.
  out->contract_version = validated ? v : 0;
  if (checked) *checked = validated;
  out->received_ms = received_ms;
  out->data = data->dump();
  return true;
}

void append_json_string(std::string* out, std::string_view s) {
  static const char kHex[] = "0123456789abcdef";
  out->push_back('"');
  for (unsigned char c : s) {
    switch (c) {
      case '"': out->append("\\\""); break;
      case '\\': out->append("\\\\"); break;
      case '\n': out->append("\\n"); break;
      case '\r': out->append("\\r"); break;
      case '\t': out->append("\\t"); break;
      default:
        if (c < 0x20) {
          out->append("\\u00");
          out->push_back(kHex[c >> 4]);
          out->push_back(kHex[c & 0xF]);
        } else {
          out->push_back(static_cast<char>(c));
        }
    }
  }
  out->push_back('"');
}

void append_ok_reply(std::string* out, std::string_view id, int64_t seq, bool duplicate,
                     int version) {
  out->append("{\"ok\":true,\"id\":");
  append_json_string(out, id);
  out->append(",\"seq\":");
  out->append(std::to_string(seq));
  out->append(duplicate ? ",\"duplicate\":true" : ",\"duplicate\":false");
  out->append(",\"v\":").append(version > 0 ? std::to_string(version) : "null");
  out->append("}\n");
}

IngestReply error_reply(IngestError error, std::string_view message,
                        const std::vector<Violation>& violations) {
  IngestReply r;
  r.error = error;
  append_error_reply(&r.text, error, message, violations);
  return r;
}

void append_error_reply(std::string* out, IngestError error, std::string_view message,
                        const std::vector<Violation>& violations) {
  out->append("{\"ok\":false,\"error\":\"");
  out->append(error_code_name(error));
  out->append("\",\"message\":");
  append_json_string(out, message);
  if (!violations.empty()) {
    out->append(",\"violations\":[");
    for (size_t i = 0; i < violations.size(); ++i) {
      if (i > 0) out->push_back(',');
      out->append(violations[i].to_json().dump());
    }
    out->push_back(']');
  }
  out->append("}\n");
}

}  // namespace edgesync::agent
