#include "agent/config_tools.h"

#include <limits>

#include "agent/config.h"
#include "agent/config_envelope.h"
#include "agent/config_layers.h"
#include "events/json_nesting.h"

namespace edgesync::agent {
namespace {

using nlohmann::json;

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// `a` is `b` or one of them lies inside the other ("hub" and "hub.uri").
bool related(std::string_view a, std::string_view b) {
  if (a.size() > b.size()) std::swap(a, b);
  return a == b || (starts_with(b, a) && b[a.size()] == '.');
}

}  // namespace

Result<int64_t> parse_duration_ms(std::string_view text) {
  auto bad = [&] {
    return Status::invalid_argument("not a duration: \"" + std::string(text) +
                                    "\" (use a whole number and one unit: 30d, 12h, 90m, 3600s)");
  };
  if (text.size() < 2) return bad();
  int64_t unit_ms = 0;
  switch (text.back()) {
    case 'd':
      unit_ms = 86400000;
      break;
    case 'h':
      unit_ms = 3600000;
      break;
    case 'm':
      unit_ms = 60000;
      break;
    case 's':
      unit_ms = 1000;
      break;
    default:
      return bad();
  }
  int64_t count = 0;
  for (char c : text.substr(0, text.size() - 1)) {
    if (c < '0' || c > '9') return bad();
    if (count > (std::numeric_limits<int64_t>::max() - (c - '0')) / 10) return bad();
    count = count * 10 + (c - '0');
  }
  if (count == 0) {
    return Status::invalid_argument("duration \"" + std::string(text) + "\" must be above 0");
  }
  if (count > std::numeric_limits<int64_t>::max() / unit_ms) return bad();
  return count * unit_ms;
}

bool is_key_id(std::string_view s) { return is_valid_name(s); }

Result<json> parse_layer_json(std::string_view text) {
  // Measured before anything recursive (a copy, a merge) touches it; check_pushable refuses such
  // a layer before it is applied, so only a hand-edited state file holds one.
  if (events::nesting_depth(text) > kMaxConfigNesting) {
    return Status::invalid_argument("nested deeper than " + std::to_string(kMaxConfigNesting) +
                                    " levels");
  }
  json j;
  try {
    j = json::parse(text.begin(), text.end());
  } catch (const json::exception& e) {
    // Not only parse_error: "1e400" is out_of_range. nlohmann quotes the token it last read,
    // which need not be text and can be most of the payload (an unterminated string): the
    // reason goes to the log, the history and the hub, so it is cut.
    return Status::invalid_argument("not valid JSON: " + printable(e.what(), 200));
  }
  if (!j.is_object()) return Status::invalid_argument("must be a JSON object");
  return j;
}

LayerCheck check_layer(const json& payload) {
  LayerCheck out;
  if (!payload.is_object()) {
    out.errors.push_back("payload: must be a JSON object");
    return out;
  }
  if (Status s = check_pushable(payload); !s) {
    out.errors.push_back(s.message());
    return out;
  }
  // The least a box's own file holds; FileChecks::kSkip, since the files are the box's.
  static const json kSkeleton = {{"device", {{"id", "x"}, {"store_id", "y"}}},
                                 {"hub", {{"uri", "ssl://h:8883"}, {"ca_file", "/dev/null"}}}};
  MergedConfig merged = merge_layers(kSkeleton, {Layer{Scope::kFleet, 1, payload}});
  std::vector<std::string> set_by_layer;
  for (const auto& [path, origin] : merged.origin) {
    if (origin != "local") set_by_layer.push_back(path);
  }
  Config unused;
  for (auto& e : parse_config_json(merged.json, &unused, FileChecks::kSkip)) {
    const size_t colon = e.find(": ");
    bool own = colon == std::string::npos;
    for (const auto& path : set_by_layer) {
      own = own || related(std::string_view(e).substr(0, colon), path);
    }
    (own ? out.errors : out.notes).push_back(std::move(e));
  }
  return out;
}

}  // namespace edgesync::agent
