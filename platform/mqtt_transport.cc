#include "platform/mqtt_transport.h"

#include <mqtt/async_client.h>

#include <deque>

#include "platform/connect_diagnosis.h"

namespace edgesync::platform {
namespace {

// What a PUBACK reason code of 0x80 or more means for the message (MQTT 5.0, 3.4.2.1).
PublishOutcome classify_refusal(int reason) {
  switch (reason) {
    case 0x90:  // topic name invalid
    case 0x95:  // packet too large
    case 0x99:  // payload format invalid
      return PublishOutcome::kNever;  // the message itself is wrong for this hub
    case 0x91:  // packet identifier in use: the session is confused; a new one sorts it out
      return PublishOutcome::kRetry;
    default:
      // 0x80 unspecified, 0x83 implementation specific, 0x87 not authorized, 0x97 quota
      // exceeded, and codes this build does not know: an ACL or a plugin that may be fixed.
      return PublishOutcome::kRefused;
  }
}

// "135 (not authorized)": the number operators find in broker docs, and what it means.
std::string reason_name(int rc) {
  std::string out = std::to_string(rc);
  const char* name = nullptr;
  switch (rc) {
    case 0x80: name = "unspecified error"; break;
    case 0x83: name = "implementation specific error"; break;
    case 0x85: name = "client identifier not valid"; break;
    case 0x86: name = "bad user name or password"; break;
    case 0x87: name = "not authorized"; break;
    case 0x88: name = "server unavailable"; break;
    case 0x89: name = "server busy"; break;
    case 0x8A: name = "banned"; break;
    case 0x90: name = "topic name invalid"; break;
    case 0x91: name = "packet identifier in use"; break;
    case 0x95: name = "packet too large"; break;
    case 0x97: name = "quota exceeded"; break;
    case 0x99: name = "payload format invalid"; break;
    default: break;
  }
  if (name) out.append(" (").append(name).append(")");
  return out;
}

int64_t varint_size(int64_t n) {
  if (n < 128) return 1;
  if (n < 16384) return 2;
  if (n < 2097152) return 3;
  return 4;
}

constexpr std::string_view kContentType = "application/json";

}  // namespace

struct MqttTransport::Impl : public mqtt::iaction_listener {
  // One record per publish in flight, handed to paho as the token's user context. Records come
  // from a pool, so the steady state allocates nothing here.
  struct Context {
    uint64_t tag;
    uint64_t generation;
  };

  MqttOptions options;
  std::function<void()> notify;
  std::unique_ptr<mqtt::async_client> client;
  mqtt::connect_options connect_options;

  std::mutex mu;
  std::vector<MqttEvent> events;         // guarded by mu
  std::deque<Context> pool_storage;      // guarded by mu; deque keeps addresses stable
  std::vector<Context*> free_contexts;   // guarded by mu
  uint64_t generation = 0;               // guarded by mu
  // The last connect failure's cause, looked up again at most once a minute per URI. Used by
  // paho's callback thread only (attempts run one at a time).
  std::string diagnosis;
  std::string diagnosed_uri;
  std::chrono::steady_clock::time_point diagnosed_at;

