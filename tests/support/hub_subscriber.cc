#include "tests/support/hub_subscriber.h"

#include <mqtt/async_client.h>

#include <stdexcept>

namespace edgesync::test {
namespace {

constexpr uint32_t kSessionExpiry = 24 * 3600;

ReceivedMessage convert(const mqtt::const_message_ptr& msg) {
  ReceivedMessage m;
  m.topic = msg->get_topic();
  m.payload = msg->get_payload_str();
  m.retained = msg->is_retained();
  m.qos = msg->get_qos();
  const mqtt::properties& props = msg->get_properties();
  if (props.contains(mqtt::property::CONTENT_TYPE)) {
    m.content_type = mqtt::get<std::string>(props, mqtt::property::CONTENT_TYPE);
  }
  size_t n = props.count(mqtt::property::USER_PROPERTY);
  for (size_t i = 0; i < n; ++i) {
    auto kv = mqtt::get<mqtt::string_pair>(props, mqtt::property::USER_PROPERTY, i);
    const std::string& k = std::get<0>(kv);
    const std::string& v = std::get<1>(kv);
    m.user_properties.emplace_back(k, v);
    if (k == "id" && !m.prop_id) m.prop_id = v;
    if (k == "seq" && !m.prop_seq) m.prop_seq = v;
    if (k == "incarnation" && !m.prop_incarnation) m.prop_incarnation = v;
  }
  return m;
}

}  // namespace

HubSubscriber::HubSubscriber(SubscriberOptions options) : options_(std::move(options)) {
  client_ = std::make_unique<mqtt::async_client>(options_.uri, options_.client_id,
                                                 mqtt::create_options(MQTTVERSION_5));
  client_->set_message_callback([this](mqtt::const_message_ptr msg) {
    if (msg) on_message(convert(msg));
  });
  client_->set_connected_handler([this](const std::string&) {
    bool reconnect;
    {
      std::lock_guard<std::mutex> lock(mu_);
      reconnect = ++connections_ > 1;
    }
    cv_.notify_all();
    if (reconnect) {
      // The persistent session normally keeps the subscription; subscribing again is harmless
      // and covers a broker that lost its state. Retained messages only for a new subscription.
      try {
        client_->subscribe(
            options_.topic_filter, options_.qos,
            mqtt::subscribe_options(false, false, mqtt::subscribe_options::SEND_RETAINED_ON_NEW));
      } catch (const std::exception&) {
        // The next reconnect tries again.
      }
    }
  });
}

HubSubscriber::~HubSubscriber() {
  try {
    disconnect();
  } catch (...) {
  }
  // paho throws from these while it is still reconnecting (the broker stopped by the test): a
  // destructor must not, or the whole test binary aborts.
  try {
    client_->set_message_callback(nullptr);
    client_->set_connected_handler(nullptr);
  } catch (...) {
  }
}

void HubSubscriber::connect(std::chrono::milliseconds timeout) {
  auto ssl = mqtt::ssl_options_builder()
                 .trust_store(options_.ca_file)
                 .key_store(options_.cert_file)
                 .private_key(options_.key_file)
                 .enable_server_cert_auth(true)
                 .verify(true)
                 .finalize();
  mqtt::properties props;
  props.add(mqtt::property(mqtt::property::SESSION_EXPIRY_INTERVAL,
                           options_.persistent_session ? kSessionExpiry : 0));
  auto opts = mqtt::connect_options_builder()
                  .mqtt_version(MQTTVERSION_5)
                  .clean_start(!options_.persistent_session)
                  .properties(props)
                  .keep_alive_interval(std::chrono::seconds(10))
                  .connect_timeout(std::chrono::seconds(5))
                  .automatic_reconnect(std::chrono::seconds(1), std::chrono::seconds(2))
                  .ssl(ssl)
                  .finalize();
  if (!options_.username.empty()) {
    opts.set_user_name(options_.username);
    opts.set_password(options_.password);
  }
  try {
    auto tok = client_->connect(opts);
    if (!tok->wait_for(timeout)) throw std::runtime_error("connect timed out");
    auto sub = client_->subscribe(
        options_.topic_filter, options_.qos,
        mqtt::subscribe_options(false, false, mqtt::subscribe_options::SEND_RETAINED_ON_SUBSCRIBE));
    if (!sub->wait_for(timeout)) throw std::runtime_error("subscribe timed out");
  } catch (const std::exception& e) {
    throw std::runtime_error("hub subscriber " + options_.client_id + " cannot connect to " +
                             options_.uri + ": " + e.what());
  }
}

void HubSubscriber::disconnect() {
  if (client_ && client_->is_connected()) {
    client_->disconnect()->wait_for(std::chrono::seconds(5));
  }
}

bool HubSubscriber::is_connected() const { return client_->is_connected(); }

void HubSubscriber::publish(const std::string& topic, const std::string& payload, bool retained,
                            std::chrono::milliseconds timeout) {
  try {
    auto tok = client_->publish(topic, payload.data(), payload.size(), 1, retained);
    if (!tok->wait_for(timeout)) throw std::runtime_error("no PUBACK in time");
  } catch (const std::exception& e) {
    throw std::runtime_error("hub subscriber " + options_.client_id + " cannot publish to " +
                             topic + ": " + e.what());
  }
}

int HubSubscriber::connections() const {
  std::lock_guard<std::mutex> lock(mu_);
  return connections_;
}

void HubSubscriber::on_message(const ReceivedMessage& m) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    messages_.push_back(m);
    if (m.prop_seq) seqs_.insert(*m.prop_seq);
  }
  cv_.notify_all();
}

HubSubscriber::Messages HubSubscriber::messages() const {
  std::lock_guard<std::mutex> lock(mu_);
  return messages_;
}

size_t HubSubscriber::count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return messages_.size();
}

bool HubSubscriber::wait_for(const Predicate& pred, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return pred(messages_); });
}

bool HubSubscriber::wait_for_count(size_t n, std::chrono::milliseconds timeout) {
  return wait_for([n](const Messages& m) { return m.size() >= n; }, timeout);
}

size_t HubSubscriber::distinct_seq_count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return seqs_.size();
}

bool HubSubscriber::wait_for_distinct_seqs(size_t n, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return seqs_.size() >= n; });
}

void HubSubscriber::clear() {
  std::lock_guard<std::mutex> lock(mu_);
  messages_.clear();
  seqs_.clear();
}

}  // namespace edgesync::test
