// Checks shared by the configuration tools (`edgesync config sign`, `config verify`, `keys
// generate`): pure functions, so they are tested without running the binary.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "platform/status.h"

namespace edgesync::agent {

// "30d", "12h", "90m", "3600s": a positive decimal count and one unit, nothing else (no
// spaces, signs, fractions or combinations). Milliseconds; InvalidArgument naming the accepted
// forms otherwise, also for 0 and for counts that overflow.
Result<int64_t> parse_duration_ms(std::string_view text);

// A key id as remote_config.trusted_keys accepts it: 1-64 of A-Z a-z 0-9 . _ -
bool is_key_id(std::string_view id);

// A pushed layer's text: exactly one JSON object (no comments), nested at most
// kMaxConfigNesting deep. InvalidArgument otherwise.
Result<nlohmann::json> parse_layer_json(std::string_view text);

struct LayerCheck {
  // The layer is refused: not an object, a local-only key, an unknown key, a wrong type or a
  // value out of range. Each names its key path.
  std::vector<std::string> errors;
  // Rules that span several keys and fail only against a minimal stand-in for the box's own
  // file ("hub.key_file: required with hub.cert_file" for a layer that sets hub.cert_file
  // alone): whether they hold depends on each box's file, so they do not refuse the layer.
  std::vector<std::string> notes;
  bool ok() const { return errors.empty(); }
};

// What a box would say about `payload` as a layer, short of its own file: pushable (no
// local-only key), and every key known and typed right once merged onto a minimal valid config.
LayerCheck check_layer(const nlohmann::json& payload);

}  // namespace edgesync::agent
