#include "hub/mqtt_consumer.h"

#include <mqtt/async_client.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>

#include "platform/log.h"

namespace edgesync::hub {

// Reads the broker's SUBACK: a filter it refused (not authorised, shared subscriptions not
// supported, ...) means a part of the fleet this hub will never hear, so each is logged by name.
// The first answer also tells start() that the hub is consuming.
class SubscribeListener : public mqtt::iaction_listener {
 public:
  SubscribeListener(const std::string& client_id, const std::vector<std::string>& filters)
      : client_id_(client_id), filters_(filters) {}

  void on_success(const mqtt::token& tok) override {
    const auto& codes = tok.get_subscribe_response().get_reason_codes();
    for (size_t i = 0; i < codes.size() && i < filters_.size(); ++i) {
      if (codes[i] >= mqtt::ReasonCode::UNSPECIFIED_ERROR) {
        platform::log(platform::LogLevel::kError, "subscription_refused",
                      client_id_ + ": the broker refused the subscription to " + filters_[i] +
                          ": " + mqtt::exception::reason_code_str(static_cast<int>(codes[i])));
      }
    }
    answered();
  }
  void on_failure(const mqtt::token& tok) override {
    platform::log(platform::LogLevel::kError, "subscribe_failed",
                  client_id_ + ": subscribing failed: " +
                      mqtt::exception::reason_code_str(static_cast<int>(tok.get_reason_code())));
    answered();
  }

  // True once the broker has answered a subscription (within `timeout`).
  bool wait_answered(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [this] { return answered_; });
  }

 private:
  void answered() {
    {
      std::lock_guard lock(mu_);
      answered_ = true;
    }
    cv_.notify_all();
  }

  const std::string& client_id_;
  const std::vector<std::string>& filters_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool answered_ = false;
};

struct MqttConsumer::Impl {
  HubConfig config;
  std::string client_id;
  Handler handle;
  std::unique_ptr<mqtt::async_client> client;
  std::vector<std::string> filters;
  SubscribeListener subscribed{client_id, filters};

  // Subscribing again on every connection is harmless with a session present and needed
  // without one (a session that expired while the hub was away). Runs on paho's callback
  // thread, which must not wait for the SUBACK: the listener reads it.
  void subscribe() {
    try {
      std::vector<int> qos(filters.size(), 1);
      auto names = mqtt::string_collection::create(filters);
      client->subscribe(names, qos, nullptr, subscribed);
    } catch (const std::exception& e) {
      platform::log(platform::LogLevel::kError, "subscribe_failed",
                    client_id + ": subscribing failed: " + e.what());
    }
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

MqttConsumer::~MqttConsumer() = default;

std::string MqttConsumer::client_id() const { return impl_->client_id; }

bool MqttConsumer::connected() const {
  return impl_->client && impl_->client->is_connected();
}

Status MqttConsumer::start() {
  const HubConfig::Broker& b = impl_->config.broker;
  try {
    // No paho persistence: the broker's session is what survives a hub restart.
    impl_->client = std::make_unique<mqtt::async_client>(
        b.uris.front(), impl_->client_id, mqtt::create_options(MQTTVERSION_5));
    auto builder = mqtt::connect_options_builder()
                       .mqtt_version(MQTTVERSION_5)
                       .clean_start(false)
                       .keep_alive_interval(std::chrono::seconds(30))
                       .connect_timeout(std::chrono::seconds(10))
                       .automatic_reconnect(std::chrono::seconds(1), std::chrono::seconds(30))
                       .properties({{mqtt::property::SESSION_EXPIRY_INTERVAL,
                                     static_cast<int>(b.session_expiry_s)},
                                    {mqtt::property::RECEIVE_MAXIMUM, b.receive_maximum}});
    if (b.uris.size() > 1) builder.servers(mqtt::string_collection::create(b.uris));
    if (b.uris.front().rfind("ssl://", 0) == 0 || b.uris.front().rfind("mqtts://", 0) == 0) {
      auto ssl = mqtt::ssl_options_builder()
                     .trust_store(b.ca_file)
                     .enable_server_cert_auth(true)
                     .verify(true)
                     .finalize();
      if (!b.cert_file.empty()) {
        ssl.set_key_store(b.cert_file);
        ssl.set_private_key(b.key_file);
      }
      builder.ssl(std::move(ssl));
    }
    if (!b.username.empty()) builder.user_name(b.username);
    if (!b.password.empty()) builder.password(b.password);
    Impl* impl = impl_.get();
    impl->client->set_message_callback([impl](mqtt::const_message_ptr m) {
      impl->handle(InboundMessage{m->get_topic(), m->get_payload_str()});
    });
    impl->client->set_connected_handler([impl](const std::string&) {
      platform::log(platform::LogLevel::kInfo, "hub_connected",
                    impl->client_id + ": connected to the broker");
      impl->subscribe();
    });
    impl->client->set_connection_lost_handler([impl](const std::string& cause) {
      platform::log(platform::LogLevel::kWarning, "hub_connection_lost",
                    impl->client_id + ": connection to the broker lost" +
                        (cause.empty() ? std::string() : ": " + cause) + "; reconnecting");
    });
    impl->client->connect(builder.finalize())->wait();
    // Consuming means subscribed: messages published before the broker holds the
    // subscriptions (a new session) would not reach this hub.
    if (!impl->subscribed.wait_answered(std::chrono::seconds(10))) {
      return Status::unavailable(impl->client_id + ": the broker did not answer the subscription "
                                 "within 10 s");
    }
  } catch (const mqtt::exception& e) {
    return Status::unavailable(impl_->client_id + ": cannot connect to " + b.uris.front() + ": " +
                               e.what());
  } catch (const std::exception& e) {
    return Status::unavailable(impl_->client_id + ": " + e.what());
  }
  return Status::ok();
}

void MqttConsumer::disconnect(int timeout_ms) {
  if (!impl_->client) return;
  try {
    impl_->client->disconnect()->wait_for(std::chrono::milliseconds(timeout_ms));
  } catch (const std::exception&) {
    // Already gone: the session stays on the broker either way.
  }
}

}  // namespace edgesync::hub
