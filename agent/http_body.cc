#include "agent/http_body.h"

#include <nlohmann/json.hpp>

#include <set>

namespace edgesync::agent {

namespace {

using nlohmann::json;

// Checks that the text is JSON without building it (nlohmann's SAX parser is iterative: a
// body of a million '[' cannot exhaust the stack), keeping the parser's message.
class SyntaxCheck : public nlohmann::json_sax<json> {
 public:
  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override { return true; }
  bool key(string_t&) override { return true; }
  bool end_object() override { return true; }
  bool start_array(std::size_t) override { return true; }
  bool end_array() override { return true; }
  bool parse_error(std::size_t, const std::string&,
                   const nlohmann::detail::exception& ex) override {
    // The parser quotes what it last read: bytes of the body, which need not be UTF-8 and
    // would break the reply's JSON. Printable ASCII only.
    message = ex.what();
    for (char& c : message) {
      if (c < 0x20 || c > 0x7e) c = '?';
    }
    return false;
  }
  std::string message;
};

std::string_view trim(std::string_view s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return {};
  const auto e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

// The one event with the Idempotency-Key as its id: added when the event has none, checked
// when it has one. The rest of the event's bytes stay as sent.
std::optional<IngestReply> apply_idempotency_key(const std::string& key, std::string* line) {
  if (!is_valid_id(key)) {
    return error_reply(IngestError::kInvalidEvent,
                   "Idempotency-Key: must be 1-128 printable ASCII characters (it becomes the "
                   "event's id)");
  }
  SyntaxCheck syntax;
  // Not JSON, or nested beyond what an event may be: the core refuses it as it stands.
  if (!json::sax_parse(*line, &syntax) || nesting_depth(*line) > kMaxNesting) {
    return std::nullopt;
  }
  const json event = json::parse(*line, nullptr, false);
  if (!event.is_object()) return std::nullopt;
  if (auto id = event.find("id"); id != event.end()) {
    if (id->is_string() && id->get<std::string>() == key) return std::nullopt;
    return error_reply(IngestError::kInvalidEvent,
                   "Idempotency-Key and the event's id differ: send one of them, or the same "
                   "value in both");
  }
  std::string with_id = "{\"id\":";
  append_json_string(&with_id, key);
  const size_t brace = line->find('{');
  std::string_view rest = trim(std::string_view(*line).substr(brace + 1));
  if (rest != "}") with_id += ',';
  with_id.append(rest);
  *line = std::move(with_id);
  return std::nullopt;
}

}  // namespace

bool is_json_text(std::string_view text, std::string* error) {
  // nlohmann's parser takes a NUL byte for the end of the text: what follows one would pass
  // unread. JSON has no raw NUL (a string escapes it as \u0000).
  if (text.find('\0') != std::string_view::npos) {
    if (error) *error = "it contains a NUL byte";
    return false;
  }
  SyntaxCheck syntax;
  if (!json::sax_parse(text.begin(), text.end(), &syntax)) {
    if (error) *error = std::move(syntax.message);
    return false;
  }
  return true;
}

std::vector<std::string_view> json_array_elements(std::string_view array) {
  std::vector<std::string_view> out;
  size_t depth = 0, start = 0;
  bool in_string = false, escaped = false;
  for (size_t i = 0; i < array.size(); ++i) {
    const char c = array[i];
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    switch (c) {
      case '"': in_string = true; break;
      case '[':
      case '{':
        if (++depth == 1) start = i + 1;
        break;
      case ']':
      case '}':
        if (--depth == 0) {
          std::string_view last = trim(array.substr(start, i - start));
          if (!last.empty()) out.push_back(last);
        }
        break;
      case ',':
        if (depth == 1) {
          out.push_back(trim(array.substr(start, i - start)));
          start = i + 1;
        }
        break;
      default: break;
    }
  }
  return out;
}

BodyPlan plan_body(std::string_view body, const std::optional<std::string>& idempotency_key,
                   size_t max_line_bytes) {
  BodyPlan plan;
  const std::string_view text = trim(body);
  if (text.empty()) {
    plan.refused = error_reply(IngestError::kBadJson,
                           "empty body: send one event (a JSON object) or a JSON array of them");
    return plan;
  }
  // nlohmann's parser would stop at a NUL byte, whichever way the body goes.
  if (text.find('\0') != std::string_view::npos) {
    plan.refused = error_reply(IngestError::kBadJson,
                           "the body is not JSON: it contains a NUL byte");
    return plan;
  }
  if (text.front() != '[') {
    BodyItem item;
    item.line.assign(text);
    if (idempotency_key) {
      plan.refused = apply_idempotency_key(*idempotency_key, &item.line);
      if (plan.refused) return plan;
    }
    if (item.line.size() > max_line_bytes) {
      item.reply = error_reply(IngestError::kTooLarge,
                           "event longer than ingest.max_line_bytes (" +
                               std::to_string(max_line_bytes) + " bytes); it was discarded");
    }
    plan.items.push_back(std::move(item));
    return plan;
  }
  plan.array = true;
  if (idempotency_key) {
    plan.refused = error_reply(IngestError::kInvalidEvent,
                           "Idempotency-Key names one event: send one event per request with "
                           "it, or give each event of an array its own id");
    return plan;
  }
  std::string syntax_error;
  if (!is_json_text(text, &syntax_error)) {
    plan.refused = error_reply(IngestError::kBadJson, "the body is not JSON: " + syntax_error);
    return plan;
  }
  const std::vector<std::string_view> elements = json_array_elements(text);
  if (elements.size() > kMaxEventsPerRequest) {
    plan.refused = error_reply(IngestError::kTooLarge,
                           std::to_string(elements.size()) + " events in one request; at most " +
                               std::to_string(kMaxEventsPerRequest) + " are taken at once");
    return plan;
  }
  plan.items.reserve(elements.size());
  for (std::string_view e : elements) {
    BodyItem& item = plan.items.emplace_back();
    if (e.size() > max_line_bytes) {
      item.reply = error_reply(IngestError::kTooLarge,
                           "event longer than ingest.max_line_bytes (" +
                               std::to_string(max_line_bytes) + " bytes); it was discarded");
    } else {
      item.line.assign(e);
    }
  }
  return plan;
}

int http_status_for(IngestError error) {
  switch (error) {
    case IngestError::kBadJson: return 400;
    case IngestError::kTooLarge: return 413;
    case IngestError::kInvalidEvent:
    case IngestError::kUnknownType: return 422;
    case IngestError::kOutboxFull: return 507;
    case IngestError::kStorageError: return 503;
  }
  return 500;
}

int http_status(const std::vector<IngestReply>& replies) {
  std::set<int> refused;
  bool any_ok = false;
  for (const auto& r : replies) {
    if (r.ok) {
      any_ok = true;
    } else {
      refused.insert(http_status_for(r.error));
    }
  }
  if (refused.empty()) return 200;
  if (!any_ok && refused.size() == 1) return *refused.begin();
  return 207;
}

int retry_after_seconds(int status) {
  switch (status) {
    case 503: return 5;   // the outbox reopens its file: seconds
    case 507: return 60;  // the hub must take events before there is room
    default: return 0;
  }
}

std::string answer_body(const std::vector<IngestReply>& replies, bool array) {
  std::string out;
  if (array) out += '[';
  for (size_t i = 0; i < replies.size(); ++i) {
    std::string_view r = replies[i].text;
    if (!r.empty() && r.back() == '\n') r.remove_suffix(1);
    if (i > 0) out += ',';
    out.append(r);
  }
  if (array) out += ']';
  return out;
}

}  // namespace edgesync::agent
