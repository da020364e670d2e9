#include "events/resend.h"

#include <nlohmann/json.hpp>

namespace edgesync::events {

namespace {

using nlohmann::json;

std::string device_topic(std::string_view prefix, std::string_view store_id,
                         std::string_view device_id, std::string_view tail) {
  std::string out(prefix);
  out.append("/").append(store_id).append("/").append(device_id).append("/").append(tail);
  return out;
}

json ranges_json(const std::vector<SeqRange>& ranges) {
  json out = json::array();
  for (const SeqRange& r : ranges) out.push_back({r.first, r.last});
  return out;
}

// [[first, last], ...]: ascending, disjoint, first >= 1. `required`: at least one range.
bool read_ranges(const json& j, const char* key, bool required, size_t max_ranges,
                 std::vector<SeqRange>* out, std::string* error) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (required) *error = std::string("\"") + key + "\" is missing";
    return !required;
  }
  const std::string bad = std::string("\"") + key +
                          "\" must be a list of [first, last] seq pairs, ascending and disjoint";
  if (!it->is_array() || (required && it->empty())) {
    *error = bad;
    return false;
  }
  if (it->size() > max_ranges) {
    *error = std::string("\"") + key + "\" has " + std::to_string(it->size()) +
             " ranges, more than " + std::to_string(max_ranges);
    return false;
  }
  int64_t previous_last = 0;
  for (const json& pair : *it) {
    if (!pair.is_array() || pair.size() != 2 || !pair[0].is_number_integer() ||
        !pair[1].is_number_integer()) {
      *error = bad;
      return false;
    }
    const SeqRange r{pair[0].get<int64_t>(), pair[1].get<int64_t>()};
    if (r.first < 1 || r.last < r.first || r.first <= previous_last) {
      *error = bad;
      return false;
    }
    previous_last = r.last;
    out->push_back(r);
  }
  return true;
}

bool read_text(const json& j, const char* key, std::string* out, std::string* error) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_string() || it->get_ref<const std::string&>().empty() ||
      it->get_ref<const std::string&>().size() > 256) {
    *error = std::string("\"") + key + "\" must be a string of 1-256 characters";
    return false;
  }
  *out = it->get<std::string>();
  return true;
}

Result<json> read_message(std::string_view payload, std::string_view format) {
  json j = json::parse(payload, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return Status::invalid_argument("the payload is not a JSON object");
  }
  auto f = j.find("format");
  if (f == j.end() || !f->is_string() || f->get_ref<const std::string&>() != format) {
    return Status::invalid_argument("\"format\" is not \"" + std::string(format) + "\"");
  }
  return j;
}

}  // namespace

std::string resend_request_topic(std::string_view prefix, std::string_view store_id,
                                 std::string_view device_id) {
  return device_topic(prefix, store_id, device_id, "resend");
}

std::string resend_reply_topic(std::string_view prefix, std::string_view store_id,
                               std::string_view device_id) {
  return device_topic(prefix, store_id, device_id, "resend/reply");
}

std::string resend_reply_filter(std::string_view prefix, std::string_view store) {
  return device_topic(prefix, store, "+", "resend/reply");
}

Result<ResendRequest> parse_resend_request(std::string_view payload, size_t max_ranges) {
  auto j = read_message(payload, kResendRequestFormat);
  if (!j) return Status::invalid_argument("resend request: " + j.status().message());
  ResendRequest r;
  std::string error;
  if (!read_text(*j, "request_id", &r.request_id, &error) ||
      !read_text(*j, "incarnation", &r.incarnation, &error) ||
      !read_ranges(*j, "ranges", true, max_ranges, &r.ranges, &error)) {
    return Status::invalid_argument("resend request: " + error);
  }
  return r;
}

std::string build_resend_request(const ResendRequest& r) {
  return json{{"format", kResendRequestFormat},
              {"request_id", r.request_id},
              {"incarnation", r.incarnation},
              {"ranges", ranges_json(r.ranges)}}
      .dump();
}

Result<ResendReply> parse_resend_reply(std::string_view payload) {
  auto j = read_message(payload, kResendReplyFormat);
  if (!j) return Status::invalid_argument("resend reply: " + j.status().message());
  ResendReply r;
  std::string error;
  constexpr size_t kAny = SIZE_MAX;
  if (!read_text(*j, "request_id", &r.request_id, &error) ||
      !read_text(*j, "store_id", &r.store_id, &error) ||
      !read_text(*j, "device_id", &r.device_id, &error) ||
      !read_text(*j, "incarnation", &r.incarnation, &error) ||
      !read_ranges(*j, "resent", false, kAny, &r.resent, &error) ||
      !read_ranges(*j, "pending", false, kAny, &r.pending, &error) ||
      !read_ranges(*j, "gone", false, kAny, &r.gone, &error) ||
      !read_ranges(*j, "deferred", false, kAny, &r.deferred, &error)) {
    return Status::invalid_argument("resend reply: " + error);
  }
  auto reason = j->find("gone_reason");
  if (reason != j->end() && reason->is_string()) r.gone_reason = reason->get<std::string>();
  return r;
}

std::string build_resend_reply(const ResendReply& r) {
  return json{{"format", kResendReplyFormat},
              {"request_id", r.request_id},
              {"store_id", r.store_id},
              {"device_id", r.device_id},
              {"incarnation", r.incarnation},
              {"resent", ranges_json(r.resent)},
              {"pending", ranges_json(r.pending)},
              {"gone", ranges_json(r.gone)},
              {"gone_reason", r.gone_reason.empty() ? json() : json(r.gone_reason)},
              {"deferred", ranges_json(r.deferred)}}
      .dump();
}

}  // namespace edgesync::events
