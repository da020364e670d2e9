#include "platform/mqtt_probe.h"

#include <MQTTAsync.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>

namespace edgesync::platform {
namespace {

// Written by paho's callbacks on paho's thread, read by the caller once `done`.
struct Waiter {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  MqttProbeOutcome outcome;

  void finish(MqttProbeOutcome o) {
    std::lock_guard<std::mutex> lock(mu);
    if (done) return;
    outcome = std::move(o);
    done = true;
    cv.notify_all();
  }
  // True iff finished within `timeout`.
  bool wait(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, timeout, [this] { return done; });
  }
};

std::string reason_text(int rc) {
  char hex[16];
  std::snprintf(hex, sizeof hex, "0x%02X", static_cast<unsigned>(rc));
  const char* name = MQTTReasonCode_toString(static_cast<MQTTReasonCodes>(rc));
  return std::to_string(rc) + " (" + hex + (name ? std::string(" ") + name : std::string()) + ")";
}

void on_connected(void* context, MQTTAsync_successData5* response) {
  MqttProbeOutcome o;
  o.connected = true;
  if (response) {
    MQTTProperties* props = &response->properties;
    if (MQTTProperties_hasProperty(props, MQTTPROPERTY_CODE_RECEIVE_MAXIMUM)) {
      o.receive_maximum = MQTTProperties_getNumericValue(props, MQTTPROPERTY_CODE_RECEIVE_MAXIMUM);
    }
    if (MQTTProperties_hasProperty(props, MQTTPROPERTY_CODE_MAXIMUM_PACKET_SIZE)) {
      // A four-byte integer: read through unsigned, it may exceed INT_MAX.
      o.maximum_packet_size = static_cast<uint32_t>(
          MQTTProperties_getNumericValue(props, MQTTPROPERTY_CODE_MAXIMUM_PACKET_SIZE));
    }
  }
  static_cast<Waiter*>(context)->finish(std::move(o));
}

void on_connect_failed(void* context, MQTTAsync_failureData5* response) {
  MqttProbeOutcome o;
  int rc = 0;
  std::string message;
  if (response) {
    // paho puts a CONNACK refusal in reasonCode, and in some versions in code as well; a
    // failure before any CONNACK has neither at 0x80 or above.
    if (response->reasonCode >= 0x80) {
      rc = response->reasonCode;
    } else if (response->code >= 0x80) {
      rc = response->code;
    }
    if (response->message) message = response->message;
    if (message.empty() && response->code < 0) message = MQTTAsync_strerror(response->code);
  }
  o.reason_code = rc;
  if (rc != 0) {
    o.error = "the hub refused the connection: CONNACK reason code " + reason_text(rc);
  } else {
    o.error = "connect failed" + (message.empty() ? std::string() : ": " + message);
  }
  static_cast<Waiter*>(context)->finish(std::move(o));
}

void on_disconnected(void* context, MQTTAsync_successData5*) {
  static_cast<Waiter*>(context)->finish({});
}
void on_disconnect_failed(void* context, MQTTAsync_failureData5*) {
  static_cast<Waiter*>(context)->finish({});
}

// The client handle, destroyed on every path. After MQTTAsync_destroy returns no callback of
// this client runs any more, so the waiters may go after it.
class Client {
 public:
  ~Client() {
    if (handle_) MQTTAsync_destroy(&handle_);
  }
  MQTTAsync* ptr() { return &handle_; }
  MQTTAsync get() { return handle_; }

 private:
  MQTTAsync handle_ = nullptr;
};

}  // namespace

MqttProbeOutcome mqtt_probe(const MqttProbeOptions& options) {
  // Declared before the client: destroyed after it.
  auto connect_waiter = std::make_unique<Waiter>();
  auto disconnect_waiter = std::make_unique<Waiter>();
  Client client;

  MQTTAsync_createOptions create = MQTTAsync_createOptions_initializer5;
  int rc = MQTTAsync_createWithOptions(client.ptr(), options.uri.c_str(), options.client_id.c_str(),
                                       MQTTCLIENT_PERSISTENCE_NONE, nullptr, &create);
  if (rc != MQTTASYNC_SUCCESS) {
    MqttProbeOutcome o;
    o.error = "cannot create the MQTT client for " + options.uri + ": " + MQTTAsync_strerror(rc);
    return o;
  }

  MQTTAsync_SSLOptions ssl = MQTTAsync_SSLOptions_initializer;
  ssl.trustStore = options.ca_file.c_str();
  ssl.enableServerCertAuth = 1;
  ssl.verify = 1;  // the host name against the certificate, as the agent's transport does
  if (!options.cert_file.empty()) {
    ssl.keyStore = options.cert_file.c_str();
    ssl.privateKey = options.key_file.c_str();
  }
  const bool tls = options.uri.rfind("ssl://", 0) == 0 || options.uri.rfind("mqtts://", 0) == 0;

  // The timeout in whole seconds, at least one: paho counts its connect timeout in seconds.
  const int timeout_s =
      static_cast<int>(std::max<int64_t>(1, (options.timeout.count() + 999) / 1000));
  MQTTAsync_connectOptions connect = MQTTAsync_connectOptions_initializer5;
  connect.keepAliveInterval = options.keepalive_s;
  connect.cleanstart = 1;  // and no Session Expiry Interval: the broker keeps nothing after us
  connect.connectTimeout = timeout_s;
  connect.automaticReconnect = 0;
  if (tls) connect.ssl = &ssl;
  if (!options.username.empty()) connect.username = options.username.c_str();
  if (!options.password.empty()) connect.password = options.password.c_str();
  connect.onSuccess5 = on_connected;
  connect.onFailure5 = on_connect_failed;
  connect.context = connect_waiter.get();

  rc = MQTTAsync_connect(client.get(), &connect);
  if (rc != MQTTASYNC_SUCCESS) {
    MqttProbeOutcome o;
    o.error = std::string("cannot start the MQTT connect: ") + MQTTAsync_strerror(rc);
    return o;
  }
  // paho checks its connect timeout about once a second: allow it that much more.
  if (!connect_waiter->wait(std::chrono::seconds(timeout_s + 1))) {
    MqttProbeOutcome o;
    o.timed_out = true;
    o.error = "no CONNACK within " + std::to_string(timeout_s) + " s";
    return o;
  }
  MqttProbeOutcome outcome = connect_waiter->outcome;
  if (outcome.connected) {
    MQTTAsync_disconnectOptions disconnect = MQTTAsync_disconnectOptions_initializer5;
    disconnect.timeout = 1000;
    disconnect.onSuccess5 = on_disconnected;
    disconnect.onFailure5 = on_disconnect_failed;
    disconnect.context = disconnect_waiter.get();
    if (MQTTAsync_disconnect(client.get(), &disconnect) == MQTTASYNC_SUCCESS) {
      disconnect_waiter->wait(std::chrono::seconds(2));
    }
  }
  return outcome;
}

}  // namespace edgesync::platform
