#include "agent/hub_message.h"

#include "agent/event_contract.h"
#include "agent/version.h"
#include "platform/clock.h"

namespace edgesync::agent {

void build_event_topic(const Config& config, const storage::StoredEvent& e, std::string* out) {
  out->clear();
  out->append(config.hub.topic_prefix).push_back('/');
  out->append(config.device.store_id).push_back('/');
  out->append(config.device.id).append("/events/");
  out->append(e.type);
}

void build_event_payload(const Config& config, const storage::StoredEvent& e, std::string* out) {
  out->clear();
  out->append("{\"id\":");
  append_json_string(out, e.id);
  out->append(",\"seq\":").append(std::to_string(e.seq));
  out->append(",\"type\":");
  append_json_string(out, e.type);
  out->append(",\"device_id\":");
  append_json_string(out, config.device.id);
  out->append(",\"store_id\":");
  append_json_string(out, config.device.store_id);
  out->append(",\"occurred_at\":");
  if (e.occurred_at.empty()) {
    out->append("null");
  } else {
    append_json_string(out, e.occurred_at);
  }
  out->append(",\"received_at\":\"").append(platform::format_rfc3339_ms(e.received_ms));
  out->append("\",\"data\":").append(e.data).push_back('}');
}

std::string build_status_payload(const Config& config, bool online, const std::string& reason) {
  std::string out = online ? "{\"online\":true" : "{\"online\":false";
  out.append(",\"device_id\":");
  append_json_string(&out, config.device.id);
  out.append(",\"store_id\":");
  append_json_string(&out, config.device.store_id);
  out.append(",\"version\":\"").append(kVersion).append("\"");
  if (online) {
    out.append(",\"since\":\"").append(platform::format_rfc3339_ms(platform::unix_ms()));
    out.append("\"");
  }
  if (!reason.empty()) {
    out.append(",\"reason\":");
    append_json_string(&out, reason);
  }
  out.push_back('}');
  return out;
}

}  // namespace edgesync::agent