  class ConnectListener : public mqtt::iaction_listener {
   public:
    ConnectListener(Impl* impl, uint64_t gen) : impl_(impl), gen_(gen) {}
    void on_success(const mqtt::token& tok) override {
      MqttEvent e;
      e.kind = MqttEvent::Kind::kConnected;
      e.generation = gen_;
      try {
        // get_connect_response() returns a copy: keep it while its properties are read.
        const mqtt::connect_response response = tok.get_connect_response();
        const mqtt::properties& props = response.get_properties();
        if (props.contains(mqtt::property::RECEIVE_MAXIMUM)) {
          e.receive_maximum = mqtt::get<uint16_t>(props, mqtt::property::RECEIVE_MAXIMUM);
        }
        if (props.contains(mqtt::property::MAXIMUM_PACKET_SIZE)) {
          e.maximum_packet_size =
              mqtt::get<uint32_t>(props, mqtt::property::MAXIMUM_PACKET_SIZE);
        }
      } catch (const std::exception&) {
        // No response properties: the defaults (no limits announced) apply.
      }
      impl_->push(std::move(e));
    }
    void on_failure(const mqtt::token& tok) override {
      MqttEvent e;
      e.kind = MqttEvent::Kind::kConnectFailed;
      e.generation = gen_;
      // paho reports a CONNACK refusal's reason code as the return code, and every failure
      // before a CONNACK (TCP, the TLS handshake, no answer) as -1 without the cause.
      int rc = tok.get_return_code();
      if (rc == 0 || rc == MQTTASYNC_FAILURE) rc = static_cast<int>(tok.get_reason_code());
      if (rc >= 0x80) {
        e.detail = "connect refused by the hub: CONNACK reason code " + reason_name(rc) +
                   " (check hub.username, hub.password and the client certificate)";
      } else {
        // paho says only "-1": look again, on paho's thread (the agent's is not held up), at
        // most once a minute: a fleet reconnecting to a recovering broker must not double its
        // handshakes.
        auto now = std::chrono::steady_clock::now();
        if (impl_->diagnosis.empty() || now - impl_->diagnosed_at > std::chrono::minutes(1) ||
            impl_->diagnosed_uri != impl_->options.uri) {
          impl_->diagnosis = diagnose_connect_failure(impl_->options);
          impl_->diagnosed_at = now;
          impl_->diagnosed_uri = impl_->options.uri;
        }
        e.detail = impl_->diagnosis;
      }
      impl_->push(std::move(e));
    }

   private:
    Impl* impl_;
    uint64_t gen_;
  };
  std::deque<ConnectListener> connect_listeners;  // of the current client only

  // Reports a SUBACK that refuses a filter (reason code 0x80 or more) or a failed subscribe.
  class SubscribeListener : public mqtt::iaction_listener {
   public:
    SubscribeListener(Impl* impl, uint64_t gen, std::vector<std::string> filters)
        : impl_(impl), gen_(gen), filters_(std::move(filters)) {}
    void on_success(const mqtt::token& tok) override {
      std::string refused;
      std::vector<mqtt::ReasonCode> codes;
      try {
        // A copy, like the connect response: keep it while its codes are read.
        const mqtt::subscribe_response response = tok.get_subscribe_response();
        codes = response.get_reason_codes();
      } catch (const std::exception&) {
        // No SUBACK details: taken as granted.
      }
      for (size_t i = 0; i < codes.size() && i < filters_.size(); ++i) {
        if (codes[i] >= 0x80) {
          refused += (refused.empty() ? "" : ", ") + filters_[i] + ": " +
                     reason_name(static_cast<int>(codes[i]));
        }
      }
      if (!refused.empty()) {
        fail("subscription refused by the hub: " + refused);
        return;
      }
      MqttEvent e;
      e.kind = MqttEvent::Kind::kSubscribed;
      e.generation = gen_;
      if (!filters_.empty()) e.topic = filters_.front();
      impl_->push(std::move(e));
    }
    void on_failure(const mqtt::token& tok) override {
      const int rc = static_cast<int>(tok.get_reason_code());
      fail("subscribe failed (return code " + std::to_string(tok.get_return_code()) +
           (rc >= 0x80 ? ", reason code " + reason_name(rc) : std::string()) + ")");
    }

   private:
    void fail(std::string detail) {
      MqttEvent e;
      e.kind = MqttEvent::Kind::kSubscribeFailed;
      e.generation = gen_;
      e.detail = std::move(detail);
      if (!filters_.empty()) e.topic = filters_.front();
      impl_->push(std::move(e));
    }
    Impl* impl_;
    uint64_t gen_;
    std::vector<std::string> filters_;
  };
  std::deque<SubscribeListener> subscribe_listeners;  // of the current client only

  // The client goes first: its threads call back into the members above until it is gone.
  ~Impl() { drop_client(); }

  void drop_client() {
    if (!client) return;
    try {
      if (client->is_connected()) client->disconnect(0)->wait_for(std::chrono::milliseconds(500));
    } catch (const std::exception&) {
    }
    client.reset();
  }

