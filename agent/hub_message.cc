#include "agent/hub_message.h"

#include "agent/certificate_check.h"
#include "agent/event_contract.h"
#include "agent/version.h"
#include "events/json_text.h"
#include "platform/clock.h"

namespace edgesync::agent {

void build_event_topic(const Config& config, const storage::StoredEvent& e, std::string* out) {
  out->clear();
  out->append(config.hub.topic_prefix).push_back('/');
  out->append(config.device.store_id).push_back('/');
  out->append(config.device.id).append("/events/");
  out->append(e.type);
}

namespace {

// "id", "seq", "incarnation", "type", "v", "device_id", "store_id" and "trace_id" when the producer
// gave one: the head both messages share.
void append_identity(const Config& config, std::string_view incarnation,
                     const storage::StoredEvent& e, std::string* out) {
  out->append("{\"id\":");
  append_json_string(out, e.id);
  out->append(",\"seq\":").append(std::to_string(e.seq));
  out->append(",\"incarnation\":");
  append_json_string(out, incarnation);
  out->append(",\"type\":");
  append_json_string(out, e.type);
  out->append(",\"v\":").append(e.contract_version > 0 ? std::to_string(e.contract_version)
                                                       : "null");
  out->append(",\"device_id\":");
  append_json_string(out, config.device.id);
  out->append(",\"store_id\":");
  append_json_string(out, config.device.store_id);
  if (!e.trace_id.empty()) {
    out->append(",\"trace_id\":");
    append_json_string(out, e.trace_id);
  }
}

}  // namespace

void build_event_payload(const Config& config, std::string_view incarnation,
                         const storage::StoredEvent& e, std::string* out) {
  out->clear();
  append_identity(config, incarnation, e, out);
  out->append(",\"occurred_at\":");
  if (e.occurred_at.empty()) {
    out->append("null");
  } else {
    append_json_string(out, e.occurred_at);
  }
  out->append(",\"received_at\":\"").append(platform::format_rfc3339_ms(e.received_ms));
  out->push_back('"');
  // The box's wall clock was wrong when the event came in (no RTC, not yet synced): say so,
  // rather than let the hub file a sale under 1970.
  if (e.received_ms < platform::kEarliestPlausibleUnixMs)
    out->append(",\"received_at_trusted\":false");
  out->append(",\"data\":").append(e.data).push_back('}');
}

std::string dead_letter_topic(const Config& config) { return config.topic_base() + "/deadletter"; }

void build_dead_letter_notice(const Config& config, std::string_view incarnation,
                              const storage::StoredEvent& e, std::string_view reason,
                              int64_t failed_ms, std::string* out) {
  out->clear();
  append_identity(config, incarnation, e, out);
  out->append(",\"reason\":");
  append_json_string(out, reason);
  out->append(",\"failed_at\":\"").append(platform::format_rfc3339_ms(failed_ms));
  out->append("\"}");
}

OutboxFacts outbox_facts(const storage::Outbox& outbox) {
  OutboxFacts f;
  f.incarnation = outbox.incarnation();
  f.quarantine = outbox.quarantine();
  f.damaged = outbox.corruption_seen();
  return f;
}

std::string build_status_payload(const Config& config, const OutboxFacts& outbox, bool online,
                                 const std::string& reason) {
  std::string out = online ? "{\"online\":true" : "{\"online\":false";
  out.append(",\"device_id\":");
  append_json_string(&out, config.device.id);
  out.append(",\"store_id\":");
  append_json_string(&out, config.device.store_id);
  out.append(",\"incarnation\":");
  append_json_string(&out, outbox.incarnation);
  out.append(",\"version\":\"").append(kVersion).append("\"");
  if (online) {
    out.append(",\"since\":\"").append(platform::format_rfc3339_ms(platform::unix_ms()));
    out.append("\"");
  }
  if (!reason.empty()) {
    out.append(",\"reason\":");
    append_json_string(&out, reason);
  }
  if (const auto& q = outbox.quarantine) {
    out.append(",\"quarantine\":{\"file\":");
    append_json_string(&out, q->file);
    out.append(",\"reason\":");
    append_json_string(&out, q->reason);
    out.append(",\"at\":\"").append(platform::format_rfc3339_ms(q->at_ms)).append("\"");
    if (!q->incarnation.empty()) {
      out.append(",\"incarnation\":");
      append_json_string(&out, q->incarnation);
    }
    out.push_back('}');
  }
  if (outbox.damaged) {
    out.append(",\"outbox_damaged\":");
    append_json_string(&out, *outbox.damaged);
  }
  if (!config.hub.cert_file.empty()) {
    // Read afresh for every status message: a renewed certificate shows without a restart.
    out.append(",\"certificate\":");
    out.append(events::json_text(
        certificate_json(config, certificate_facts(config, platform::unix_ms()))));
  }
  out.push_back('}');
  return out;
}

}  // namespace edgesync::agent
