#include "agent/health.h"

#include "agent/version.h"
#include "platform/clock.h"

namespace edgesync::agent {

using nlohmann::json;

namespace {

json time_or_null(int64_t ms) {
  return ms > 0 ? json(platform::format_rfc3339_ms(ms)) : json(nullptr);
}

json window_json(const AgentCounters& c, int64_t now_ms, int64_t seconds) {
  return {{"accepted", c.accepted_window.sum(now_ms, seconds)},
          {"delivered", c.delivered_window.sum(now_ms, seconds)}};
}

}  // namespace

json counts_json(const AgentCounters& c) {
  json refused = json::object();
  for (size_t i = 0; i < AgentCounters::kRefusalKinds; ++i) {
    refused[error_code_name(static_cast<IngestError>(i))] = c.refused[i].load(AgentCounters::kRelaxed);
  }
  return {{"accepted", c.accepted.load(AgentCounters::kRelaxed)},
          {"duplicates", c.duplicates.load(AgentCounters::kRelaxed)},
          {"unchecked", c.unchecked.load(AgentCounters::kRelaxed)},
          {"refused", refused},
          {"delivered", c.delivered.load(AgentCounters::kRelaxed)},
          {"dead_lettered", c.dead_lettered.load(AgentCounters::kRelaxed)},
          {"spool_files", {{"done", c.spool_files_done.load(AgentCounters::kRelaxed)},
                           {"failed", c.spool_files_failed.load(AgentCounters::kRelaxed)}}}};
}

json add_counts(const json& base, const json& add) {
  json out = add;
  if (!base.is_object()) return out;
  for (auto it = out.begin(); it != out.end(); ++it) {
    auto b = base.find(it.key());
    if (b == base.end()) continue;
    if (it->is_object()) {
      *it = add_counts(*b, *it);
    } else if (it->is_number_unsigned() && b->is_number_unsigned()) {
      *it = it->get<uint64_t>() + b->get<uint64_t>();
    }
  }
  return out;
}

VerdictInputs verdict_inputs(const HealthSnapshot& s) {
  VerdictInputs in;
  in.agent_running = true;
  in.hub_state = s.hub_state;
  in.hub_since_ms = s.hub_since_ms;
  in.pending = s.outbox.pending;
  in.pending_bytes = s.outbox.pending_bytes;
  in.max_bytes = s.config->storage.max_bytes;
  in.oldest_pending_ms = s.outbox.oldest_pending_received_ms;
  in.held_since_ms = s.outbox.held_since_ms;
  in.outbox_damage = s.outbox_damage;
  in.dead_letters_last_day =
      static_cast<int64_t>(s.counters->dead_letter_window.sum(s.now_ms, 24 * 3600));
  in.certificate_state = s.certificate.state;
  in.certificate_days_left = s.certificate.days_left;
  in.free_disk_bytes = s.free_disk_bytes;
  in.now_ms = s.now_ms;
  return in;
}

json health_json(const HealthSnapshot& s) {
  const Config& config = *s.config;
  const AgentCounters& c = *s.counters;
  const Verdict verdict = judge(verdict_inputs(s));
  int64_t error_ms = 0;
  const std::string last_error = c.last_error(&error_ms);
  const uint64_t connects = c.connects.load(AgentCounters::kRelaxed);

  const auto& o = s.outbox;
  const json since_start = counts_json(c);
  return {
      {"format", kHealthFormat},
      {"device_id", config.device.id},
      {"store_id", config.device.store_id},
      {"at", platform::format_rfc3339_ms(s.now_ms)},
      {"verdict",
       {{"level", verdict_name(verdict.level)}, {"reasons", verdict.reasons}, {"line", verdict.line()}}},
      {"agent",
       {{"version", kVersion},
        {"pid", s.pid},
        {"started_at", platform::format_rfc3339_ms(c.started_ms)},
        {"uptime_s", (s.now_ms - c.started_ms) / 1000}}},
      {"hub",
       {{"uri", s.hub_uri.empty() ? config.hub.uri : s.hub_uri},
        {"state", s.hub_state},
        {"since", time_or_null(s.hub_since_ms)},
        {"connects", connects},
        {"reconnects", connects > 0 ? connects - 1 : 0},
        {"last_error", last_error.empty() ? json(nullptr) : json(last_error)},
        {"last_error_at", time_or_null(error_ms)},
        {"next_retry_at",
         s.hub_state == "connected" ? json(nullptr)
                                    : time_or_null(c.next_retry_ms.load(AgentCounters::kRelaxed))}}},
      {"outbox",
       {{"incarnation", s.incarnation},
        {"highest_accepted_seq", o.next_seq - 1},
        {"highest_delivered_seq", o.delivered_seq},
        {"pending", o.pending},
        {"pending_bytes", o.pending_bytes},
        {"max_bytes", config.storage.max_bytes},
        {"oldest_pending_age_s",
         o.oldest_pending_received_ms ? json((s.now_ms - *o.oldest_pending_received_ms) / 1000.0)
                                      : json(nullptr)},
        {"held_since", time_or_null(o.held_since_ms)},
        {"damaged", s.outbox_damage.empty() ? json(nullptr) : json(s.outbox_damage)},
        {"free_disk_bytes", s.free_disk_bytes ? json(*s.free_disk_bytes) : json(nullptr)}}},
      {"since_start", since_start},
      {"totals", add_counts(s.totals_before, since_start)},
      {"last_minute", window_json(c, s.now_ms, 60)},
      {"last_hour", window_json(c, s.now_ms, 3600)},
      {"config", s.config_status.is_null() ? json(nullptr) : s.config_status},
      {"certificate", certificate_json(config, s.certificate)},
  };
}

}  // namespace edgesync::agent
