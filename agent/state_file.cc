#include "agent/state_file.h"

#include <nlohmann/json.hpp>

#include "events/json_nesting.h"
#include "events/json_text.h"
#include "platform/files.h"

namespace edgesync::agent {

Status write_agent_state(const std::string& path, const AgentState& s) {
  nlohmann::json j = {
      {"pid", s.pid},
      {"running", s.running},
      {"started_ms", s.started_ms},
      {"hub", {{"state", s.hub_state}, {"since_ms", s.hub_since_ms}, {"uri", s.hub_uri},
               {"last_error", s.last_error}}},
      {"updated_ms", s.updated_ms},
  };
  if (!s.outbox_error.empty()) j["outbox_error"] = s.outbox_error;
  if (s.totals.is_object() && !s.totals.empty()) j["totals"] = s.totals;
  return platform::write_file_atomic(path, events::json_text(j, 2) + "\n");
}

Result<AgentState> read_agent_state(const std::string& path) {
  auto text = platform::read_file(path);
  if (!text) return text.status();
  const Status bad = Status::corruption(path + " is not an agent state file");
  // Measured first: "totals" is copied below, which recurses once per level of nesting.
  if (events::nesting_depth(*text) > kMaxStateFileNesting) return bad;
  auto j = nlohmann::json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Status::corruption(path + " is not valid JSON");
  AgentState s;
  // A member of the wrong type (a hand edit, a damaged file) throws from value(): the file is
  // unusable as a whole.
  try {
    s.pid = j.value("pid", 0L);
    s.running = j.value("running", false);
    s.started_ms = j.value("started_ms", int64_t{0});
    s.updated_ms = j.value("updated_ms", int64_t{0});
    s.outbox_error = j.value("outbox_error", std::string());
    if (j.contains("totals") && j["totals"].is_object()) s.totals = j["totals"];
    if (j.contains("hub") && j["hub"].is_object()) {
      const auto& h = j["hub"];
      s.hub_state = h.value("state", std::string("disconnected"));
      s.hub_since_ms = h.value("since_ms", int64_t{0});
      s.hub_uri = h.value("uri", std::string());
      s.last_error = h.value("last_error", std::string());
    }
  } catch (const nlohmann::json::exception&) {
    return bad;
  }
  return s;
}

}  // namespace edgesync::agent
