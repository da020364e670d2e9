// The health message: what a running agent says about itself, retained on
// <prefix>/<store>/<device>/health (config/contracts/health.schema.json) and answered on the
// control socket's status. Built on the delivery thread from a snapshot of its parts.
//
// With the seq ranges of the events and the dead-letter notices, it lets the hub prove that
// every seq a box accepted is either received or announced (edgesync reconcile).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "agent/agent_counters.h"
#include "agent/certificate_check.h"
#include "agent/config.h"
#include "agent/verdict.h"
#include "storage/outbox.h"

namespace edgesync::agent {

constexpr int kHealthFormat = 1;

struct HealthSnapshot {
  const Config* config = nullptr;
  const AgentCounters* counters = nullptr;
  storage::OutboxStats outbox;  // Outbox::stats()
  std::string incarnation;
  std::string outbox_damage;  // Outbox::corruption_seen()
  std::string hub_state;      // hub_state_name()
  std::string hub_uri;        // the broker it is on or tries next (empty: hub.uri)
  int64_t hub_since_ms = 0;
  // The config status message's {effective_sha256, scopes}; null without remote configuration.
  nlohmann::json config_status;
  CertificateFacts certificate;
  std::optional<int64_t> free_disk_bytes;
  long pid = 0;
  int64_t now_ms = 0;
  // The totals as of the previous run's last save (agent-state.json): since_start is added.
  nlohmann::json totals_before = nlohmann::json::object();
};

// The counters since this start: {accepted, duplicates, unchecked, refused: {code: n},
// delivered, dead_lettered}.
nlohmann::json counts_json(const AgentCounters& counters);
// `add` with every count of `base` added to it (keys of `add` only).
nlohmann::json add_counts(const nlohmann::json& base, const nlohmann::json& add);

VerdictInputs verdict_inputs(const HealthSnapshot& s);
nlohmann::json health_json(const HealthSnapshot& s);

}  // namespace edgesync::agent
