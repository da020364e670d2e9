// What one event looks like on the hub: its topic and its JSON payload.
#pragma once

#include <string>

#include "agent/config.h"
#include "storage/outbox.h"

namespace edgesync::agent {

// <topic_prefix>/<store_id>/<device_id>/events/<type>
void build_event_topic(const Config& config, const storage::StoredEvent& e, std::string* out);

// {"id","seq","type","device_id","store_id","occurred_at","received_at","data"}; occurred_at is
// null when the producer did not give it. `out` is overwritten (its capacity reused).
void build_event_payload(const Config& config, const storage::StoredEvent& e, std::string* out);

// The retained status messages: online (on connect) and offline (will and clean stop).
std::string build_status_payload(const Config& config, bool online, const std::string& reason);

}  // namespace edgesync::agent
