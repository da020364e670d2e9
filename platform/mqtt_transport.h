// The MQTT v5 connection to the hub: the only code that includes paho.
//
// paho runs with no persistence and no offline buffer: the outbox is the one durable queue, and
// after any reconnect the publisher resends from it. paho's callbacks run on paho's threads; this
// adapter never calls back into the agent's logic from there. It only queues what happened and
// calls `notify` (which must just post to the owner's thread); the owner then calls
// take_events() on its own thread. One notify covers every event queued until the next take.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "platform/status.h"

namespace edgesync::platform {

struct MqttOptions {
  std::string uri;  // ssl://host:port, or tcp://host:port when insecure is allowed
  std::string client_id;
  std::string ca_file;
  std::string cert_file;  // optional: mutual TLS together with key_file
  std::string key_file;
  std::string username;  // optional
  std::string password;  // optional
  int keepalive_s = 30;
  int connect_timeout_s = 10;
  std::string will_topic;  // retained QoS 1 will, if not empty
  std::string will_payload;
};

// What became of one publish.
enum class PublishOutcome {
  kDelivered,  // PUBACK with a success reason code
  kRetry,      // not acknowledged (connection lost, client error): resend on a new session
  kRefused,    // PUBACK refusal that may clear (not authorized, quota, unspecified): retry later
  kNever,      // PUBACK refusal that says this message can never be taken (topic, format, size)
};

// The user properties of an event publish (and of a dead-letter notice).
struct PublishIdentity {
  std::string_view id;
  int64_t seq = 0;
  std::string_view incarnation;
  std::string_view type;  // the event's type: a "type" property when not empty
  int version = 0;        // its contract version: a "v" property when > 0
};

struct MqttEvent {
  enum class Kind {
    kConnected,
    kConnectFailed,
    kConnectionLost,
    kPublishDone,
    kMessage,          // a message on a subscribed topic: `topic` and `payload`
    kSubscribed,       // the broker granted every filter of a subscribe()
    kSubscribeFailed,  // the broker refused a subscription: `detail` says which and why
  };
  Kind kind = Kind::kConnectionLost;
  uint64_t generation = 0;   // the connect() call this belongs to
  uint64_t tag = 0;          // kPublishDone: the caller's tag
  PublishOutcome outcome = PublishOutcome::kRetry;
  int receive_maximum = 0;   // kConnected: the broker's Receive Maximum (0 if not sent)
  int64_t maximum_packet_size = 0;  // kConnected: the broker's Maximum Packet Size (0: none)
  int reason_code = 0;       // kPublishDone: the PUBACK reason code (0 when there was none)
  std::string detail;        // reason for failures
  std::string topic;         // kMessage; kSubscribed, kSubscribeFailed: the first filter
  std::string payload;       // kMessage
};

class MqttTransport {
 public:
  static Result<std::unique_ptr<MqttTransport>> create(const MqttOptions& options,
                                                       std::function<void()> notify);
  ~MqttTransport();

  // New settings (URI, TLS files, credentials, will, ...) for the next connect(): the current
  // client, if any, is disconnected and dropped first (its late events are stale by their
  // generation). InvalidArgument, with nothing changed, if paho refuses them.
  Status set_options(const MqttOptions& options);

  // Starts one connection attempt with a clean session. Exactly one of kConnected or
  // kConnectFailed follows for this generation; kConnectionLost may follow a kConnected.
  // Returns the new generation.
  uint64_t connect();

  // QoS 1 publish with content type application/json and user properties id, seq and
  // incarnation. A kPublishDone with `tag` follows for every call that returned ok; a call that
  // failed was not started and has no completion. kInvalidArgument: the MQTT library refuses
  // this message itself; anything else: the connection is going away.
  Status publish(const std::string& topic, std::string_view payload, const PublishIdentity& who,
                 uint64_t tag);
  // The size on the wire of the PUBLISH packet publish() sends for these arguments: what the
  // broker compares with its Maximum Packet Size.
  static int64_t packet_size(const std::string& topic, size_t payload_size,
                             const PublishIdentity& who);
  // A retained QoS 1 message (the status topic). Its completion is reported with tag 0.
  Status publish_retained(const std::string& topic, std::string_view payload);
  // The same, not retained (a resend reply).
  Status publish_message(const std::string& topic, std::string_view payload);

  // QoS 1 subscriptions on the current connection (retained messages are delivered at once).
  // Messages arrive as kMessage events; the broker's answer as kSubscribed or kSubscribeFailed.
  Status subscribe(const std::vector<std::string>& topic_filters);

  // Waits up to `timeout` for outstanding publishes, then disconnects.
  void disconnect(std::chrono::milliseconds timeout);
  bool is_connected() const;

  // Owner thread: moves every queued event into `out` (cleared first).
  void take_events(std::vector<MqttEvent>* out);

  struct Impl;  // defined in the .cc: the paho side

 private:
  explicit MqttTransport(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace edgesync::platform