  // A fresh paho client for every connection attempt: paho keeps publish commands it had not
  // yet written when a connection died, and would send them first on the next connection,
  // ahead of the resend from the watermark: the hub would see a later seq before earlier ones.
  void make_client() {
    drop_client();
    // The previous client's connect and subscribe tokens are gone with it.
    connect_listeners.clear();
    subscribe_listeners.clear();
    mqtt::create_options create(MQTTVERSION_5);
    // No offline buffer: a publish while disconnected must fail, not queue in RAM.
    create.set_send_while_disconnected(false);
    client = std::make_unique<mqtt::async_client>(options.uri, options.client_id, create,
                                                  nullptr /* no persistence */);
    // Stamped with the generation of the client it belongs to: a late loss from an earlier
    // client must not count against the attempt that replaced it.
    uint64_t gen;
    {
      std::lock_guard<std::mutex> lock(mu);
      gen = generation;
    }
    client->set_message_callback([this, gen](mqtt::const_message_ptr msg) {
      if (!msg) return;
      MqttEvent e;
      e.kind = MqttEvent::Kind::kMessage;
      e.generation = gen;
      e.topic = msg->get_topic();
      e.payload = msg->to_string();
      push(std::move(e));
    });
    client->set_connection_lost_handler([this, gen](const std::string& cause) {
      MqttEvent e;
      e.kind = MqttEvent::Kind::kConnectionLost;
      e.generation = gen;
      e.detail = cause.empty() ? "connection lost" : "connection lost: " + cause;
      push(std::move(e));
    });
  }

  void push(MqttEvent e) {
    bool first;
    {
      std::lock_guard<std::mutex> lock(mu);
      first = events.empty();
      events.push_back(std::move(e));
    }
    if (first) notify();
  }

  Context* acquire(uint64_t tag) {
    std::lock_guard<std::mutex> lock(mu);
    Context* c;
    if (free_contexts.empty()) {
      c = &pool_storage.emplace_back();
    } else {
      c = free_contexts.back();
      free_contexts.pop_back();
    }
    c->tag = tag;
    c->generation = generation;
    return c;
  }

  void finish(const mqtt::token& tok, PublishOutcome outcome, int reason_code,
              std::string detail) {
    auto* c = static_cast<Context*>(tok.get_user_context());
    if (!c) return;
    MqttEvent e;
    e.kind = MqttEvent::Kind::kPublishDone;
    e.outcome = outcome;
    e.reason_code = reason_code;
    e.detail = std::move(detail);
    bool first;
    {
      std::lock_guard<std::mutex> lock(mu);
      e.tag = c->tag;
      e.generation = c->generation;
      free_contexts.push_back(c);
      first = events.empty();
      events.push_back(std::move(e));
    }
    if (first) notify();
  }

