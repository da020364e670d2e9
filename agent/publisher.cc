#include "agent/publisher.h"

#include <algorithm>
#include <iostream>

#include "agent/backoff.h"
#include "agent/hub_message.h"

namespace edgesync::agent {

namespace {
// A connection that stayed up this long resets the backoff; a hub that accepts and then drops
// us at once keeps backing off instead of being hammered.
constexpr auto kStableConnection = std::chrono::seconds(30);
// Events read from the outbox per query; memory does not grow with the backlog.
constexpr size_t kMinReadBatch = 256;
}  // namespace

const char* hub_state_name(HubState s) {
  switch (s) {
    case HubState::kDisconnected: return "disconnected";
    case HubState::kConnecting: return "connecting";
    case HubState::kConnected: return "connected";
    case HubState::kStopped: return "stopped";
  }
  return "disconnected";
}

Publisher::Publisher(asio::io_context& io, const Config& config, storage::Outbox& outbox,
                     std::function<void(HubState, const std::string&)> on_state)
    : io_(io),
      config_(config),
      outbox_(outbox),
      on_state_(std::move(on_state)),
      retry_timer_(io),
      linger_timer_(io),
      rng_(std::random_device{}()) {
  status_topic_ = config_.topic_base() + "/status";
}

Publisher::~Publisher() = default;

Status Publisher::start() {
  platform::MqttOptions o;
  o.uri = config_.hub.uri;
  o.client_id = config_.hub.client_id;
  o.ca_file = config_.hub.ca_file;
  o.cert_file = config_.hub.cert_file;
  o.key_file = config_.hub.key_file;
  o.username = config_.hub.username;
  o.password = config_.hub.password;
  o.keepalive_s = static_cast<int>(config_.hub.keepalive_s);
  o.will_topic = status_topic_;
  o.will_payload = build_status_payload(config_, false, "connection lost");
  auto t = platform::MqttTransport::create(o, [this] {
    // paho's thread: only hand over to ours.
    asio::post(io_, [this] { on_transport_events(); });
  });
  if (!t) return t.status();
  transport_ = std::move(*t);
  acked_through_ = outbox_.delivered_seq();
  // On the delivery thread: paho starts its own threads on the first connect, and they take
  // that thread's scheduling class (see run_agent).
  asio::post(io_, [this] { connect(); });
  return Status::ok();
}

void Publisher::set_state(HubState s, const std::string& detail) {
  state_ = s;
  if (on_state_) on_state_(s, detail);
}

void Publisher::connect() {
  if (state_ == HubState::kStopped) return;
  set_state(HubState::kConnecting, "");
  generation_ = transport_->connect();
}

void Publisher::connection_down(const std::string& why) {
  // Already down (a failed publish came before the loss event): one backoff per loss.
  if (state_ == HubState::kStopped || state_ == HubState::kDisconnected) return;
  bool was_stable = state_ == HubState::kConnected &&
                    std::chrono::steady_clock::now() - connected_at_ >= kStableConnection;
  if (was_stable) attempt_ = 0;
  inflight_.clear();
  buffer_.clear();
  buffer_pos_ = 0;
  set_state(HubState::kDisconnected, why);
  std::cerr << "edgesync: hub " << config_.hub.uri << ": " << why << "\n";

  auto delay = backoff_delay(attempt_, config_.retry.initial_ms, config_.retry.max_ms, rng_);
  ++attempt_;
  retry_timer_.expires_after(delay);
  retry_timer_.async_wait([this](asio::error_code ec) {
    if (!ec) connect();
  });
}

void Publisher::on_transport_events() {
  transport_->take_events(&events_);
  for (const auto& e : events_) {
    // Anything from an earlier connection attempt is stale: that session is gone.
    if (e.generation != generation_) continue;
    switch (e.kind) {
      case platform::MqttEvent::Kind::kConnected: {
        if (state_ == HubState::kStopped) break;
        connected_at_ = std::chrono::steady_clock::now();
        size_t window = static_cast<size_t>(config_.hub.max_inflight);
        if (e.receive_maximum > 0) window = std::min(window, size_t(e.receive_maximum));
        window_ = std::max<size_t>(window, 1);
        inflight_.clear();
        buffer_.clear();
        buffer_pos_ = 0;
        read_through_ = acked_through_;
        outbox_drained_ = false;
        set_state(HubState::kConnected, "");
        std::cerr << "edgesync: connected to " << config_.hub.uri << " (window " << window_
                  << ", resending from seq " << acked_through_ + 1 << ")\n";
        Status s = transport_->publish_retained(status_topic_,
                                                build_status_payload(config_, true, ""));
        if (!s) std::cerr << "edgesync: status publish: " << s.to_string() << "\n";
        fill();
        break;
      }
      case platform::MqttEvent::Kind::kConnectFailed:
      case platform::MqttEvent::Kind::kConnectionLost:
        connection_down(e.detail);
        break;
      case platform::MqttEvent::Kind::kPublishDone:
        handle_publish_done(e);
        break;
    }
  }
  if (state_ == HubState::kConnected) fill();
}

void Publisher::handle_publish_done(const platform::MqttEvent& e) {
  // Acks still count after stop() began: they move the watermark and spare duplicates.
  bool live = state_ == HubState::kConnected || state_ == HubState::kStopped;
  if (e.tag == 0 || !live || inflight_.empty()) return;
  int64_t seq = static_cast<int64_t>(e.tag);
  int64_t index = seq - inflight_.front().seq;
  if (index < 0 || index >= static_cast<int64_t>(inflight_.size())) return;
  switch (e.outcome) {
    case platform::PublishOutcome::kDelivered:
      inflight_[index].acked = true;
      break;
    case platform::PublishOutcome::kNever: {
      // The hub will never take this message: keep it, with the reason, and move on.
      std::vector<storage::StoredEvent> one;
      Status s = outbox_.read_pending(seq - 1, 1, &one);
      if (s && !one.empty() && one.front().seq == seq) {
        std::cerr << "edgesync: seq " << seq << " dead-lettered: " << e.detail << "\n";
        outbox_.dead_letter(one.front(), e.detail);
        inflight_[index].acked = true;
      } else {
        connection_down("cannot dead-letter seq " + std::to_string(seq) + ": " + s.to_string());
        return;
      }
      break;
    }
    case platform::PublishOutcome::kRetry:
      if (state_ == HubState::kStopped) return;
      // Resend everything from the watermark on a fresh session.
      transport_->disconnect(std::chrono::milliseconds(0));
      connection_down("seq " + std::to_string(seq) + " not acknowledged: " + e.detail);
      return;
  }
  int64_t before = acked_through_;
  while (!inflight_.empty() && inflight_.front().acked) {
    acked_through_ = inflight_.front().seq;
    inflight_.pop_front();
  }
  if (acked_through_ != before) outbox_.mark_delivered(acked_through_);
}

void Publisher::wake() {
  if (state_ != HubState::kConnected) {
    outbox_drained_ = false;  // read again on connect
    return;
  }
  // hub.linger_ms 0 (the default): at once, if the window has room (fill() stops at a full
  // window; acks refill it). Above 0, an operator's opt-in: events arriving one at a time go
  // out in bursts, one per linger period, which saves paho, the broker and the delivery thread
  // a wake-up per event; an event after a quiet spell still goes out at once.
  const auto linger = std::chrono::milliseconds(config_.hub.linger_ms);
  const auto now = std::chrono::steady_clock::now();
  if (now >= last_burst_ + linger) {
    last_burst_ = now;
    fill_new_events();
    return;
  }
  if (linger_armed_) return;
  linger_armed_ = true;
  linger_timer_.expires_at(last_burst_ + linger);
  linger_timer_.async_wait([this](asio::error_code ec) {
    linger_armed_ = false;
    if (ec || state_ != HubState::kConnected) return;
    last_burst_ = std::chrono::steady_clock::now();
    fill_new_events();
  });
}

void Publisher::fill_new_events() {
  outbox_drained_ = false;
  fill();
}

void Publisher::fill() {
  while (inflight_.size() < window_) {
    if (buffer_pos_ == buffer_.size()) {
      if (outbox_drained_) return;
      // Asked before reading: an event committed after this read's snapshot then wakes us.
      wants_wake_ = true;
      Status s = outbox_.read_pending(read_through_, std::max(window_, kMinReadBatch), &buffer_);
      buffer_pos_ = 0;
      if (!s) {
        std::cerr << "edgesync: cannot read the outbox: " << s.to_string() << "\n";
        transport_->disconnect(std::chrono::milliseconds(0));
        connection_down("outbox read failed");
        return;
      }
      if (buffer_.empty()) {
        outbox_drained_ = true;  // until wake()
        return;
      }
    }
    const storage::StoredEvent& ev = buffer_[buffer_pos_];
    build_event_topic(config_, ev, &topic_);
    build_event_payload(config_, ev, &payload_);
    Status s = transport_->publish(topic_, payload_, ev.id, ev.seq, static_cast<uint64_t>(ev.seq));
    if (!s) {
      // The connection is going away; its loss event follows and triggers the resend.
      return;
    }
    inflight_.push_back({ev.seq, false});
    read_through_ = ev.seq;
    ++buffer_pos_;
  }
}

void Publisher::stop() {
  retry_timer_.cancel();
  linger_timer_.cancel();
  bool was_connected = state_ == HubState::kConnected;
  set_state(HubState::kStopped, "");
  if (was_connected && transport_) {
    transport_->publish_retained(status_topic_,
                                 build_status_payload(config_, false, "agent stopped"));
    // Gives outstanding publishes up to 2 s to be acknowledged before the session ends.
    transport_->disconnect(std::chrono::milliseconds(2000));
    on_transport_events();  // take the final acks so the watermark moves past them
  }
}

}  // namespace edgesync::agent
