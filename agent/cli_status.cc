// `edgesync status`, `edgesync outbox`, `edgesync dead-letters`: read-only views of a box's
// state for technicians, as tables or --json. They open the database read-only, so they work
// while the agent runs (WAL lets readers in) and when it is stopped.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "agent/certificate_check.h"
#include "agent/cli.h"
#include "agent/cli_format.h"
#include "agent/config_layers.h"
#include "agent/control_client.h"
#include "agent/remote_config.h"
#include "agent/remote_config_state.h"
#include "agent/spool_names.h"
#include "agent/state_file.h"
#include "agent/verdict.h"
#include "events/json_text.h"
#include "platform/clock.h"
#include "platform/files.h"
#include "storage/outbox.h"

namespace edgesync::agent {
namespace {

using nlohmann::json;

// The --json document's format (config/contracts/status.schema.json).
constexpr int kStatusFormat = 1;

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

// `live`: the running agent's health (null when it does not answer), whose config status has
// what the agent keeps only in memory: messages dropped as not from a trusted key.
void config_rows(const Config& config, const Result<RemoteConfigState>& state, const json& live) {
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
  const json live_config = live.is_object() ? live.value("config", json()) : json();
  const json dropped =
      live_config.is_object() ? live_config.value("last_unverified", json()) : json();
  if (dropped.is_object()) {
    row("config dropped",
        dropped.value("at", "") + " " + dropped.value("scope", "") + ": " +
            dropped.value("reason", "") + " (" +
            std::to_string(live_config.value("unverified_dropped", int64_t{0})) +
            " not from a trusted key since the agent started)");
  }
}

// The agent's live figures over the control socket (agent/health.h), or null when it does not
// answer (not running, or an older agent).
json live_health(const Config& config) {
  auto reply = control_request(config.control_socket(), {{"v", 1}, {"cmd", "status"}},
                               std::chrono::seconds(5));
  if (!reply || !reply->value("ok", false) || !reply->contains("status")) return nullptr;
  return (*reply)["status"];
}

// Colour for the verdict line on a terminal (not when piped, nor with NO_COLOR set).
std::string coloured(const std::string& text, VerdictLevel level) {
  if (!use_colour()) return text;
  const char* code = level == VerdictLevel::kOk         ? "\033[1;32m"
                     : level == VerdictLevel::kDegraded ? "\033[1;33m"
                                                        : "\033[1;31m";
  return code + text + "\033[0m";
}

std::string time_and_age(int64_t at_ms, int64_t now_ms) {
  return platform::format_rfc3339_ms(at_ms) + " (" + short_duration(now_ms - at_ms) + " ago)";
}

}  // namespace

namespace {

// The spool folder as a technician sees it (ingest.spool_dir), read from the folder itself so
// it also answers with the agent stopped: files waiting to be taken, and what done/ and failed/
// hold. Null when the spool is off.
json spool_json(const Config& config) {
  const std::string& dir = config.ingest.spool_dir;
  if (dir.empty()) return nullptr;
  namespace fs = std::filesystem;
  json j = {{"dir", dir}};
  std::error_code ec;
  int64_t waiting = 0;
  std::optional<fs::file_time_type> oldest;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    std::error_code type_ec;
    if (!it->is_regular_file(type_ec) || spool_name_ignored(name)) continue;
    ++waiting;
    std::error_code time_ec;
    const auto t = it->last_write_time(time_ec);
    if (!time_ec && (!oldest || t < *oldest)) oldest = t;
  }
  if (ec) {
    j["error"] = "cannot read " + dir + ": " + ec.message();
    return j;
  }
  j["waiting"] = waiting;
  // A file is renamed in with the time it was written: how long the oldest has waited.
  j["oldest_waiting_age_s"] = nullptr;
  if (oldest) {
    const auto age = fs::file_time_type::clock::now() - *oldest;
    j["oldest_waiting_age_s"] =
        std::max<int64_t>(0, std::chrono::duration_cast<std::chrono::seconds>(age).count());
  }
  for (const char* folder : {"done", "failed"}) {
    int64_t files = 0;
    std::error_code fec;
    for (fs::directory_iterator it(dir + "/" + folder, fec), end; !fec && it != end;
         it.increment(fec)) {
      const std::string name = it->path().filename().string();
      const std::string suffix = ".result.json";
      if (name.size() >= suffix.size() &&
          name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
        continue;
      }
      ++files;
    }
    j[folder] = files;
  }
  return j;
}

std::string spool_line(const json& s) {
  if (s.contains("error")) return s["error"].get<std::string>();
  std::string line = grouped(s["waiting"].get<int64_t>()) + " waiting";
  if (s["oldest_waiting_age_s"].is_number()) {
    line += " (oldest " + human_age(s["oldest_waiting_age_s"].get<double>()) + ")";
  }
  line += ", " + grouped(s["done"].get<int64_t>()) + " in done/, " +
          grouped(s["failed"].get<int64_t>()) + " in failed/  " + s["dir"].get<std::string>();
  return line;
}

}  // namespace