  // Publish completions.
  void on_success(const mqtt::token& tok) override {
    int rc = static_cast<int>(tok.get_reason_code());
    if (rc >= 0x80) {
      finish(tok, classify_refusal(rc), rc, "PUBACK reason code " + reason_name(rc));
    } else {
      finish(tok, PublishOutcome::kDelivered, rc, {});
    }
  }
  void on_failure(const mqtt::token& tok) override {
    int rc = static_cast<int>(tok.get_reason_code());
    std::string detail = "publish failed: return code " + std::to_string(tok.get_return_code());
    if (rc >= 0x80) {
      finish(tok, classify_refusal(rc), rc, detail + ", reason code " + reason_name(rc));
    } else {
      finish(tok, PublishOutcome::kRetry, rc, std::move(detail));
    }
  }
};

MqttTransport::MqttTransport(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

MqttTransport::~MqttTransport() = default;

namespace {

Status build_connect_options(const MqttOptions& options, mqtt::connect_options* out) {
  try {
    auto builder = mqtt::connect_options_builder()
                       .mqtt_version(MQTTVERSION_5)
                       .clean_start(true)
                       .keep_alive_interval(std::chrono::seconds(options.keepalive_s))
                       .connect_timeout(std::chrono::seconds(options.connect_timeout_s))
                       .automatic_reconnect(false);
    if (options.uri.rfind("ssl://", 0) == 0 || options.uri.rfind("mqtts://", 0) == 0) {
      auto ssl = mqtt::ssl_options_builder()
                     .trust_store(options.ca_file)
                     .enable_server_cert_auth(true)
                     .verify(true)  // check the host name against the certificate
                     .finalize();
      if (!options.cert_file.empty()) {
        ssl.set_key_store(options.cert_file);
        ssl.set_private_key(options.key_file);
      }
      builder.ssl(std::move(ssl));
    }
    if (!options.username.empty()) builder.user_name(options.username);
    if (!options.password.empty()) builder.password(options.password);
    if (!options.will_topic.empty()) {
      mqtt::will_options will(options.will_topic, options.will_payload.data(),
                              options.will_payload.size(), 1, true);
      builder.will(std::move(will));
    }
    *out = builder.finalize();
  } catch (const std::exception& e) {
    return Status::invalid_argument(std::string("cannot set up the MQTT client: ") + e.what());
  }
  return Status::ok();
}

}  // namespace

Result<std::unique_ptr<MqttTransport>> MqttTransport::create(const MqttOptions& options,
                                                             std::function<void()> notify) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->notify = std::move(notify);
  Status s = build_connect_options(options, &impl->connect_options);
  if (!s) return s;
  return std::unique_ptr<MqttTransport>(new MqttTransport(std::move(impl)));
}

Status MqttTransport::set_options(const MqttOptions& options) {
  mqtt::connect_options connect_options;
  Status s = build_connect_options(options, &connect_options);
  if (!s) return s;
  impl_->drop_client();
  impl_->options = options;
  impl_->connect_options = std::move(connect_options);
  return Status::ok();
}

uint64_t MqttTransport::connect() {
  uint64_t gen;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    gen = ++impl_->generation;
  }
  try {
    impl_->make_client();
    auto& listener = impl_->connect_listeners.emplace_back(impl_.get(), gen);
    impl_->client->connect(impl_->connect_options, nullptr, listener);
  } catch (const std::exception& e) {
    MqttEvent ev;
    ev.kind = MqttEvent::Kind::kConnectFailed;
    ev.generation = gen;
    ev.detail = std::string("connect failed: ") + e.what();
    impl_->push(std::move(ev));
  }
  return gen;
}

namespace {

Status start_publish(MqttTransport::Impl& impl, mqtt::message_ptr msg, uint64_t tag) {
  if (!impl.client) return Status::unavailable("not connected");
  auto* ctx = impl.acquire(tag);
  try {
    impl.client->publish(std::move(msg), ctx, impl);
  } catch (const mqtt::exception& e) {
    {
      std::lock_guard<std::mutex> lock(impl.mu);
      impl.free_contexts.push_back(ctx);
    }
    // Most refusals mean the link is going down (paho marks it before the loss callback runs):
    // nothing is wrong with the message. Only these say it is.
    switch (e.get_return_code()) {
      case MQTTASYNC_BAD_UTF8_STRING:
      case MQTTASYNC_NULL_PARAMETER:
      case MQTTASYNC_TOPICNAME_TRUNCATED:
      case MQTTASYNC_BAD_STRUCTURE:
      case MQTTASYNC_BAD_QOS:
      case MQTTASYNC_BAD_MQTT_OPTION:
        return Status::invalid_argument(std::string("publish refused: ") + e.what());
      default:
        return Status::unavailable(std::string("publish not started: ") + e.what());
    }
  } catch (const std::exception& e) {
    std::lock_guard<std::mutex> lock(impl.mu);
    impl.free_contexts.push_back(ctx);
    return Status::unavailable(std::string("publish not started: ") + e.what());
  }
  return Status::ok();
}

}  // namespace

