// The names the agent and the hub agree on: an event's type (it becomes an MQTT topic level and
// a contract's file name) and a producer's id (the idempotency key inside one outbox).
#pragma once

#include <string_view>

namespace edgesync::events {

// Segments of [a-z][a-z0-9_]* joined by '.', at least two, at most 128 characters.
bool is_valid_type(std::string_view type);
// 1-128 printable ASCII characters.
bool is_valid_id(std::string_view id);

}  // namespace edgesync::events
