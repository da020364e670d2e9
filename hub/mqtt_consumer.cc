#include "hub/mqtt_consumer.h"

#include <mosquitto.h>
#include <mqtt_protocol.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>

#include "platform/log.h"

namespace edgesync::hub {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// A connection that has not had its CONNACK this long after the TCP connect counts as failed
// (a TLS handshake or a broker that stalls).
constexpr auto kConnackTimeout = 10s;
// A hub is one or two clients of a broker, not a fleet: retrying every few seconds costs the
// broker nothing, and every second waited after a broker restart is stock the web shop sees
// late (the fleet bench measured 15-20 s of extra delay with a 30 s cap).
constexpr auto kFirstRetry = 1s;
constexpr auto kLongestRetry = 5s;

void init_library_once() {
  static std::once_flag once;
  std::call_once(once, [] { mosquitto_lib_init(); });
}

std::string describe(int rc) {
  return rc == MOSQ_ERR_ERRNO ? std::string(std::strerror(errno)) : mosquitto_strerror(rc);
}

}  // namespace

// Every libmosquitto call after mosquitto_new is made on the loop thread (run()): the library's
// connect and disconnect are not safe against its own loop on another thread. Other threads
// only set flags and wait on `cv`.
struct MqttConsumer::Impl {
  HubConfig config;
  std::string client_id;
  Handler handle;
  std::vector<std::string> filters;
  mosquitto* mosq = nullptr;
  std::thread loop;

  std::atomic<bool> stop_requested{false};
  std::atomic<bool> is_connected{false};
  std::atomic<size_t> uri_index{0};  // the broker in use or being tried

  std::mutex mu;
  std::condition_variable cv;
  // Guarded by mu.
  bool subscribed = false;     // the broker answered a SUBSCRIBE
  size_t failed_attempts = 0;  // connections that failed before their CONNACK, since the last one
  std::string failures;        // their reasons, for start()
  bool loop_ended = false;
  std::vector<std::pair<std::string, std::string>> outgoing;  // publish(): topic, payload

  // Loop thread only.
  bool had_connack = false;  // on the current connection

  ~Impl() {
    if (mosq) mosquitto_destroy(mosq);
  }

  void wake() {
    std::lock_guard lock(mu);
    cv.notify_all();
  }

  // Waits `d` unless a stop is requested.
  void pause(std::chrono::milliseconds d) {
    std::unique_lock lock(mu);
    cv.wait_for(lock, d, [this] { return stop_requested.load(); });
  }

  void note_failure(const std::string& reason) {
    platform::log(platform::LogLevel::kWarning, "hub_connect_failed", client_id + ": " + reason);
    std::lock_guard lock(mu);
    ++failed_attempts;
    failures += (failures.empty() ? "" : "; ") + reason;
    cv.notify_all();
  }

  // TCP (and TLS) connect to broker `index`; the CONNACK comes to on_connect.
  Status connect_to(size_t index) {
    const HubConfig::Broker& b = config.broker;
    const std::string& uri = b.uris[index];
    Result<BrokerAddress> a = parse_broker_uri(uri);
    if (!a) return a.status();
    int rc = MOSQ_ERR_SUCCESS;
    if (a->tls) {
      rc = mosquitto_tls_set(mosq, b.ca_file.c_str(), nullptr,
                             b.cert_file.empty() ? nullptr : b.cert_file.c_str(),
                             b.key_file.empty() ? nullptr : b.key_file.c_str(), nullptr);
      // Peer verification on, host name checked against the certificate.
      if (rc == MOSQ_ERR_SUCCESS) rc = mosquitto_tls_opts_set(mosq, 1, nullptr, nullptr);
      if (rc == MOSQ_ERR_SUCCESS) rc = mosquitto_tls_insecure_set(mosq, false);
      if (rc != MOSQ_ERR_SUCCESS) return Status::invalid_argument(uri + ": TLS files: " + describe(rc));
    }
    // The session outlives the connection: what arrives while the hub is away is queued. (Not
    // mosquitto_reconnect: it would send no properties, and the session would end with it.)
    mosquitto_property* props = nullptr;
    mosquitto_property_add_int32(&props, MQTT_PROP_SESSION_EXPIRY_INTERVAL,
                                 static_cast<uint32_t>(b.session_expiry_s));
    uri_index = index;
    rc = mosquitto_connect_bind_v5(mosq, a->host.c_str(), a->port, 30, nullptr, props);
    mosquitto_property_free_all(&props);
    if (rc != MOSQ_ERR_SUCCESS) return Status::unavailable(uri + ": " + describe(rc));
    return Status::ok();
  }

