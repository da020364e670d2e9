// Delivery against the bare paho publisher: rounds alternating the two (so that load from other
// work on the machine hits both sides of the ratio alike), each side timed by the same kind of
// QoS 1 subscriber on the event topics. Both then pay the broker's forwarding to a subscriber,
// as a real hub deployment does, and neither figure depends on how often the agent persists
// its delivered watermark.
#pragma once

#include <cstdint>
#include <string>

#include "bench/arrival_rate.h"
#include "bench/options.h"
#include "bench/paho_client.h"
#include "tests/harness/mosquitto_broker.h"

namespace edgesync::bench {

struct DeliveryFigures {
  int rounds = 0;
  PahoResult paho;             // the bare publisher, acked at the publisher
  ArrivalRate paho_arrivals;   // ... its events at the subscriber
  ArrivalRate agent_arrivals;  // the agent's backlog drains at the subscriber
};

// opt.rounds rounds: opt.paho_messages from the bare publisher, then a fresh agent in
// <root>/d<round> draining a backlog of opt.delivery_backlog. Leaves the broker running.
DeliveryFigures delivery_rounds(const Options& opt, const std::string& root,
                                test::MosquittoBroker& broker);

}  // namespace edgesync::bench
