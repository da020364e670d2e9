// One MQTT v5 connection of the hub: a persistent session (clean start off, a session expiry),
// QoS 1 subscriptions, automatic reconnection. The only hub code that includes paho.
//
// Each message is handed to `handle` on paho's callback thread. paho has acknowledged it already
// (QoS 1: PUBACK on receipt, before any callback; no manual acknowledgement in paho C 1.3), but it
// reads no further message while a handler runs: a handler that returns only after the commit
// leaves at most that one message acknowledged and not stored (docs/HUB.md).
#pragma once

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
  ~MqttConsumer();

  // Connects (waiting up to the broker's connect timeout) and subscribes; after that paho
  // reconnects by itself and the session keeps the subscriptions. Fails with the broker's
  // reason when the first connection cannot be made.
  Status start();
  // A clean DISCONNECT, waiting at most `timeout_ms` (a handler parked in a failed commit can
  // hold paho's thread: the caller then ends the process without it).
  void disconnect(int timeout_ms);
  std::string client_id() const;
  bool connected() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace edgesync::hub
