// The HTTP ingest contract's body rules, apart from any server (docs/PROTOCOL.md):
// POST /v1/events carries one event (a JSON object) or a JSON array of them. Each event becomes
// one request line for the ingest core, exactly as on the socket; the answer is the socket's
// reply object (one event) or an array of them in order, with a status code for the whole.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/event_contract.h"

namespace edgesync::agent {

// At most this many events in one request: a megabyte of tiny elements would otherwise cost
// a reply each, fifty times the body's size.
constexpr size_t kMaxEventsPerRequest = 1000;

struct BodyItem {
  std::string line;                  // the event's text, for the ingest core
  std::optional<IngestReply> reply;  // refused before the core sees it (too large)
};

struct BodyPlan {
  bool array = false;  // the answer is an array of replies (else one reply object)
  std::vector<BodyItem> items;
  // Set when the request as a whole is refused (not JSON, too many events, a bad
  // Idempotency-Key): the one reply, and nothing is submitted.
  std::optional<IngestReply> refused;
};

// `idempotency_key`: the Idempotency-Key header, if sent: the id of the one event in the body.
// `max_line_bytes`: ingest.max_line_bytes, the bound on one event as on the socket.
BodyPlan plan_body(std::string_view body, const std::optional<std::string>& idempotency_key,
                   size_t max_line_bytes);

// The status code for the answer: 200 when every event is in the outbox (stored or already
// there); when none is and all were refused for one reason, that reason's code (400 bad_json,
// 413 too_large, 422 invalid_event and unknown_type, 507 outbox_full, 503 storage_error);
// otherwise 207, each reply saying what happened to its event.
int http_status(const std::vector<IngestReply>& replies);
// The code for one reason.
int http_status_for(IngestError error);
// Seconds a client should wait before it tries again, for the codes where waiting helps
// (503, 507); 0 for the rest.
int retry_after_seconds(int status);

// Whether `text` is one JSON value, checked without building it and with no NUL byte in it:
// the check an array body gets. When not, `*error` (if given) is the parser's message in
// printable ASCII.
bool is_json_text(std::string_view text, std::string* error = nullptr);

// The top-level elements of a JSON array already known to be valid (is_json_text), each one's
// bytes as sent, without the white space around it: split at the commas outside strings and
// nested values. Used for an array body and, by `edgesync send --http`, for the array answered.
std::vector<std::string_view> json_array_elements(std::string_view array);

// The answer's body: the one reply object, or the array of them (no trailing newline).
std::string answer_body(const std::vector<IngestReply>& replies, bool array);

}  // namespace edgesync::agent