  // The network loop. A connection that ends after its CONNACK is tried again on the same broker
  // after 1 s; one that fails before it moves on to the next broker of broker.uris, waiting 1 s
  // doubling to 5 s. On a stop request it sends DISCONNECT and runs until that is written.
  void run() {
    const size_t brokers = config.broker.uris.size();
    size_t index = 0;
    auto retry = std::chrono::milliseconds(kFirstRetry);
    bool tcp_up = false;
    bool disconnect_sent = false;
    Clock::time_point connected_at;
    while (true) {
      if (!tcp_up) {
        if (stop_requested) break;
        Status s = connect_to(index);
        if (s) {
          tcp_up = true;
          had_connack = false;
          connected_at = Clock::now();
          continue;
        }
        note_failure(s.message());
        index = (index + 1) % brokers;
        pause(retry);
        retry = std::min(retry * 2, std::chrono::milliseconds(kLongestRetry));
        continue;
      }
      if (stop_requested && !disconnect_sent) {
        // Queued here, written by the loop below; the session stays on the broker.
        mosquitto_disconnect_v5(mosq, MQTT_RC_NORMAL_DISCONNECTION, nullptr);
        disconnect_sent = true;
      }
      if (had_connack && !disconnect_sent) send_outgoing();
      int rc = mosquitto_loop(mosq, 1000, 1);
      if (rc == MOSQ_ERR_SUCCESS && !had_connack && !disconnect_sent &&
          Clock::now() - connected_at > kConnackTimeout) {
        rc = MOSQ_ERR_TIMEOUT;
        mosquitto_disconnect_v5(mosq, MQTT_RC_NORMAL_DISCONNECTION, nullptr);
      }
      if (rc == MOSQ_ERR_SUCCESS) continue;
      tcp_up = false;
      is_connected = false;
      if (stop_requested) break;
      if (had_connack) {
        retry = kFirstRetry;  // the broker was fine until now: it first
      } else {
        note_failure(config.broker.uris[index] + ": " +
                     (rc == MOSQ_ERR_TIMEOUT ? std::string("no CONNACK within 10 s")
                                             : describe(rc)));
        index = (index + 1) % brokers;
      }
      pause(retry);
      retry = std::min(retry * 2, std::chrono::milliseconds(kLongestRetry));
    }
    std::lock_guard lock(mu);
    loop_ended = true;
    cv.notify_all();
  }

  // What publish() queued, handed to the library on this (the loop) thread.
  void send_outgoing() {
    std::vector<std::pair<std::string, std::string>> batch;
    {
      std::lock_guard lock(mu);
      batch.swap(outgoing);
    }
    for (const auto& [topic, payload] : batch) {
      int rc = mosquitto_publish_v5(mosq, nullptr, topic.c_str(), static_cast<int>(payload.size()),
                                    payload.data(), 1, false, nullptr);
      if (rc != MOSQ_ERR_SUCCESS) {
        platform::log(platform::LogLevel::kWarning, "publish_failed",
                      client_id + ": " + topic + ": " + describe(rc));
      }
    }
  }

  void subscribe() {
    std::vector<char*> names;
    for (std::string& f : filters) names.push_back(f.data());
    int rc = mosquitto_subscribe_multiple(mosq, nullptr, static_cast<int>(names.size()),
                                          names.data(), 1, 0, nullptr);
    if (rc != MOSQ_ERR_SUCCESS) {
      platform::log(platform::LogLevel::kError, "subscribe_failed",
                    client_id + ": subscribing failed: " + describe(rc));
    }
  }

  static Impl* of(void* obj) { return static_cast<Impl*>(obj); }
  const std::string& uri() const { return config.broker.uris[uri_index]; }

  static void on_connect(mosquitto*, void* obj, int reason, int, const mosquitto_property*) {
    Impl* self = of(obj);
    if (reason != 0) {
      // The broker closes the connection next; run() counts it as a failed attempt.
      platform::log(platform::LogLevel::kError, "hub_connect_refused",
                    self->client_id + ": " + self->uri() + " refused the connection: " +
                        mosquitto_reason_string(reason));
      return;
    }
    self->had_connack = true;
    self->is_connected = true;
    {
      std::lock_guard lock(self->mu);
      self->failed_attempts = 0;
      self->failures.clear();
    }
    platform::log(platform::LogLevel::kInfo, "hub_connected",
                  self->client_id + ": connected to " + self->uri());
    // Subscribing again on every connection is harmless with a session present and needed
    // without one (a session that expired while the hub was away).
    self->subscribe();
  }

  static void on_disconnect(mosquitto*, void* obj, int rc, const mosquitto_property*) {
    Impl* self = of(obj);
    self->is_connected = false;
    if (self->stop_requested || !self->had_connack) return;
    // rc: the broker's DISCONNECT reason code (0x80 and up), or the library's error.
    platform::log(platform::LogLevel::kWarning, "hub_connection_lost",
                  self->client_id + ": connection to " + self->uri() + " lost (" +
                      (rc >= 0x80 ? mosquitto_reason_string(rc) : describe(rc)) +
                      "); reconnecting");
  }