int cli_status(const Config& local, bool as_json) {
  auto remote_state = config_state(local);
  // What the agent runs: the local file with the pushed layers (hub, budget, certificate).
  const Config config = remote_state ? effective_config(local, *remote_state) : local;
  auto agent_state = read_agent_state(config.state_file());
  bool running = agent_state && agent_state->running && platform::process_alive(agent_state->pid);
  std::string hub_state = running ? agent_state->hub_state : "disconnected";
  // The broker the running agent is on (hub.uri or a fallback); hub.uri when it is not running.
  const std::string hub_uri =
      running && !agent_state->hub_uri.empty() ? agent_state->hub_uri : config.hub.uri;
  auto stats = storage::Outbox::inspect(config.storage.path);
  int64_t now = platform::unix_ms();
  CertificateFacts cert = certificate_facts(config, now);
  const json live = running ? live_health(config) : json(nullptr);
  std::optional<int64_t> free_disk;
  if (auto f = platform::free_disk_bytes(platform::dirname_of(config.storage.path))) free_disk = *f;

  VerdictInputs in;
  in.agent_running = running;
  in.hub_state = hub_state;
  in.hub_since_ms = running ? agent_state->hub_since_ms : 0;
  in.max_bytes = config.storage.max_bytes;
  if (stats) {
    in.pending = stats->pending;
    in.pending_bytes = stats->pending_bytes;
    in.oldest_pending_ms = stats->oldest_pending_received_ms;
    in.held_since_ms = stats->held_since_ms;
    in.dead_letters_last_day = stats->dead_letters_last_day;
  } else {
    in.outbox_error = stats.status().message();
  }
  if (running) in.outbox_damage = agent_state->outbox_error;
  in.certificate_state = cert.state;
  in.certificate_days_left = cert.days_left;
  in.free_disk_bytes = free_disk;
  in.now_ms = now;
  const Verdict verdict = judge(in);
  const int exit_code = static_cast<int>(verdict.level);  // 0 OK, 1 DEGRADED, 2 DOWN

  if (as_json) {
    json j;
    j["format"] = kStatusFormat;
    j["verdict"] = {{"level", verdict_name(verdict.level)},
                    {"reasons", verdict.reasons},
                    {"line", verdict.line()}};
    j["device"] = {{"id", config.device.id}, {"store_id", config.device.store_id}};
    j["agent_running"] = running;
    if (running) {
      j["pid"] = agent_state->pid;
      j["started_at"] = platform::format_rfc3339_ms(agent_state->started_ms);
    }
    j["hub"] = {{"uri", hub_uri}, {"state", hub_state}};
    if (agent_state) {
      if (running && agent_state->hub_since_ms) {
        j["hub"]["since"] = platform::format_rfc3339_ms(agent_state->hub_since_ms);
      }
      if (!agent_state->last_error.empty()) j["hub"]["last_error"] = agent_state->last_error;
    }
    if (live.is_object()) j["hub"]["next_retry_at"] = live["hub"].value("next_retry_at", json());
    if (stats) {
      const auto& st = *stats;
      j["outbox"] = {{"path", config.storage.path},
                     {"pending", st.pending},
                     {"pending_bytes", st.pending_bytes},
                     {"last_delivered_seq", st.delivered_seq},
                     {"next_seq", st.next_seq},
                     {"stored_events", st.stored_events},
                     {"dead_letters", st.dead_letters},
                     {"dead_letters_last_day", st.dead_letters_last_day},
                     {"dead_letters_pruned", st.dead_letters_pruned},
                     {"max_bytes", config.storage.max_bytes}};
      j["outbox"]["incarnation"] = st.incarnation;
      j["outbox"]["held_since"] = st.held_since_ms > 0
                                      ? json(platform::format_rfc3339_ms(st.held_since_ms))
                                      : json(nullptr);
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
    j["outbox"]["free_disk_bytes"] = free_disk ? json(*free_disk) : json(nullptr);
    if (running && !agent_state->outbox_error.empty()) {
      j["outbox"]["damaged_while_running"] = agent_state->outbox_error;
    }
    j["config"] = remote_state ? config_status_json(config, *remote_state, now)
                               : json{{"error", remote_state.status().message()}};
    const json live_config = live.is_object() ? live.value("config", json()) : json();
    if (remote_state && live_config.is_object()) {
      for (const char* k : {"unverified_dropped", "last_unverified"}) {
        if (live_config.contains(k)) j["config"][k] = live_config.at(k);
      }
    }
    j["certificate"] = certificate_json(config, cert);
    j["spool"] = spool_json(config);
    j["live"] = live;
    std::cout << events::json_text(j, 2) << "\n";
    return exit_code;
  }

  std::printf("%s\n\n", coloured(verdict.line(), verdict.level).c_str());
  row("device", config.device.store_id + "/" + config.device.id);
  row("agent", running ? "running (pid " + std::to_string(agent_state->pid) + ") since " +
                             time_and_age(agent_state->started_ms, now)
                       : "not running");
  std::string hub = hub_state;
  if (running && agent_state->hub_since_ms) {
    hub += " since " + time_and_age(agent_state->hub_since_ms, now);
  }
  row("hub", hub + "  " + hub_uri);
  if (agent_state && !agent_state->last_error.empty()) row("last hub error", agent_state->last_error);
  if (live.is_object() && live["hub"].value("next_retry_at", json()).is_string()) {
    row("next retry", live["hub"]["next_retry_at"].get<std::string>());
  }
  row("certificate", certificate_line(config, cert));
  if (running && !agent_state->outbox_error.empty()) {
    row("outbox damaged", agent_state->outbox_error +
                              " (delivery stopped at the damage; the file is quarantined at the "
                              "next start of the agent)");
  }
  if (!stats) {
    row("outbox", stats.status().to_string());
    config_rows(config, remote_state, live);
    return exit_code;
  }
  const auto& st = *stats;
  row("outbox", config.storage.path);
  row("pending", grouped(st.pending) + " events (" + human_bytes(st.pending_bytes) + " of " +
                     human_bytes(config.storage.max_bytes) + ")");
  row("oldest pending", st.oldest_pending_received_ms
                            ? human_age((now - *st.oldest_pending_received_ms) / 1000.0)
                            : "-");
  if (st.held_since_ms > 0) {
    row("delivery", "HELD since " + time_and_age(st.held_since_ms, now) +
                        " (edgesync outbox release resumes it)");
  }
  if (live.is_object()) {
    auto window = [&](const char* key) {
      return std::to_string(live[key].value("accepted", 0)) + " accepted, " +
             std::to_string(live[key].value("delivered", 0)) + " delivered";
    };
    row("last minute", window("last_minute"));
    row("last hour", window("last_hour"));
    const uint64_t unchecked = live["since_start"].value("unchecked", uint64_t{0});
    if (unchecked > 0) {
      row("unchecked", std::to_string(unchecked) +
                           " events of types without a contract passed on since start "
                           "(ingest.unknown_types: accept)");
    }
  } else if (running) {
    row("last minute", "- (the agent's control socket did not answer)");
  }
  row("last delivered", "seq " + std::to_string(st.delivered_seq));
  row("next seq", std::to_string(st.next_seq));
  row("incarnation", st.incarnation);
  if (st.quarantine) {
    row("quarantined", platform::format_rfc3339_ms(st.quarantine->at_ms) + ": " +
                           st.quarantine->file + " (kept; " + st.quarantine->reason + ")");
  }
  row("dead letters",
      grouped(st.dead_letters) + " (" + grouped(st.dead_letters_last_day) + " in the last 24 h)" +
          (st.dead_letters_pruned > 0
               ? "; " + std::to_string(st.dead_letters_pruned) +
                     " older ones pruned: storage.max_dead_letters, storage.dead_letter_days"
               : ""));
  if (const json spool = spool_json(config); !spool.is_null()) row("spool", spool_line(spool));
  row("free disk", free_disk ? human_bytes(*free_disk) : "unknown");
  config_rows(config, remote_state, live);
  return exit_code;
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
      json data = data_json(d.event.data);
      arr.push_back({{"seq", d.event.seq},
                     {"id", d.event.id},
                     {"type", d.event.type},
                     {"refused_on_arrival", d.event.seq < 0},
                     {"reason", d.reason},
                     {"failed_at", platform::format_rfc3339_ms(d.failed_ms)},
                     {"data", std::move(data)}});
    }
    std::cout << events::json_text(arr, 2) << "\n";
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
