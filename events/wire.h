// The wire contract between an agent and the hub: the MQTT topics an agent publishes on and the
// JSON of its event messages and dead-letter notices (docs/HUB.md has the reader's copy). The
// agent builds them (agent/hub_message.h); the hub reads them here. tests/events/wire_test.cc
// builds with the agent's code and reads with this, so the two cannot drift apart unnoticed.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "platform/status.h"

namespace edgesync::events {

// What a topic under the prefix carries:
//   <prefix>/<store_id>/<device_id>/events/<type>   one event
//   <prefix>/<store_id>/<device_id>/deadletter      a dead-letter notice (the event's place)
//   <prefix>/<store_id>/<device_id>/status          online/offline (retained, and the will)
//   <prefix>/<store_id>/<device_id>/health          the outbox's figures (retained, periodic)
//   <prefix>/<store_id>/<device_id>/resend/reply    the answer to a resend request (resend.h)
enum class TopicKind { kEvent, kDeadLetter, kStatus, kHealth, kResendReply, kOther };

struct TopicParts {
  TopicKind kind = TopicKind::kOther;
  std::string store_id;
  std::string device_id;
  std::string type;  // kEvent only
};

// kOther for a topic outside `prefix` or of another shape (config topics, a stranger's).
TopicParts parse_topic(std::string_view prefix, std::string_view topic);

// The topic filters that take every device's messages of one kind, for all stores ("+") or one.
std::string events_filter(std::string_view prefix, std::string_view store = "+");
std::string dead_letter_filter(std::string_view prefix, std::string_view store = "+");
std::string status_filter(std::string_view prefix, std::string_view store = "+");
std::string health_filter(std::string_view prefix, std::string_view store = "+");

// One event as the agent publishes it. (device_id, incarnation, seq) is its identity for ever.
struct WireEvent {
  std::string id;
  int64_t seq = 0;
  std::string incarnation;
  std::string type;
  int v = 0;  // the contract version that checked it; 0: none (null on the wire)
  std::string device_id;
  std::string store_id;
  std::string trace_id;                    // empty: none given
  std::optional<std::string> occurred_at;  // RFC 3339, as the producer gave it
  std::string received_at;                 // RFC 3339, the box's clock at acceptance
  bool received_at_trusted = true;         // false: the box's clock was not yet set
  nlohmann::json data;                     // an object
};

// A dead-letter notice: the event at (device_id, incarnation, seq) will never come; its data
// stays on the box.
struct WireDeadLetter {
  std::string id;
  int64_t seq = 0;
  std::string incarnation;
  std::string type;
  int v = 0;
  std::string device_id;
  std::string store_id;
  std::string reason;
  std::string failed_at;
};

// Reads a message; an invalid_argument Status saying which field is missing or wrong when it is
// not one (the hub keeps such a message apart, it does not stop on it).
Result<WireEvent> parse_event_message(std::string_view payload);
Result<WireDeadLetter> parse_dead_letter_notice(std::string_view payload);

}  // namespace edgesync::events