  // The SUBACK: a filter the broker refused (not authorised, shared subscriptions not supported,
  // ...) is a part of the fleet this hub will never hear, so each is logged by name.
  static void on_subscribe(mosquitto*, void* obj, int, int count, const int* granted,
                           const mosquitto_property*) {
    Impl* self = of(obj);
    for (int i = 0; i < count && i < static_cast<int>(self->filters.size()); ++i) {
      if (granted[i] >= 0x80) {
        platform::log(platform::LogLevel::kError, "subscription_refused",
                      self->client_id + ": the broker refused the subscription to " +
                          self->filters[i] + ": " + mosquitto_reason_string(granted[i]));
      }
    }
    std::lock_guard lock(self->mu);
    self->subscribed = true;
    self->cv.notify_all();
  }

  // The PUBACK of a QoS 1 message leaves when this returns (see mosquitto_threaded_set in
  // start()): the handler returns once the message's effect is committed, so nothing is
  // acknowledged before it is stored.
  static void on_message(mosquitto*, void* obj, const mosquitto_message* m,
                         const mosquitto_property*) {
    Impl* self = of(obj);
    std::string payload(static_cast<const char*>(m->payload),
                        static_cast<size_t>(std::max(m->payloadlen, 0)));
    self->handle(InboundMessage{m->topic, std::move(payload)});
  }
};

MqttConsumer::MqttConsumer(const HubConfig& config, int index, Handler handle)
    : impl_(std::make_unique<Impl>()) {
  impl_->config = config;
  impl_->client_id = config.broker.client_id;
  if (config.consumers > 1) impl_->client_id += "-" + std::to_string(index);
  impl_->handle = std::move(handle);
  impl_->filters = subscription_filters(config);
}

MqttConsumer::~MqttConsumer() {
  if (!impl_->loop.joinable()) return;
  request_stop();
  if (wait_stopped(Clock::now() + 2s)) {
    impl_->loop.join();
  } else {
    // The loop is parked in a handler (a commit that never came) and still uses its state:
    // leave both to the end of the process rather than free them under it.
    impl_->loop.detach();
    (void)impl_.release();
  }
}

std::string MqttConsumer::client_id() const { return impl_->client_id; }

bool MqttConsumer::connected() const { return impl_->is_connected; }

bool MqttConsumer::publish(const std::string& topic, const std::string& payload) {
  if (!impl_->is_connected) return false;
  std::lock_guard lock(impl_->mu);
  impl_->outgoing.emplace_back(topic, payload);
  return true;
}

Status MqttConsumer::start() {
  init_library_once();
  Impl* impl = impl_.get();
  const HubConfig::Broker& b = impl->config.broker;
  // clean_session false: with MQTT v5, clean start off.
  impl->mosq = mosquitto_new(impl->client_id.c_str(), false, impl);
  if (!impl->mosq) return Status::unavailable(impl->client_id + ": cannot make an MQTT client");
  mosquitto_int_option(impl->mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
  // Our own thread runs the network loop. Told so, libmosquitto queues outgoing packets for that
  // loop instead of writing them where they are made: the PUBACK that 2.0.11 makes before the
  // message callback is then written only after the callback has returned, i.e. after the
  // commit (later versions make it after the callback anyway). On 2.0.11,
  // hub_stock_test's AHubKilledInsideACommitLosesNothing fails without this line.
  mosquitto_threaded_set(impl->mosq, true);
  mosquitto_int_option(impl->mosq, MOSQ_OPT_RECEIVE_MAXIMUM, b.receive_maximum);
  if (!b.username.empty()) {
    mosquitto_username_pw_set(impl->mosq, b.username.c_str(),
                              b.password.empty() ? nullptr : b.password.c_str());
  }
  mosquitto_connect_v5_callback_set(impl->mosq, &Impl::on_connect);
  mosquitto_disconnect_v5_callback_set(impl->mosq, &Impl::on_disconnect);
  mosquitto_subscribe_v5_callback_set(impl->mosq, &Impl::on_subscribe);
  mosquitto_message_v5_callback_set(impl->mosq, &Impl::on_message);
  impl->loop = std::thread([impl] { impl->run(); });

  // Consuming means subscribed: messages published before the broker holds the subscriptions
  // (a new session) would not reach this hub. Fails once every broker has failed once.
  std::unique_lock lock(impl->mu);
  bool answered = impl->cv.wait_for(lock, 60s * b.uris.size(), [impl, &b] {
    return impl->subscribed || impl->failed_attempts >= b.uris.size();
  });
  if (impl->subscribed) return Status::ok();
  if (!answered) {
    return Status::unavailable(impl->client_id + ": no broker answered the subscription: " +
                               impl->failures);
  }
  return Status::unavailable(impl->client_id + ": cannot connect: " + impl->failures);
}

void MqttConsumer::request_stop() {
  impl_->stop_requested = true;
  impl_->wake();
}

bool MqttConsumer::wait_stopped(std::chrono::steady_clock::time_point deadline) {
  std::unique_lock lock(impl_->mu);
  return impl_->cv.wait_until(lock, deadline, [this] { return impl_->loop_ended; });
}

}  // namespace edgesync::hub
