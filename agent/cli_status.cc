// `edgesync status`, `edgesync outbox`, `edgesync dead-letters`: read-only views of a box's
// state for technicians, as tables or --json. They open the database read-only, so they work
// while the agent runs (WAL lets readers in) and when it is stopped.
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "agent/certificate_check.h"
#include "agent/cli.h"
#include "agent/config_layers.h"
#include "agent/remote_config.h"
#include "agent/remote_config_state.h"
#include "agent/state_file.h"
#include "platform/clock.h"
#include "platform/files.h"
#include "storage/outbox.h"

namespace edgesync::agent {
namespace {

using nlohmann::json;

std::string human_bytes(int64_t b) {
  char buf[32];
  if (b < 1024) return std::to_string(b) + " B";
  if (b < 1024 * 1024) {
    std::snprintf(buf, sizeof buf, "%.1f KiB", b / 1024.0);
  } else {
    std::snprintf(buf, sizeof buf, "%.1f MiB", b / (1024.0 * 1024.0));
  }
  return buf;
}

std::string human_age(double s) {
  char buf[32];
  if (s < 120) {
    std::snprintf(buf, sizeof buf, "%.1f s", s);
  } else if (s < 7200) {
    std::snprintf(buf, sizeof buf, "%.1f min", s / 60);
  } else {
    std::snprintf(buf, sizeof buf, "%.1f h", s / 3600);
  }
  return buf;
}

void row(const char* label, const std::string& value) {
  std::printf("%-18s %s\n", label, value.c_str());
}

// The pushed configuration's state file: NotFound (nothing pushed) reads as an empty state
// with the local file's hash, which is then what the agent runs with.
Result<RemoteConfigState> config_state(const Config& config) {
  auto read = read_remote_config_state(remote_config_state_path(config));
  if (read || read.status().code() != Status::Code::kNotFound) return read;
  RemoteConfigState empty;
  empty.effective_sha256 = config_sha256(config);
  return empty;
}

std::string record_line(const ConfigRecord& r) {
  std::string s = platform::format_rfc3339_ms(r.at_ms);
  if (!r.scope.empty()) s += " " + r.scope;
  if (r.version) s += " v" + std::to_string(r.version);
  return s + ": " + r.reason;
}

// "ok, expires 2027-01-02 (398 days)", the warning, or "none (no hub.cert_file)".
std::string certificate_line(const Config& config, const CertificateFacts& f) {
  if (!f.configured) return "none (no hub.cert_file)";
  std::string warning = certificate_warning(config, f);
  if (!warning.empty()) return warning;
  return f.state + ", expires " + platform::format_rfc3339_ms(f.not_after_ms).substr(0, 10) +
         " (" + std::to_string(f.days_left) + " days)";
}

void config_rows(const Config& config, const Result<RemoteConfigState>& state) {
  if (!state) {
    row("config", state.status().message());
    return;
  }
  std::string layers;
  for (Scope scope : kScopes) {
    auto it = state->applied.find(scope);
    if (!layers.empty()) layers += ", ";
    layers += scope_name(scope);
    layers += it == state->applied.end() ? " none" : " v" + std::to_string(it->second.version);
  }
  if (config.remote_config.trusted_keys.empty()) {
    layers = "local file only (remote configuration off: no remote_config.trusted_keys)";
  }
  row("config", layers);
  row("config sha256", state->effective_sha256);
  if (state->probation_since_ms > 0) {
    row("config probation",
        "since " + platform::format_rfc3339_ms(state->probation_since_ms) + ", until " +
            platform::format_rfc3339_ms(state->probation_since_ms +
                                        config.remote_config.probation_s * 1000));
  }
  if (state->last_rejection) row("config rejected", record_line(*state->last_rejection));
  if (state->last_rollback) row("config rolled back", record_line(*state->last_rollback));
}

}  // namespace

int cli_status(const Config& local, bool as_json) {
  auto remote_state = config_state(local);
  // What the agent runs: the local file with the pushed layers (hub, budget, certificate).
  const Config config = remote_state ? effective_config(local, *remote_state) : local;
  auto agent_state = read_agent_state(config.state_file());
  bool running = agent_state && agent_state->running && platform::process_alive(agent_state->pid);
  std::string hub_state = running ? agent_state->hub_state : "disconnected";
  auto stats = storage::Outbox::inspect(config.storage.path);
  int64_t now = platform::unix_ms();
  CertificateFacts cert = certificate_facts(config, now);

  if (as_json) {
    json j;
    j["device"] = {{"id", config.device.id}, {"store_id", config.device.store_id}};
    j["agent_running"] = running;
    if (running) j["pid"] = agent_state->pid;
    j["hub"] = {{"uri", config.hub.uri}, {"state", hub_state}};
    if (agent_state) {
      if (running && agent_state->hub_since_ms) {
        j["hub"]["since"] = platform::format_rfc3339_ms(agent_state->hub_since_ms);
      }
      if (!agent_state->last_error.empty()) j["hub"]["last_error"] = agent_state->last_error;
    }
    if (stats) {
      const auto& st = *stats;
      j["outbox"] = {{"path", config.storage.path},
                     {"pending", st.pending},
                     {"pending_bytes", st.pending_bytes},
                     {"last_delivered_seq", st.delivered_seq},
                     {"next_seq", st.next_seq},
                     {"stored_events", st.stored_events},
                     {"dead_letters", st.dead_letters},
                     {"dead_letters_pruned", st.dead_letters_pruned},
                     {"max_bytes", config.storage.max_bytes}};
      j["outbox"]["incarnation"] = st.incarnation;
      if (st.quarantine) {
        j["outbox"]["quarantine"] = {
            {"file", st.quarantine->file},
            {"reason", st.quarantine->reason},
            {"at", platform::format_rfc3339_ms(st.quarantine->at_ms)},
            {"incarnation", st.quarantine->incarnation.empty()
                                ? json(nullptr)
                                : json(st.quarantine->incarnation)}};
      }
      j["outbox"]["oldest_pending_age_s"] =
          st.oldest_pending_received_ms
              ? json((now - *st.oldest_pending_received_ms) / 1000.0)
              : json(nullptr);
    } else {
      j["outbox"] = {{"path", config.storage.path}, {"error", stats.status().message()}};
    }
    if (running && !agent_state->outbox_error.empty()) {
      j["outbox"]["damaged_while_running"] = agent_state->outbox_error;
    }
    j["config"] = remote_state ? config_status_json(config, *remote_state, now)
                               : json{{"error", remote_state.status().message()}};
    j["certificate"] = certificate_json(config, cert);
    std::cout << j.dump(2) << "\n";
    return stats ? 0 : 1;
  }

  row("device", config.device.store_id + "/" + config.device.id);
  row("agent", running ? "running (pid " + std::to_string(agent_state->pid) + ")" : "not running");
  std::string hub = hub_state;
  if (running && agent_state->hub_since_ms) {
    hub += " since " + platform::format_rfc3339_ms(agent_state->hub_since_ms);
  }
  row("hub", hub + "  " + config.hub.uri);
  if (agent_state && !agent_state->last_error.empty()) row("last hub error", agent_state->last_error);
  row("certificate", certificate_line(config, cert));
  if (running && !agent_state->outbox_error.empty()) {
    row("outbox damaged", agent_state->outbox_error +
                              " (delivery stopped at the damage; the file is quarantined at the "
                              "next start of the agent)");
  }
  if (!stats) {
    row("outbox", stats.status().to_string());
    config_rows(config, remote_state);
    return 1;
  }
  const auto& st = *stats;
  row("outbox", config.storage.path);
  row("pending", std::to_string(st.pending) + " events (" + human_bytes(st.pending_bytes) +
                     " of " + human_bytes(config.storage.max_bytes) + ")");
  row("oldest pending", st.oldest_pending_received_ms
                            ? human_age((now - *st.oldest_pending_received_ms) / 1000.0)
                            : "-");
  row("last delivered", "seq " + std::to_string(st.delivered_seq));
  row("next seq", std::to_string(st.next_seq));
  row("incarnation", st.incarnation);
  if (st.quarantine) {
    row("quarantined", platform::format_rfc3339_ms(st.quarantine->at_ms) + ": " +
                           st.quarantine->file + " (kept; " + st.quarantine->reason + ")");
  }
  row("dead letters",
      std::to_string(st.dead_letters) +
          (st.dead_letters_pruned > 0
               ? " (" + std::to_string(st.dead_letters_pruned) +
                     " older ones pruned: storage.max_dead_letters, storage.dead_letter_days)"
               : ""));
  config_rows(config, remote_state);
  return 0;
}

int cli_outbox_list(const Config& config, bool all, size_t limit, bool as_json) {
  std::vector<storage::StoredEvent> events;
  storage::OutboxStats st;
  Status s = storage::Outbox::list(config.storage.path, !all, limit, &events, &st);
  if (!s) {
    std::cerr << "edgesync outbox: " << s.to_string() << "\n";
    return 1;
  }
  if (as_json) {
    json arr = json::array();
    for (const auto& e : events) {
      json data = json::parse(e.data, nullptr, false);
      arr.push_back({{"seq", e.seq},
                     {"id", e.id},
                     {"type", e.type},
                     {"occurred_at", e.occurred_at.empty() ? json(nullptr) : json(e.occurred_at)},
                     {"received_at", platform::format_rfc3339_ms(e.received_ms)},
                     {"delivered", e.seq <= st.delivered_seq},
                     {"data", data}});
    }
    std::cout << arr.dump(2) << "\n";
    return 0;
  }
  std::printf("%-10s %-9s %-24s %-26s %s\n", "SEQ", "STATE", "RECEIVED", "TYPE", "ID");
  for (const auto& e : events) {
    std::printf("%-10lld %-9s %-24s %-26s %s\n", static_cast<long long>(e.seq),
                e.seq <= st.delivered_seq ? "delivered" : "pending",
                platform::format_rfc3339_ms(e.received_ms).c_str(), e.type.c_str(),
                e.id.c_str());
  }
  std::printf("(%zu shown; %lld pending, last delivered seq %lld)\n", events.size(),
              static_cast<long long>(st.pending), static_cast<long long>(st.delivered_seq));
  return 0;
}

int cli_dead_letters(const Config& config, size_t limit, bool as_json) {
  std::vector<storage::DeadLetter> dead;
  Status s = storage::Outbox::list_dead_letters(config.storage.path, limit, &dead);
  if (!s) {
    std::cerr << "edgesync dead-letters: " << s.to_string() << "\n";
    return 1;
  }
  if (as_json) {
    json arr = json::array();
    for (const auto& d : dead) {
      arr.push_back({{"seq", d.event.seq},
                     {"id", d.event.id},
                     {"type", d.event.type},
                     {"reason", d.reason},
                     {"failed_at", platform::format_rfc3339_ms(d.failed_ms)},
                     {"data", json::parse(d.event.data, nullptr, false)}});
    }
    std::cout << arr.dump(2) << "\n";
    return 0;
  }
  std::printf("%-10s %-24s %-26s %-38s %s\n", "SEQ", "FAILED", "TYPE", "ID", "REASON");
  for (const auto& d : dead) {
    std::printf("%-10lld %-24s %-26s %-38s %s\n", static_cast<long long>(d.event.seq),
                platform::format_rfc3339_ms(d.failed_ms).c_str(), d.event.type.c_str(),
                d.event.id.c_str(), d.reason.c_str());
  }
  std::printf("(%zu dead letters)\n", dead.size());
  return 0;
}

}  // namespace edgesync::agent
