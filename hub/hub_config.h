// edgesync-hub's configuration: one JSON file (config/hub.example.json is the annotated example).
// Unknown keys are errors, as in the agent's file: a misspelt setting must not be ignored.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "platform/status.h"

namespace edgesync::hub {

struct HubConfig {
  struct Broker {
    // Tried in order; paho moves to the next when one cannot be reached.
    std::vector<std::string> uris;
    std::string client_id = "edgesync-hub";  // stable: it names the persistent session
    std::string username;
    std::string password;
    std::string ca_file;
    std::string cert_file;
    std::string key_file;
    bool allow_insecure = false;  // tcp:// URIs; for tests and a broker on the same host only
    // How long the broker keeps the session (and queues messages for it) while the hub is away.
    int64_t session_expiry_s = 7 * 24 * 3600;
    int receive_maximum = 64;  // QoS 1 messages the broker may have in flight to one connection
  } broker;
  std::string topic_prefix = "edgesync";
  struct Subscription {
    // Not empty: the events and dead-letter filters are "$share/<group>/...", and the broker
    // spreads those messages over the instances in the group (MQTT v5 shared subscription;
    // mosquitto has it). Status and health stay plain subscriptions in every instance: they
    // are retained last values, which a broker does not send to a shared subscription, and a
    // device's reports must be applied in the order it sent them, not split over instances.
    std::string shared_group;
    // Not empty: only these stores' topics (one filter per store and kind), for brokers without
    // shared subscriptions: each instance is given its own part of the fleet.
    std::vector<std::string> stores;
  } subscription;
  // libpq connection string, e.g. "host=/run/postgresql dbname=edgesync_hub".
  std::string database;
  // MQTT connections of this instance. More than one needs subscription.shared_group (else each
  // connection would receive every message); their messages are committed in shared batches.
  int consumers = 1;
  int max_batch = 256;  // messages in one PostgreSQL transaction at most
  struct Web {
    std::string listen;  // "127.0.0.1:8090"; empty: no page
  } web;
  // Asking boxes for the events the hub lacks (docs/HUB.md, "Resend"): every interval_s one
  // instance of the hub (whichever holds the lock in PostgreSQL) looks at the gaps, and asks each
  // online box for the seqs missing on two looks in a row, at most max_seqs per request.
  struct Resend {
    int64_t interval_s = 30;  // 0: never ask
    int64_t max_seqs = 10000;
  } resend;
};

// Reads and checks the file; every problem in one message, each naming its key.
Result<HubConfig> load_hub_config(const std::string& path);
Result<HubConfig> parse_hub_config(const std::string& text);

// The topic filters this instance subscribes to, shared-subscription prefix included.
std::vector<std::string> subscription_filters(const HubConfig& config);

// A broker URI of broker.uris: "ssl://host:port" or "mqtts://" (TLS), "tcp://" or "mqtt://";
// without a port, 8883 for TLS and 1883 otherwise. "[::1]" for an IPv6 address.
struct BrokerAddress {
  std::string host;
  int port = 0;
  bool tls = false;
};
Result<BrokerAddress> parse_broker_uri(const std::string& uri);

}  // namespace edgesync::hub
