// A hub-side MQTT v5 subscriber over mutual TLS (paho C++ async_client).
//
// It uses a persistent session (clean_start false, long session expiry) so QoS 1 messages
// published while it is disconnected - for example across a broker restart - are queued by the
// broker and delivered when it reconnects; paho's automatic reconnect brings it back. Every
// message is recorded in arrival order; wait_for() blocks on a condition variable.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

namespace mqtt {
class async_client;
}

namespace edgesync::test {

struct ReceivedMessage {
  std::string topic;
  std::string payload;
  bool retained = false;
  int qos = 0;
  std::string content_type;                                          // "" if absent
  std::vector<std::pair<std::string, std::string>> user_properties;  // in wire order
  std::optional<std::string> prop_id;                                // user property "id"
  std::optional<std::string> prop_seq;                               // user property "seq"
  std::optional<std::string> prop_incarnation;  // user property "incarnation"
};

struct SubscriberOptions {
  std::string uri;  // e.g. "ssl://localhost:8883"
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  std::string client_id;  // unique per test run
  std::string topic_filter = "edgesync/v1/#";
  int qos = 1;
  bool persistent_session = true;  // false: clean start, session ends on disconnect
  // Sent in CONNECT when not empty (a broker that wants a user name, e.g. ejabberd's anonymous
  // login); the password only with a user name.
  std::string username;
  std::string password;
};

class HubSubscriber {
 public:
  using Messages = std::vector<ReceivedMessage>;
  using Predicate = std::function<bool(const Messages&)>;

  explicit HubSubscriber(SubscriberOptions options);
  ~HubSubscriber();
  HubSubscriber(const HubSubscriber&) = delete;
  HubSubscriber& operator=(const HubSubscriber&) = delete;

  // Connects and subscribes; throws std::runtime_error if that fails within timeout.
  void connect(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // Clean MQTT disconnect (the session stays on the broker if persistent).
  void disconnect();
  bool is_connected() const;
  // Publishes at QoS 1 and waits for the broker's PUBACK; throws std::runtime_error if that
  // fails within timeout. Retained with an empty payload clears the topic's retained message.
  void publish(const std::string& topic, const std::string& payload, bool retained,
               std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // How many times a connection (first or automatic reconnect) was established.
  int connections() const;

  // Snapshot of all messages so far, in arrival order.
  Messages messages() const;
  size_t count() const;
  // Waits until pred(messages) is true (re-evaluated on every new message); false on timeout.
  bool wait_for(const Predicate& pred, std::chrono::milliseconds timeout);
  bool wait_for_count(size_t n, std::chrono::milliseconds timeout);
  // Number of distinct values of the "seq" user property seen so far (cheap: kept as messages
  // arrive), and a wait for it to reach n.
  size_t distinct_seq_count() const;
  bool wait_for_distinct_seqs(size_t n, std::chrono::milliseconds timeout);
  void clear();

 private:
  void on_message(const ReceivedMessage& m);
  SubscriberOptions options_;
  std::unique_ptr<mqtt::async_client> client_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  Messages messages_;
  std::unordered_set<std::string> seqs_;
  int connections_ = 0;
};

}  // namespace edgesync::test
