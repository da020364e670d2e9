// The one event shape every measurement uses: a ~300-byte request line, the payload the agent
// publishes for it, and what it counts against storage.max_bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace edgesync::bench {

inline constexpr const char* kDevice = "pos-01";
inline constexpr const char* kStore = "store-042";
inline constexpr const char* kType = "sale.completed";
inline constexpr const char* kOccurredAt = "2024-05-01T12:34:56.789Z";
inline constexpr size_t kRequestBytes = 300;

// The `data` object of a kRequestBytes request line whose id is id_len characters long.
std::string event_data(size_t id_len);

// Topic filter for every event the agent publishes (docs/PROTOCOL.md).
std::string events_topic_filter();
// The topic of one of the bench's events.
std::string event_topic();

// Ids "<prefix>-TTT-NNNNNNNNN": thread and index, unique per run and case.
struct EventFactory {
  std::string prefix;
  std::string data = event_data(20);

  std::string id(int64_t thread, int64_t i) const;
  std::string line(int64_t thread, int64_t i) const;  // with the trailing '\n'
  // What the agent counts for this event against storage.max_bytes (storage/outbox.h
  // counted_size(): data + 2 * id + type + occurred_at + 40).
  int64_t counted_size() const;
};

// The payload the agent publishes for such an event (agent/hub_message.cc's layout), for the
// bare paho publisher.
std::string hub_payload(const std::string& id, int64_t seq, const std::string& data);

// The value of "id" in a hub payload (it is the first key), or empty.
std::string payload_event_id(const char* payload, size_t size);
// The value of "seq" in a hub payload (the key after "id"), or -1.
int64_t payload_seq(const char* payload, size_t size);

}  // namespace edgesync::bench
