#include "events/wire.h"

#include <string>
#include <vector>

#include "events/json_nesting.h"
#include "events/names.h"
#include "platform/clock.h"

namespace edgesync::events {

namespace {

// Splits on '/', keeping empty levels (MQTT topics may have them; ours never do).
std::vector<std::string_view> levels(std::string_view topic) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    size_t slash = topic.find('/', start);
    if (slash == std::string_view::npos) {
      out.push_back(topic.substr(start));
      return out;
    }
    out.push_back(topic.substr(start, slash - start));
    start = slash + 1;
  }
}

std::string filter(std::string_view prefix, std::string_view store, std::string_view tail) {
  std::string out(prefix);
  out.append("/").append(store).append("/+/").append(tail);
  return out;
}

// The fields both messages share. Fills `error` with the first problem.
template <typename Message>
bool read_identity(const nlohmann::json& j, Message* m, std::string* error) {
  auto text = [&](const char* key, std::string* out, bool required) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) {
      if (required) *error = std::string("\"") + key + "\" is missing";
      return !required;
    }
    // Identities become PostgreSQL keys: bounded, and without NUL (libpq would cut the text
    // there and two events could share a key).
    if (!it->is_string() || it->get_ref<const std::string&>().empty() ||
        it->get_ref<const std::string&>().size() > 256 ||
        it->get_ref<const std::string&>().find('\0') != std::string::npos) {
      *error = std::string("\"") + key + "\" must be a string of 1-256 characters without NUL";
      return false;
    }
    *out = it->get<std::string>();
    return true;
  };
  if (!text("id", &m->id, true) || !text("incarnation", &m->incarnation, true) ||
      !text("type", &m->type, true) || !text("device_id", &m->device_id, true) ||
      !text("store_id", &m->store_id, true)) {
    return false;
  }
  auto seq = j.find("seq");
  if (seq == j.end() || !seq->is_number_integer() || seq->get<int64_t>() < 1) {
    *error = "\"seq\" must be an integer of at least 1";
    return false;
  }
  m->seq = seq->get<int64_t>();
  auto v = j.find("v");
  if (v != j.end() && !v->is_null()) {
    if (!v->is_number_integer() || v->get<int64_t>() < 1 || v->get<int64_t>() > 9999) {
      *error = "\"v\" must be null or an integer 1-9999";
      return false;
    }
    m->v = v->get<int>();
  }
  if (!is_valid_type(m->type)) {
    *error = "\"type\" is not an event type name";
    return false;
  }
  return true;
}

Result<nlohmann::json> parse_object(std::string_view payload) {
  // Measured first: a box never sends deeper (its ingest refuses such events), and a forged
  // message nested deeper would overflow the hub's stack when "data" is copied or dumped.
  if (nesting_depth(payload) > kMaxEventNesting) {
    return Status::invalid_argument("the payload nests deeper than " +
                                    std::to_string(kMaxEventNesting) + " levels");
  }
  nlohmann::json j = nlohmann::json::parse(payload, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Status::invalid_argument("the payload is not JSON");
  if (!j.is_object()) return Status::invalid_argument("the payload is not a JSON object");
  return j;
}

}  // namespace

TopicParts parse_topic(std::string_view prefix, std::string_view topic) {
  TopicParts out;
  if (topic.size() <= prefix.size() + 1 || topic.substr(0, prefix.size()) != prefix ||
      topic[prefix.size()] != '/') {
    return out;
  }
  std::vector<std::string_view> l = levels(topic.substr(prefix.size() + 1));
  if (l.size() < 3 || l[0].empty() || l[1].empty()) return out;
  TopicKind kind = TopicKind::kOther;
  if (l.size() == 4 && l[2] == "events" && !l[3].empty()) {
    kind = TopicKind::kEvent;
    out.type = std::string(l[3]);
  } else if (l.size() == 3 && l[2] == "deadletter") {
    kind = TopicKind::kDeadLetter;
  } else if (l.size() == 3 && l[2] == "status") {
    kind = TopicKind::kStatus;
  } else if (l.size() == 3 && l[2] == "health") {
    kind = TopicKind::kHealth;
  } else if (l.size() == 4 && l[2] == "resend" && l[3] == "reply") {
    kind = TopicKind::kResendReply;
  } else {
    return out;
  }
  out.kind = kind;
  out.store_id = std::string(l[0]);
  out.device_id = std::string(l[1]);
  return out;
}

std::string events_filter(std::string_view prefix, std::string_view store) {
  return filter(prefix, store, "events/#");
}
std::string dead_letter_filter(std::string_view prefix, std::string_view store) {
  return filter(prefix, store, "deadletter");
}
std::string status_filter(std::string_view prefix, std::string_view store) {
  return filter(prefix, store, "status");
}
std::string health_filter(std::string_view prefix, std::string_view store) {
  return filter(prefix, store, "health");
}

Result<WireEvent> parse_event_message(std::string_view payload) {
  auto parsed = parse_object(payload);
  if (!parsed) return parsed.status();
  const nlohmann::json& j = *parsed;
  WireEvent e;
  std::string error;
  if (!read_identity(j, &e, &error)) return Status::invalid_argument("event message: " + error);
  auto data = j.find("data");
  if (data == j.end() || !data->is_object()) {
    return Status::invalid_argument("event message: \"data\" must be an object");
  }
  e.data = *data;
  auto received = j.find("received_at");
  if (received == j.end() || !received->is_string() ||
      !platform::is_rfc3339(received->get_ref<const std::string&>())) {
    return Status::invalid_argument("event message: \"received_at\" must be an RFC 3339 time");
  }
  e.received_at = received->get<std::string>();
  auto occurred = j.find("occurred_at");
  if (occurred != j.end() && !occurred->is_null()) {
    if (!occurred->is_string() || !platform::is_rfc3339(occurred->get_ref<const std::string&>())) {
      return Status::invalid_argument("event message: \"occurred_at\" must be null or RFC 3339");
    }
    e.occurred_at = occurred->get<std::string>();
  }
  auto trusted = j.find("received_at_trusted");
  if (trusted != j.end() && trusted->is_boolean()) e.received_at_trusted = trusted->get<bool>();
  auto trace = j.find("trace_id");
  if (trace != j.end() && trace->is_string()) e.trace_id = trace->get<std::string>();
  return e;
}

Result<WireDeadLetter> parse_dead_letter_notice(std::string_view payload) {
  auto parsed = parse_object(payload);
  if (!parsed) return parsed.status();
  const nlohmann::json& j = *parsed;
  WireDeadLetter d;
  std::string error;
  if (!read_identity(j, &d, &error)) {
    return Status::invalid_argument("dead-letter notice: " + error);
  }
  auto text_or_empty = [&](const char* key) {
    auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  d.reason = text_or_empty("reason");
  d.failed_at = text_or_empty("failed_at");
  return d;
}

}  // namespace edgesync::events
