#include "platform/mqtt_transport.h"

#include <mqtt/async_client.h>

#include <deque>

namespace edgesync::platform {
namespace {

// PUBACK reason codes after which a resend cannot succeed: the message itself is wrong for this
// hub. Everything else (quota exceeded, not authorized while an ACL is being fixed, unspecified
// errors) is retried with backoff rather than dropped into the dead-letter table.
bool is_permanent(int reason) {
  switch (reason) {
    case 0x90:  // topic name invalid
    case 0x95:  // packet too large
    case 0x99:  // payload format invalid
      return true;
    default:
      return false;
  }
}

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

  class ConnectListener : public mqtt::iaction_listener {
   public:
    ConnectListener(Impl* impl, uint64_t gen) : impl_(impl), gen_(gen) {}
    void on_success(const mqtt::token& tok) override {
      MqttEvent e;
      e.kind = MqttEvent::Kind::kConnected;
      e.generation = gen_;
      try {
        const auto& props = tok.get_connect_response().get_properties();
        if (props.contains(mqtt::property::RECEIVE_MAXIMUM)) {
          e.receive_maximum = mqtt::get<uint16_t>(props, mqtt::property::RECEIVE_MAXIMUM);
        }
      } catch (const std::exception&) {
      }
      impl_->push(std::move(e));
    }
    void on_failure(const mqtt::token& tok) override {
      MqttEvent e;
      e.kind = MqttEvent::Kind::kConnectFailed;
      e.generation = gen_;
      e.detail = "connect failed: return code " + std::to_string(tok.get_return_code());
      if (tok.get_reason_code() != 0) {
        e.detail += ", reason code " + std::to_string(static_cast<int>(tok.get_reason_code()));
      }
      impl_->push(std::move(e));
    }

   private:
    Impl* impl_;
    uint64_t gen_;
  };
  std::deque<ConnectListener> connect_listeners;  // of the current client only

  // A fresh paho client for every connection attempt: paho keeps publish commands it had not
  // yet written when a connection died, and would send them first on the next connection,
  // ahead of the resend from the watermark: the hub would see a later seq before earlier ones.
  void make_client() {
    if (client) {
      try {
        if (client->is_connected()) client->disconnect(0)->wait_for(std::chrono::milliseconds(500));
      } catch (const std::exception&) {
      }
      client.reset();
    }
    // The previous client's connect tokens are gone with it.
    connect_listeners.clear();
    mqtt::create_options create(MQTTVERSION_5);
    // No offline buffer: a publish while disconnected must fail, not queue in RAM.
    create.set_send_while_disconnected(false);
    client = std::make_unique<mqtt::async_client>(options.uri, options.client_id, create,
                                                  nullptr /* no persistence */);
    client->set_connection_lost_handler([this](const std::string& cause) {
      MqttEvent e;
      e.kind = MqttEvent::Kind::kConnectionLost;
      {
        std::lock_guard<std::mutex> lock(mu);
        e.generation = generation;
      }
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

  void finish(const mqtt::token& tok, PublishOutcome outcome, std::string detail) {
    auto* c = static_cast<Context*>(tok.get_user_context());
    if (!c) return;
    MqttEvent e;
      e.kind = MqttEvent::Kind::kPublishDone;
    e.outcome = outcome;
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
      finish(tok, is_permanent(rc) ? PublishOutcome::kNever : PublishOutcome::kRetry,
             "PUBACK reason code " + std::to_string(rc));
    } else {
      finish(tok, PublishOutcome::kDelivered, {});
    }
  }
  void on_failure(const mqtt::token& tok) override {
    int rc = static_cast<int>(tok.get_reason_code());
    std::string detail = "publish failed: return code " + std::to_string(tok.get_return_code());
    if (rc != 0) detail += ", reason code " + std::to_string(rc);
    finish(tok, is_permanent(rc) ? PublishOutcome::kNever : PublishOutcome::kRetry,
           std::move(detail));
  }
};

MqttTransport::MqttTransport(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

MqttTransport::~MqttTransport() {
  if (impl_ && impl_->client) {
    try {
      if (impl_->client->is_connected()) impl_->client->disconnect(0)->wait_for(1000);
    } catch (const std::exception&) {
    }
  }
}

Result<std::unique_ptr<MqttTransport>> MqttTransport::create(const MqttOptions& options,
                                                             std::function<void()> notify) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->notify = std::move(notify);
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
    impl->connect_options = builder.finalize();
  } catch (const std::exception& e) {
    return Status::invalid_argument(std::string("cannot set up the MQTT client: ") + e.what());
  }
  return std::unique_ptr<MqttTransport>(new MqttTransport(std::move(impl)));
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
  } catch (const std::exception& e) {
    std::lock_guard<std::mutex> lock(impl.mu);
    impl.free_contexts.push_back(ctx);
    return Status::unavailable(std::string("publish not started: ") + e.what());
  }
  return Status::ok();
}

}  // namespace

Status MqttTransport::publish(const std::string& topic, std::string_view payload,
                              std::string_view id, int64_t seq, uint64_t tag) {
  mqtt::properties props;
  props.add({mqtt::property::CONTENT_TYPE, "application/json"});
  props.add({mqtt::property::USER_PROPERTY, "id", std::string(id)});
  props.add({mqtt::property::USER_PROPERTY, "seq", std::to_string(seq)});
  return start_publish(*impl_,
                       mqtt::message::create(topic, payload.data(), payload.size(), 1, false, props),
                       tag);
}

Status MqttTransport::publish_retained(const std::string& topic, std::string_view payload) {
  mqtt::properties props;
  props.add({mqtt::property::CONTENT_TYPE, "application/json"});
  return start_publish(*impl_,
                       mqtt::message::create(topic, payload.data(), payload.size(), 1, true, props),
                       0);
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
