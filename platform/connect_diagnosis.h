// Why a connection to the hub failed, in words a technician acts on. paho reports every failure
// before a CONNACK as return code -1; this looks again: does the name resolve, does the port
// answer (refused, or silent), and does a TLS handshake of our own (mbedTLS, the doctor's probe)
// verify the broker's certificate and get ours accepted.
#pragma once

#include <string>

#include "platform/mqtt_transport.h"

namespace edgesync::platform {

// Resolves, connects and shakes hands again (a few seconds at most): call it off the agent's own
// thread, where paho reports the failure.
std::string diagnose_connect_failure(const MqttOptions& options);

}  // namespace edgesync::platform
