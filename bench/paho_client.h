// paho.mqtt.cpp clients of the bench's broker: the bare publisher (the delivery baseline) and
// the connect options shared with the latency subscriber.
#pragma once

#include <mqtt/async_client.h>

#include <cstdint>

#include "tests/harness/mosquitto_broker.h"
#include "tests/harness/tls_material.h"

namespace edgesync::bench {

// MQTT v5, clean start, mutual TLS with the bench's client certificate.
mqtt::connect_options tls_connect_options(const test::TlsMaterial& tls);
inline mqtt::connect_options tls_connect_options(const test::MosquittoBroker& broker) {
  return tls_connect_options(broker.tls());
}

struct PahoResult {
  double msgs_per_s = 0;
  int64_t n = 0;
  int64_t failures = 0;
  size_t payload_bytes = 0;
  double elapsed_s = 0;

  void merge(const PahoResult& o);
};

// A bare publisher: QoS 1, no persistence, `window` in flight, content type and user properties
// id/seq as the agent sends them, `n` events of the bench's shape.
PahoResult raw_paho(const test::MosquittoBroker& broker, int64_t n, int64_t window);

}  // namespace edgesync::bench
