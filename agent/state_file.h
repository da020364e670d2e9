// The agent's small status file beside the database, for `edgesync status`.
//
// It holds what the database cannot: whether the agent runs (pid) and the hub connection
// state. Written atomically at each state change (rare), read by the CLI without locking.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "platform/status.h"

namespace edgesync::agent {

struct AgentState {
  long pid = 0;
  bool running = false;
  int64_t started_ms = 0;
  std::string hub_state = "disconnected";
  int64_t hub_since_ms = 0;
  std::string hub_uri;
  std::string last_error;
  // Set when the live outbox was found damaged while running (Outbox::corruption_seen).
  std::string outbox_error;
  int64_t updated_ms = 0;
  // The health message's totals (counters over every run), saved with each periodic health
  // message and at a clean stop: a crash loses at most one health.interval_s of counts.
  nlohmann::json totals = nlohmann::json::object();
};

// The agent's own state files (this one, the remote configuration's) are a few levels deep as
// written; one nested deeper was edited or damaged, and is refused before anything copies it.
inline constexpr int kMaxStateFileNesting = 32;

Status write_agent_state(const std::string& path, const AgentState& state);
Result<AgentState> read_agent_state(const std::string& path);

}  // namespace edgesync::agent
