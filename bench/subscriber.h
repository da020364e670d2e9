// A QoS 1 subscriber to every event topic of the bench's device, on the bench's broker: what the
// latency runs time arrivals with, and what the delivery rounds count arrivals with (in a process
// of its own there: arrival_rate.h).
#pragma once

#include <mqtt/async_client.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "tests/harness/tls_material.h"

namespace edgesync::bench {

class EventSubscriber {
 public:
  // Runs on paho's callback thread, one message at a time: the payload and Clock time (ns) of
  // its arrival.
  using Handler = std::function<void(const char* payload, size_t size, int64_t arrival_ns)>;

  // MQTT v5, clean start, mutual TLS. Returns once the subscription is granted, so every event
  // published after it is delivered; throws mqtt::exception if the broker cannot be reached.
  // REQUIRES: whatever `on_event` touches outlives this object.
  EventSubscriber(const std::string& uri, const test::TlsMaterial& tls,
                  const std::string& client_id, Handler on_event);
  // Disconnects, then destroys paho's client before the handler (member order).
  ~EventSubscriber();
  EventSubscriber(const EventSubscriber&) = delete;
  EventSubscriber& operator=(const EventSubscriber&) = delete;

 private:
  Handler on_event_;
  mqtt::async_client client_;  // after on_event_: destroyed first
};

}  // namespace edgesync::bench
