// One MQTT v5 connect to the hub with the box's own credentials and TLS files, for `edgesync
// doctor`: does the hub take this box, and what limits does its CONNACK announce.
//
// Uses paho's C client (MQTTAsync) directly, as the agent's transport does underneath, with
// the same TLS settings (OpenSSL, hostname verification). The session is a clean start that
// the broker drops at the disconnect, under a client id of its own so that the running agent's
// session is not taken over. Nothing is published or subscribed.
//
// Blocking; call from one thread at a time.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace edgesync::platform {

struct MqttProbeOptions {
  std::string uri;  // hub.uri
  std::string client_id;
  std::string ca_file;
  std::string cert_file;  // optional, with key_file
  std::string key_file;
  std::string username;  // optional
  std::string password;  // optional
  int keepalive_s = 30;
  std::chrono::milliseconds timeout{5000};  // TCP, TLS and the CONNACK together
};

struct MqttProbeOutcome {
  bool connected = false;
  // A refusal's CONNACK reason code (0x80 and up; 0x86 bad user name or password, 0x87 not
  // authorized, ...), or 0 when the connection failed before any CONNACK.
  int reason_code = 0;
  // Why it failed: the reason code with its name, or paho's error ("TCP/TLS connect failure",
  // no CONNACK within the timeout).
  std::string error;
  bool timed_out = false;

  // From the CONNACK (connected only). 0 when the broker did not send the property: no limit
  // below the protocol's (Receive Maximum 65535, packets up to 256 MiB).
  int receive_maximum = 0;
  int64_t maximum_packet_size = 0;
};

MqttProbeOutcome mqtt_probe(const MqttProbeOptions& options);

}  // namespace edgesync::platform
