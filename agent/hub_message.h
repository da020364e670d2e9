// What one event looks like on the hub: its topic and its JSON payload.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "agent/config.h"
#include "storage/outbox.h"

namespace edgesync::agent {

// <topic_prefix>/<store_id>/<device_id>/events/<type>
void build_event_topic(const Config& config, const storage::StoredEvent& e, std::string* out);

// {"id","seq","incarnation","type","v","device_id","store_id","trace_id"?,"occurred_at",
// "received_at","data"}; v is the contract version (null: none); trace_id only when the producer
// gave one (both messages carry both);
// occurred_at is null when the producer did not give it; "received_at_trusted":false follows
// received_at when the box's clock read earlier than platform::kEarliestPlausibleUnixMs. `incarnation` is the outbox's: the hub
// keys events on (device_id, incarnation, seq). `out` is overwritten (its capacity reused).
void build_event_payload(const Config& config, std::string_view incarnation,
                         const storage::StoredEvent& e, std::string* out);

// <topic_prefix>/<store_id>/<device_id>/deadletter
std::string dead_letter_topic(const Config& config);

// The notice that takes a dead-lettered event's place in the stream, so that the hub's
// "highest contiguous seq" moves past it: {"id","seq","incarnation","type","v","device_id",
// "store_id","trace_id"?,"reason","failed_at"}. Not the event's data: that stays on the box.
void build_dead_letter_notice(const Config& config, std::string_view incarnation,
                              const storage::StoredEvent& e, std::string_view reason,
                              int64_t failed_ms, std::string* out);

// What the status message says about the outbox: the hub's reconciliation needs the
// incarnation, and the central team must hear of a quarantined or damaged outbox.
struct OutboxFacts {
  std::string incarnation;
  std::optional<storage::QuarantineIncident> quarantine;  // at this start or an earlier one
  std::optional<std::string> damaged;  // corruption met while running: delivery stopped there
};
OutboxFacts outbox_facts(const storage::Outbox& outbox);

// The retained status messages: online (on connect and when the outbox's state changes) and
// offline (will and clean stop): {"online","device_id","store_id","incarnation","version",
// "since"?,"reason"?,"quarantine"?:{"file","reason","at","incarnation"},"outbox_damaged"?}.
std::string build_status_payload(const Config& config, const OutboxFacts& outbox, bool online,
                                 const std::string& reason);

}  // namespace edgesync::agent