Status MqttTransport::publish(const std::string& topic, std::string_view payload,
                              const PublishIdentity& who, uint64_t tag) {
  mqtt::properties props;
  props.add({mqtt::property::CONTENT_TYPE, std::string(kContentType)});
  props.add({mqtt::property::USER_PROPERTY, "id", std::string(who.id)});
  props.add({mqtt::property::USER_PROPERTY, "seq", std::to_string(who.seq)});
  props.add({mqtt::property::USER_PROPERTY, "incarnation", std::string(who.incarnation)});
  if (!who.type.empty()) props.add({mqtt::property::USER_PROPERTY, "type", std::string(who.type)});
  if (who.version > 0) {
    props.add({mqtt::property::USER_PROPERTY, "v", std::to_string(who.version)});
  }
  return start_publish(*impl_,
                       mqtt::message::create(topic, payload.data(), payload.size(), 1, false, props),
                       tag);
}

int64_t MqttTransport::packet_size(const std::string& topic, size_t payload_size,
                                   const PublishIdentity& who) {
  // A user property is its identifier byte and two length-prefixed strings.
  auto user_property = [](std::string_view name, size_t value_size) {
    return int64_t{1} + 2 + static_cast<int64_t>(name.size()) + 2 +
           static_cast<int64_t>(value_size);
  };
  const int64_t props = 1 + 2 + static_cast<int64_t>(kContentType.size()) +
                        user_property("id", who.id.size()) +
                        user_property("seq", std::to_string(who.seq).size()) +
                        user_property("incarnation", who.incarnation.size()) +
                        (who.type.empty() ? 0 : user_property("type", who.type.size())) +
                        (who.version > 0 ? user_property("v", std::to_string(who.version).size())
                                         : 0);
  const int64_t remaining = 2 + static_cast<int64_t>(topic.size()) + 2 /* packet id */ +
                            varint_size(props) + props + static_cast<int64_t>(payload_size);
  return 1 + varint_size(remaining) + remaining;
}

namespace {
// A QoS 1 JSON message without the event's user properties; its completion has tag 0.
Status publish_plain(MqttTransport::Impl& impl, const std::string& topic,
                     std::string_view payload, bool retained) {
  mqtt::properties props;
  props.add({mqtt::property::CONTENT_TYPE, std::string(kContentType)});
  return start_publish(
      impl, mqtt::message::create(topic, payload.data(), payload.size(), 1, retained, props), 0);
}
}  // namespace

Status MqttTransport::publish_retained(const std::string& topic, std::string_view payload) {
  return publish_plain(*impl_, topic, payload, true);
}

Status MqttTransport::publish_message(const std::string& topic, std::string_view payload) {
  return publish_plain(*impl_, topic, payload, false);
}

Status MqttTransport::subscribe(const std::vector<std::string>& topic_filters) {
  if (!impl_->client) return Status::unavailable("not connected");
  uint64_t gen;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    gen = impl_->generation;
  }
  try {
    auto filters = mqtt::string_collection::create(topic_filters);
    std::vector<int> qos(topic_filters.size(), 1);
    auto& listener = impl_->subscribe_listeners.emplace_back(impl_.get(), gen, topic_filters);
    impl_->client->subscribe(filters, qos, nullptr, listener);
  } catch (const std::exception& e) {
    return Status::unavailable(std::string("subscribe not started: ") + e.what());
  }
  return Status::ok();
}

void MqttTransport::disconnect(std::chrono::milliseconds timeout) {
  try {
    if (!impl_->client || !impl_->client->is_connected()) return;
    // Wait for our own outstanding publishes, then disconnect at once: paho's disconnect
    // timeout would otherwise be spent in full even with nothing in flight.
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (const auto& tok : impl_->client->get_pending_delivery_tokens()) {
      auto left = deadline - std::chrono::steady_clock::now();
      if (left <= std::chrono::milliseconds(0)) break;
      tok->wait_for(std::chrono::duration_cast<std::chrono::milliseconds>(left));
    }
    impl_->client->disconnect(0)->wait_for(std::chrono::milliseconds(1000));
  } catch (const std::exception&) {
    // Already gone: nothing to clean up on our side.
  }
}

bool MqttTransport::is_connected() const {
  return impl_->client && impl_->client->is_connected();
}

void MqttTransport::take_events(std::vector<MqttEvent>* out) {
  out->clear();
  std::lock_guard<std::mutex> lock(impl_->mu);
  out->swap(impl_->events);
}

}  // namespace edgesync::platform
