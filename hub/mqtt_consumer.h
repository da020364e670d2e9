// One MQTT v5 connection of the hub: a persistent session (clean start off, a session expiry),
// QoS 1 subscriptions, reconnection over broker.uris. The only hub code that speaks MQTT.
//
// It uses libmosquitto, not paho (the agent's client): paho C sends a QoS 1 PUBACK on receipt,
// before the application sees the message, and has no manual acknowledgement, so a hub killed
// in a commit would lose what it was committing. With libmosquitto, run on our own loop thread
// in its threaded mode, the PUBACK leaves only when the message callback has returned; `handle`
// returns once the message's effect is committed, so the broker keeps every message the hub has
// not stored and sends it again to the restarted hub (docs/HUB.md, "Acknowledgement").
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "hub/hub_config.h"
#include "hub/hub_store.h"
#include "platform/status.h"

namespace edgesync::hub {

class MqttConsumer {
 public:
  using Handler = std::function<void(InboundMessage)>;
  // `index` tells the connections of one instance apart: client id "<client_id>-<index>" when
  // the instance has more than one.
  MqttConsumer(const HubConfig& config, int index, Handler handle);
  ~MqttConsumer();  // request_stop(), and up to 2 s for it

  // Connects to the first broker of broker.uris that answers, subscribes and returns once the
  // broker has answered the subscription; after that it reconnects by itself (the session
  // keeps the subscriptions). Fails with the reasons when no broker can be reached, or the one
  // reached refuses the connection.
  Status start();
  // Asks the connection to send a clean DISCONNECT (the session stays on the broker) and end;
  // wait_stopped() tells when it has. A handler waiting for a commit holds the connection
  // until the commit is done; one parked in a failed commit holds it for good: the caller then
  // ends the process without it.
  void request_stop();
  bool wait_stopped(std::chrono::steady_clock::time_point deadline);
  std::string client_id() const;
  bool connected() const;
  // Any thread: a QoS 1 message (not retained) for the broker, written by the connection's loop
  // within a second. False, and dropped, when not connected.
  bool publish(const std::string& topic, const std::string& payload);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace edgesync::hub
