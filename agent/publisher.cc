#include "agent/publisher.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <iostream>

#include "agent/backoff.h"
#include "agent/config_layers.h"
#include "agent/hub_message.h"
#include "events/resend.h"
#include "platform/clock.h"
#include "platform/log.h"

namespace edgesync::agent {

namespace {
// A connection that stayed up this long resets the backoff; a hub that accepts and then drops
// us at once keeps backing off instead of being hammered.
constexpr auto kStableConnection = std::chrono::seconds(30);
void warn(std::string_view event, const std::string& message, platform::LogFields fields = {}) {
  platform::log(platform::LogLevel::kWarning, event, message, fields);
}
// Events read from the outbox per query; memory does not grow with the backlog.
constexpr size_t kMinReadBatch = 256;
// Completions of dead-letter notices carry the seq with this bit set.
constexpr uint64_t kNoticeTag = uint64_t{1} << 62;
// Completions of messages sent again for a resend request carry the seq with this bit set.
constexpr uint64_t kResendTag = uint64_t{1} << 61;
// paho refusing to start the same publish this many times in a row (each on a new session)
// means it never will: the event is dead-lettered rather than block the stream.
constexpr int kMaxSyncRefusals = 3;
}  // namespace

const char* hub_state_name(HubState s) {
  switch (s) {
    case HubState::kDisconnected:
      return "disconnected";
    case HubState::kConnecting:
      return "connecting";
    case HubState::kConnected:
      return "connected";
    case HubState::kStopped:
      return "stopped";
  }
  return "disconnected";
}

Publisher::Publisher(asio::io_context& io, const Config& config, storage::Outbox& outbox,
                     std::function<void(HubState, const std::string&)> on_state)
    : io_(io),
      config_(config),
      outbox_(outbox),
      on_state_(std::move(on_state)),
      park_timer_(io),
      stall_timer_(io),
      retry_timer_(io),
      linger_timer_(io),
      rng_(std::random_device{}()) {
  status_topic_ = config_.topic_base() + "/status";
  dead_letter_topic_ = dead_letter_topic(config_);
}

Publisher::~Publisher() = default;

Status Publisher::start() {
  Status s = make_transport();
  if (!s) return s;
  acked_through_ = outbox_.delivered_seq();
  // On the delivery thread: paho starts its own threads on the first connect, and they take
  // that thread's scheduling class (see run_agent).
  asio::post(io_, [this] { connect(); });
  return Status::ok();
}

platform::MqttOptions Publisher::transport_options() const {
  platform::MqttOptions o;
  o.uri = current_uri();
  o.client_id = config_.hub.client_id;
  o.ca_file = config_.hub.ca_file;
  o.cert_file = config_.hub.cert_file;
  o.key_file = config_.hub.key_file;
  o.username = config_.hub.username;
  o.password = config_.hub.password;
  o.keepalive_s = static_cast<int>(config_.hub.keepalive_s);
  o.will_topic = status_topic_;
  o.will_payload = build_status_payload(config_, outbox_facts(outbox_), false, "connection lost");
  return o;
}

Status Publisher::make_transport() {
  auto t = platform::MqttTransport::create(transport_options(), [this] {
    // paho's thread: only hand over to ours.
    asio::post(io_, [this] { on_transport_events(); });
  });
  if (!t) return t.status();
  transport_ = std::move(*t);
  return Status::ok();
}

void Publisher::set_config_channel(
    std::vector<std::string> topics,
    std::function<void(const std::string&, const std::string&)> on_message,
    std::function<void(uint64_t)> on_subscribed) {
  config_topics_ = std::move(topics);
  on_config_message_ = std::move(on_message);
  on_config_subscribed_ = std::move(on_subscribed);
}

void Publisher::reconfigure(const Config& config, bool reconnect, uint64_t epoch) {
  config_ = config;
  config_epoch_ = epoch;
  if (!reconnect || state_ == HubState::kStopped) return;
  uri_index_ = 0;
  platform::log(platform::LogLevel::kNotice, "hub_reconfigured",
                "hub connection settings changed: reconnecting to " + current_uri(),
                {{"uri", current_uri()}});
  // The old session goes first, then everything held for it, as after a lost connection; the
  // new one connects at once. The transport object stays: paho's callbacks for the old client
  // may still be running into it, and are stale by their generation.
  if (state_ != HubState::kDisconnected) {
    connection_down("reconnecting with a new configuration", /*retry=*/false);
  }
  retry_timer_.cancel();
  attempt_ = 0;
  Status s = transport_->set_options(transport_options());
  if (!s) {
    // Validation checked these settings; if paho still refuses them, the old ones stay and the
    // agent keeps retrying with them (a push on probation is rolled back).
    platform::log(platform::LogLevel::kError, "hub_options", s.to_string());
  }
  connect();
}

void Publisher::publish_config_status(std::string payload) {
  config_status_ = std::move(payload);
  if (state_ != HubState::kConnected) return;
  Status s = transport_->publish_retained(config_status_topic(config_), config_status_);
  if (!s) warn("publish_failed", "config status publish: " + s.to_string());
}

void Publisher::publish_health(const std::string& payload) {
  if (state_ != HubState::kConnected) return;
  Status s = transport_->publish_retained(config_.topic_base() + "/health", payload);
  if (!s) warn("publish_failed", "health publish: " + s.to_string());
}

void Publisher::refresh_status() {
  if (state_ == HubState::kConnected) publish_status();
}

void Publisher::set_state(HubState s, const std::string& detail) {
  state_ = s;
  if (on_state_) on_state_(s, detail);
}

void Publisher::connect() {
  if (state_ == HubState::kStopped) return;
  // One attempt at a time: a retry still armed would start another over this one.
  retry_timer_.cancel();
  set_state(HubState::kConnecting, "");
  generation_ = transport_->connect();
}

std::string Publisher::current_uri() const {
  if (uri_index_ == 0 || uri_index_ > config_.hub.fallback_uris.size()) return config_.hub.uri;
  return config_.hub.fallback_uris[uri_index_ - 1];
}

bool Publisher::fail_over(const std::string& why) {
  if (config_.hub.fallback_uris.empty() || state_ != HubState::kConnecting) return false;
  const std::string failed = current_uri();
  uri_index_ = (uri_index_ + 1) % (config_.hub.fallback_uris.size() + 1);
  Status s = transport_->set_options(transport_options());
  if (!s) platform::log(platform::LogLevel::kError, "hub_options", s.to_string());
  // Back at the first: every broker failed this round, so the usual backoff applies.
  if (uri_index_ == 0) return false;
  counters_->set_last_error(why, platform::unix_ms());
  platform::log(platform::LogLevel::kWarning, "hub_failover",
                "hub " + failed + ": " + why + "; trying " + current_uri(),
                {{"uri", failed}, {"reason", why}, {"next_uri", current_uri()}});
  set_state(HubState::kDisconnected, why);
  asio::post(io_, [this] {
    if (state_ == HubState::kDisconnected) connect();
  });
  return true;
}

void Publisher::connection_down(const std::string& why, bool retry) {
  // Already down (a failed publish came before the loss event): one backoff per loss.
  if (state_ == HubState::kStopped || state_ == HubState::kDisconnected) return;
  const bool was_connected = state_ == HubState::kConnected;
  const bool was_stable =
      was_connected && std::chrono::steady_clock::now() - connected_at_ >= kStableConnection;
  if (was_stable) attempt_ = 0;
  inflight_.clear();
  sent_ = 0;
  resend_jobs_.clear();
  resend_sent_ = 0;
  for (auto& [seq, r] : refused_) r.parked = false;  // resent from the watermark
  parked_ = 0;
  park_timer_.cancel();
  stall_timer_.cancel();
  buffer_.clear();
  buffer_pos_ = 0;
  counters_->set_last_error(why, platform::unix_ms());
  set_state(HubState::kDisconnected, why);
  if (!retry) return;

  // A connection that was up when it went is spread (a broker restart drops the fleet at
  // once, a second one soon after too); a failed attempt backs off as usual.
  auto delay = was_connected
                   ? delay_after_loss(attempt_, config_.retry.initial_ms, config_.retry.max_ms,
                                      config_.retry.reconnect_spread_ms, rng_)
                   : backoff_delay(attempt_, config_.retry.initial_ms, config_.retry.max_ms, rng_);
  ++attempt_;
  const int64_t delay_ms = std::chrono::duration_cast<std::chrono::milliseconds>(delay).count();
  counters_->next_retry_ms.store(platform::unix_ms() + delay_ms, AgentCounters::kRelaxed);
  char backoff[32];
  std::snprintf(backoff, sizeof backoff, "%.1f s", delay_ms / 1000.0);
  platform::log(platform::LogLevel::kWarning, "hub_disconnected",
                "hub " + current_uri() + ": " + why + " (next attempt in " + backoff + ")",
                {{"uri", current_uri()},
                 {"reason", why},
                 {"attempt", std::to_string(attempt_)},
                 {"backoff_ms", std::to_string(delay_ms)}});
  retry_timer_.expires_after(delay);
  retry_timer_.async_wait([this](asio::error_code ec) {
    if (!ec && state_ == HubState::kDisconnected) connect();
  });
}

void Publisher::on_transport_events() {
  transport_->take_events(&events_);
  for (const auto& e : events_) {
    // Anything from an earlier connection attempt is stale: that session is gone.
    if (e.generation != generation_) continue;
    switch (e.kind) {
      case platform::MqttEvent::Kind::kConnected: {
        if (state_ != HubState::kConnecting) break;
        connected_at_ = std::chrono::steady_clock::now();
        size_t window = static_cast<size_t>(config_.hub.max_inflight);
        if (e.receive_maximum > 0) window = std::min(window, size_t(e.receive_maximum));
        window_ = std::max<size_t>(window, 1);
        max_packet_ = e.maximum_packet_size;
        inflight_.clear();
        sent_ = 0;
        resend_jobs_.clear();
        resend_sent_ = 0;
        buffer_.clear();
        buffer_pos_ = 0;
        read_through_ = acked_through_;
        outbox_drained_ = false;
        counters_->connects.fetch_add(1, AgentCounters::kRelaxed);
        counters_->next_retry_ms.store(0, AgentCounters::kRelaxed);
        set_state(HubState::kConnected, "");
        platform::log(platform::LogLevel::kNotice, "hub_connected",
                      "connected to " + current_uri() + " (window " + std::to_string(window_) +
                          (max_packet_ > 0 ? ", broker's maximum packet " +
                                                 std::to_string(max_packet_) + " bytes"
                                           : "") +
                          ", resending from seq " + std::to_string(acked_through_ + 1) + ")",
                      {{"uri", current_uri()},
                       {"window", std::to_string(window_)},
                       {"resend_from_seq", std::to_string(acked_through_ + 1)}});
        publish_status();
        if (!config_topics_.empty()) {
          Status sub = transport_->subscribe(config_topics_);
          if (!sub) warn("subscribe_failed", "config topics: " + sub.to_string());
        }
        resend_topic_ = events::resend_request_topic(config_.hub.topic_prefix,
                                                     config_.device.store_id, config_.device.id);
        if (Status sub = transport_->subscribe({resend_topic_}); !sub) {
          warn("subscribe_failed", "resend topic: " + sub.to_string());
        }
        if (!config_status_.empty()) {
          transport_->publish_retained(config_status_topic(config_), config_status_);
        }
        fill();
        break;
      }
      case platform::MqttEvent::Kind::kMessage:
        if (e.topic == resend_topic_) {
          on_resend_request(e.payload);
        } else if (on_config_message_) {
          on_config_message_(e.topic, e.payload);
        }
        break;
      case platform::MqttEvent::Kind::kSubscribed:
        if (e.topic == resend_topic_) break;
        if (on_config_subscribed_) on_config_subscribed_(config_epoch_);
        break;
      case platform::MqttEvent::Kind::kSubscribeFailed:
        if (e.topic == resend_topic_) {
          platform::log(platform::LogLevel::kWarning, "resend_topic_refused",
                        e.detail +
                            ": the hub cannot ask this box to send lost events again "
                            "(the broker's ACL must let it subscribe to " +
                            resend_topic_ + ")");
          break;
        }
        warn("subscribe_refused", "config topics: " + e.detail +
                                      ": pushed configuration does not reach this box (check "
                                      "the hub's ACL)");
        break;
      case platform::MqttEvent::Kind::kConnectFailed:
        // Another broker of the cluster is tried at once; a round of all of them backs off.
        if (fail_over(e.detail)) break;
        connection_down(e.detail);
        break;
      case platform::MqttEvent::Kind::kConnectionLost:
        // The broker it was on is tried first: a dropped connection is often the link's.
        connection_down(e.detail);
        break;
      case platform::MqttEvent::Kind::kPublishDone:
        handle_publish_done(e);
        break;
    }
  }
  if (state_ == HubState::kConnected) {
    if (parked_ > 0) retry_parked();  // acks may have freed room for a due retry
    if (state_ == HubState::kConnected) fill();
  }
}

size_t Publisher::index_of(int64_t seq) const {
  if (inflight_.empty()) return SIZE_MAX;
  int64_t index = seq - inflight_.front().seq;
  if (index < 0 || index >= static_cast<int64_t>(inflight_.size())) return SIZE_MAX;
  return static_cast<size_t>(index);
}

void Publisher::handle_publish_done(const platform::MqttEvent& e) {
  // Acks still count after stop() began: they move the watermark and spare duplicates.
  bool live = state_ == HubState::kConnected || state_ == HubState::kStopped;
  if (e.tag == 0 || !live) return;
  last_progress_ = std::chrono::steady_clock::now();
  if ((e.tag & kResendTag) != 0) {
    // Sent again for the hub: nothing in the stream waits for it. A refusal now is the broker's
    // (the event went through before); the hub's next request says whether it arrived.
    if (resend_sent_ > 0) --resend_sent_;
    if (e.outcome != platform::PublishOutcome::kDelivered && state_ != HubState::kStopped) {
      const int64_t seq = static_cast<int64_t>(e.tag & ~(kResendTag | kNoticeTag));
      warn("resend_refused",
           "seq " + std::to_string(seq) + " sent again for the hub, not acknowledged: " + e.detail,
           {{"seq", std::to_string(seq)}});
    }
    return;
  }
  const bool notice = (e.tag & kNoticeTag) != 0;
  const int64_t seq = static_cast<int64_t>(e.tag & ~kNoticeTag);
  const size_t index = index_of(seq);
  if (index == SIZE_MAX || inflight_[index].slot != Slot::kSent) return;

  if (e.outcome == platform::PublishOutcome::kRetry) {
    if (state_ == HubState::kStopped) return;
    // Resend everything from the watermark on a fresh session.
    transport_->disconnect(std::chrono::milliseconds(0));
    connection_down("seq " + std::to_string(seq) + " not acknowledged: " + e.detail);
    return;
  }
  switch (e.outcome) {
    case platform::PublishOutcome::kDelivered:
      inflight_[index].slot = Slot::kDone;
      --sent_;
      if (!notice) count_delivered(inflight_[index]);
      refused_.erase(seq);
      if (seq == sync_refused_seq_) sync_refusals_ = 0;
      break;
    case platform::PublishOutcome::kNever: {
      if (state_ == HubState::kStopped) return;  // announced after the restart
      if (notice) {
        // The notice itself is malformed for this hub: nothing to retry. The dead letter is on
        // disk; the gap shows in the hub's reconciliation.
        warn("notice_refused",
             "dead-letter notice for seq " + std::to_string(seq) + " refused: " + e.detail,
             {{"seq", std::to_string(seq)}});
        inflight_[index].slot = Slot::kDone;
        --sent_;
        break;
      }
      // The hub will never take this message: keep it, with the reason, and move on.
      storage::StoredEvent ev;
      if (!read_one(seq, &ev)) return;
      // The slot stays kSent: its notice takes the event's place in the window.
      refused_.erase(seq);
      if (!send_dead_letter(ev, e.detail)) return;
      break;
    }
    case platform::PublishOutcome::kRefused:
      if (state_ == HubState::kStopped) return;
      refused(index, e, notice);
      break;
    case platform::PublishOutcome::kRetry:
      break;  // handled above
  }
  pop_done();
}

void Publisher::pop_done() {
  int64_t before = acked_through_;
  while (!inflight_.empty() && inflight_.front().slot == Slot::kDone) {
    acked_through_ = inflight_.front().seq;
    inflight_.pop_front();
  }
  if (acked_through_ == before) return;
  outbox_.mark_delivered(acked_through_);
  // Behind the watermark: on disk as delivered or dead-lettered, never sent again.
  refused_.erase(refused_.begin(), refused_.upper_bound(acked_through_));
  dead_.erase(dead_.begin(), dead_.upper_bound(acked_through_));
}

bool Publisher::read_one(int64_t seq, storage::StoredEvent* out) {
  std::vector<storage::StoredEvent> one;
  Status s = outbox_.read_pending(seq - 1, 1, &one);
  if (s && !one.empty() && one.front().seq == seq) {
    *out = std::move(one.front());
    return true;
  }
  if (!s && outbox_.corruption_seen()) {
    outbox_damaged();
    return false;
  }
  transport_->disconnect(std::chrono::milliseconds(0));
  connection_down("cannot read seq " + std::to_string(seq) + ": " +
                  (s ? std::string("not in the outbox") : s.to_string()));
  return false;
}

void Publisher::outbox_damaged() {
  // Damaged at this point: nothing after it can be read in order. Stay connected (the hub sees
  // the box online and why it stopped), keep accepting, deliver nothing more until a restart
  // moves the file aside.
  if (outbox_damaged_) return;
  outbox_damaged_ = true;
  set_state(state_, "outbox damaged, delivery stopped: " + *outbox_.corruption_seen());
  publish_status();
}

void Publisher::refused(size_t index, const platform::MqttEvent& e, bool notice) {
  const int64_t seq = inflight_[index].seq;
  const auto now = std::chrono::steady_clock::now();
  auto [it, fresh] = refused_.try_emplace(seq);
  Refusal& r = it->second;
  if (fresh) r.first = now;
  r.detail = e.detail;
  // A refused notice is retried without limit: giving up would leave the hub a gap for good
  // (the hub's ACL must allow <prefix>/+/+/deadletter). An event is given up on after
  // hub.refused_retry_s and replaced by its notice.
  r.deadline = notice ? std::chrono::steady_clock::time_point::max()
                      : r.first + std::chrono::seconds(config_.hub.refused_retry_s);
  if (now >= r.deadline) {
    storage::StoredEvent ev;
    if (!read_one(seq, &ev)) return;
    refused_.erase(it);
    send_dead_letter(ev, refusal_reason(e.detail));  // the slot stays kSent, for the notice
    return;
  }
  // Parked: out of the window, so the events behind it keep flowing.
  inflight_[index].slot = Slot::kParked;
  --sent_;
  ++parked_;
  r.parked = true;
  r.next_try = std::min(r.deadline, now + backoff_delay(r.attempts, config_.retry.initial_ms,
                                                        config_.retry.max_ms, rng_));
  if (r.attempts == 0) {
    platform::log(
        platform::LogLevel::kWarning, "refused_by_hub",
        std::string(notice ? "dead-letter notice for seq " : "seq ") + std::to_string(seq) +
            " refused by the hub: " + e.detail +
            (notice ? "; retrying until the hub takes it"
                    : "; retrying for up to " + std::to_string(config_.hub.refused_retry_s) +
                          " s, the events behind it keep going"),
        {{"seq", std::to_string(seq)}, {"reason", e.detail}});
  }
  ++r.attempts;
  arm_park_timer();
}

std::string Publisher::refusal_reason(const std::string& detail) const {
  return detail + "; refused for " + std::to_string(config_.hub.refused_retry_s) +
         " s (hub.refused_retry_s)";
}

void Publisher::arm_park_timer() {
  auto next = std::chrono::steady_clock::time_point::max();
  for (const auto& [seq, r] : refused_) {
    if (r.parked) next = std::min(next, r.next_try);
  }
  if (next == std::chrono::steady_clock::time_point::max()) {
    park_timer_.cancel();
    return;
  }
  // Re-armed on every change (at most window_ events are parked): a newly parked event with
  // an earlier retry does not wait for an older, later deadline. A replaced wait ends with
  // operation_aborted and does nothing.
  park_timer_.expires_at(next);
  park_timer_.async_wait([this](asio::error_code ec) {
    if (ec || state_ != HubState::kConnected) return;
    retry_parked();
  });
}

void Publisher::arm_stall_timer() {
  if (stall_armed_) return;
  const auto limit = std::chrono::milliseconds(config_.hub.keepalive_s * 1500);
  stall_armed_ = true;
  stall_timer_.expires_at(last_progress_ + limit);
  stall_timer_.async_wait([this, limit](asio::error_code ec) {
    stall_armed_ = false;
    if (ec || state_ != HubState::kConnected || sent_ + resend_sent_ == 0) return;
    if (std::chrono::steady_clock::now() - last_progress_ < limit) {
      arm_stall_timer();  // something completed meanwhile
      return;
    }
    transport_->disconnect(std::chrono::milliseconds(0));
    connection_down("no acknowledgement from the hub for " + std::to_string(limit.count()) +
                    " ms with events in flight (1.5 x hub.keepalive_s): the link is dead");
  });
}

void Publisher::retry_parked() {
  const auto now = std::chrono::steady_clock::now();
  const uint64_t gen = generation_;
  for (auto& [seq, r] : refused_) {
    if (!r.parked || r.next_try > now) continue;
    if (sent_ + resend_sent_ >= window_) break;  // the rest when acks free the window
    const size_t index = index_of(seq);
    if (index == SIZE_MAX || inflight_[index].slot != Slot::kParked) {
      r.parked = false;
      --parked_;
      continue;
    }
    storage::StoredEvent ev;
    if (!read_one(seq, &ev)) return;
    r.parked = false;
    --parked_;
    inflight_[index].slot = Slot::kSent;
    inflight_[index].sent = std::chrono::steady_clock::now();
    if (sent_ == 0) last_progress_ = now;
    ++sent_;
    // Past its deadline: the notice goes instead of the event.
    const bool ok = now >= r.deadline ? send_dead_letter(ev, refusal_reason(r.detail)) : send(ev);
    if (!ok || generation_ != gen || state_ != HubState::kConnected) return;
    if (now >= r.deadline) r = Refusal{};  // the notice's refusals, if any, start afresh
    arm_stall_timer();
  }
  arm_park_timer();
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

void Publisher::publish_status() {
  Status s = transport_->publish_retained(
      status_topic_, build_status_payload(config_, outbox_facts(outbox_), true, ""));
  if (!s) warn("publish_failed", "status publish: " + s.to_string());
}

void Publisher::count_delivered(const InFlight& slot) {
  const int64_t now_ms = platform::unix_ms();
  counters_->delivered.fetch_add(1, AgentCounters::kRelaxed);
  counters_->delivered_window.add(now_ms);
  counters_->ack_latency.observe(
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - slot.sent)
          .count());
  counters_->age_at_delivery.observe(static_cast<double>(now_ms - slot.received_ms));
}

bool Publisher::read_outbox(int64_t after_seq, size_t limit,
                            std::vector<storage::StoredEvent>* out) {
  Status s = outbox_.read_pending(after_seq, limit, out);
  if (s) return true;
  platform::log(platform::LogLevel::kError, "storage_error",
                "cannot read the outbox: " + s.to_string());
  if (outbox_.corruption_seen()) {
    outbox_damaged();
    return false;
  }
  transport_->disconnect(std::chrono::milliseconds(0));
  connection_down("outbox read failed");
  return false;
}

void Publisher::fill() {
  if (outbox_damaged_) return;
  // edgesync outbox hold: nothing new goes out (what is in flight completes); the release
  // wakes us.
  if (outbox_.held_since_ms() > 0) return;
  // At most a window's worth parked: a hub that refuses everything does not get the whole
  // backlog streamed at it and parked.
  while (state_ == HubState::kConnected && sent_ + resend_sent_ < window_ && parked_ < window_ &&
         inflight_.size() < kMaxHeld) {
    if (buffer_pos_ == buffer_.size()) {
      if (outbox_drained_) break;
      // Asked before reading: an event committed after this read's snapshot then wakes us.
      wants_wake_ = true;
      buffer_pos_ = 0;
      if (!read_outbox(read_through_, std::max(window_, kMinReadBatch), &buffer_)) return;
      if (buffer_.empty()) {
        outbox_drained_ = true;  // until wake()
        break;
      }
    }
    const int64_t seq = buffer_[buffer_pos_].seq;
    if (!send(buffer_[buffer_pos_])) return;  // the connection is being torn down
    if (sent_ == 0) last_progress_ = std::chrono::steady_clock::now();  // the wait starts now
    inflight_.push_back(
        {seq, Slot::kSent, buffer_[buffer_pos_].received_ms, std::chrono::steady_clock::now()});
    ++sent_;
    arm_stall_timer();
    read_through_ = seq;
    ++buffer_pos_;
  }
  if (!resend_jobs_.empty() && state_ == HubState::kConnected) send_resends();
}

void Publisher::on_resend_request(const std::string& payload) {
  auto request = events::parse_resend_request(payload);
  if (!request) {
    platform::log(
        platform::LogLevel::kWarning, "resend_request_refused",
        "a resend request on " + resend_topic_ + " was not read: " + request.status().message(),
        {{"reason", request.status().message()}});
    return;
  }
  if (resend_jobs_.size() >= kMaxResendJobs) {
    platform::log(platform::LogLevel::kWarning, "resend_request_dropped",
                  "resend request " + request->request_id +
                      " dropped: " + std::to_string(kMaxResendJobs) +
                      " are being answered already (the hub asks again)",
                  {{"request_id", request->request_id}});
    return;
  }
  ResendJob job(std::move(*request), outbox_.incarnation(), acked_through_, kMaxResendSeqs);
  const auto& asked = job.request();
  platform::log(platform::LogLevel::kNotice, "resend_requested",
                "the hub asks for seqs " + events::format_ranges(asked.ranges) +
                    " of incarnation " + asked.incarnation + " again (request " + asked.request_id +
                    ")",
                {{"request_id", asked.request_id},
                 {"incarnation", asked.incarnation},
                 {"seqs", std::to_string(events::seq_count(asked.ranges))}});
  if (job.done()) {
    publish_resend_reply(job);
    return;
  }
  resend_jobs_.push_back(std::move(job));
  fill();
}

void Publisher::send_resends() {
  if (outbox_damaged_) return;
  std::vector<size_t> to_send;
  while (state_ == HubState::kConnected && !resend_jobs_.empty() &&
         sent_ + resend_sent_ < window_) {
    ResendJob& job = resend_jobs_.front();
    if (job.done()) {
      publish_resend_reply(job);
      resend_jobs_.pop_front();
      continue;
    }
    const size_t room = window_ - sent_ - resend_sent_;
    const size_t asked = static_cast<size_t>(
        std::min<int64_t>(static_cast<int64_t>(room), job.range_last() - job.cursor() + 1));
    if (!read_outbox(job.cursor() - 1, asked, &resend_buffer_)) return;
    to_send.clear();
    job.take(resend_buffer_, asked, &to_send);
    for (size_t i : to_send) {
      if (!send_again(resend_buffer_[i], job)) return;  // the connection is being torn down
    }
  }
}

bool Publisher::send_again(const storage::StoredEvent& ev, ResendJob& job) {
  if (!ev.dead_reason.empty()) {
    if (!publish_notice(ev, ev.dead_reason, ev.dead_ms, kResendTag)) return false;
    note_resent();
    return true;
  }
  const platform::PublishIdentity who = build_message(ev);
  if (oversize(who) > 0) {
    job.not_now(ev.seq);
    return true;
  }
  if (!publish_built(who, kResendTag)) return false;
  note_resent();
  return true;
}

void Publisher::note_resent() {
  // Watched like the stream's own messages: a link that swallows them is dropped.
  if (sent_ + resend_sent_ == 0) last_progress_ = std::chrono::steady_clock::now();
  ++resend_sent_;
  arm_stall_timer();
}

void Publisher::publish_resend_reply(const ResendJob& job) {
  const events::ResendReply reply = job.reply(config_.device.store_id, config_.device.id);
  platform::log(
      platform::LogLevel::kNotice, "resend_answered",
      "resend request " + reply.request_id + ": sent again " + std::to_string(job.resent_count()) +
          ", pending " + std::to_string(events::seq_count(reply.pending)) + ", gone " +
          std::to_string(job.gone_count()) +
          (reply.gone.empty()
               ? std::string()
               : " (" + events::format_ranges(reply.gone) + ": " + reply.gone_reason + ")") +
          ", deferred " + std::to_string(events::seq_count(reply.deferred)),
      {{"request_id", reply.request_id},
       {"resent", std::to_string(job.resent_count())},
       {"gone", std::to_string(job.gone_count())}});
  Status s = transport_->publish_message(
      events::resend_reply_topic(config_.hub.topic_prefix, config_.device.store_id,
                                 config_.device.id),
      events::build_resend_reply(reply));
  if (!s) warn("publish_failed", "resend reply publish: " + s.to_string());
}

bool Publisher::send(const storage::StoredEvent& ev) {
  // Dead-lettered before (this run or an earlier one) but not yet passed by the watermark:
  // the hub gets the notice, never the event.
  if (auto d = dead_.find(ev.seq); d != dead_.end()) {
    return publish_notice(ev, d->second.reason, d->second.failed_ms);  // not yet on disk
  }
  if (!ev.dead_reason.empty()) return publish_notice(ev, ev.dead_reason, ev.dead_ms);
  if (ev.seq == sync_refused_seq_ && sync_refusals_ >= kMaxSyncRefusals) {
    return send_dead_letter(
        ev, "the MQTT client refused to publish it " + std::to_string(sync_refusals_) + " times");
  }
  const platform::PublishIdentity who = build_message(ev);
  // A broker disconnects a client that sends a packet over its maximum; sending it would only
  // repeat that on every reconnect.
  if (const int64_t size = oversize(who); size > 0) {
    return send_dead_letter(ev, "the message is " + std::to_string(size) +
                                    " bytes, over the hub's Maximum Packet Size of " +
                                    std::to_string(max_packet_) + " bytes");
  }
  return publish_built(who, 0);
}

platform::PublishIdentity Publisher::build_message(const storage::StoredEvent& ev) {
  build_event_topic(config_, ev, &topic_);
  build_event_payload(config_, outbox_.incarnation(), ev, &payload_);
  return {ev.id, ev.seq, outbox_.incarnation(), ev.type, ev.contract_version};
}

int64_t Publisher::oversize(const platform::PublishIdentity& who) const {
  if (max_packet_ <= 0) return 0;
  const int64_t size = platform::MqttTransport::packet_size(topic_, payload_.size(), who);
  return size > max_packet_ ? size : 0;
}

bool Publisher::publish_built(const platform::PublishIdentity& who, uint64_t tag_bits) {
  Status s = transport_->publish(topic_, payload_, who, static_cast<uint64_t>(who.seq) | tag_bits);
  if (!s) {
    publish_not_started(who.seq, s);
    return false;
  }
  return true;
}

bool Publisher::send_dead_letter(const storage::StoredEvent& ev, const std::string& reason) {
  platform::log(
      platform::LogLevel::kWarning, "dead_letter",
      "seq " + std::to_string(ev.seq) + " dead-lettered: " + reason,
      {{"seq", std::to_string(ev.seq)}, {"id", ev.id}, {"type", ev.type}, {"reason", reason}});
  counters_->dead_lettered.fetch_add(1, AgentCounters::kRelaxed);
  counters_->dead_letter_window.add(platform::unix_ms());
  const int64_t now_ms = platform::unix_ms();
  outbox_.dead_letter(ev, reason);
  // Until the watermark passes it, a resend after a reconnect must send the notice, not the
  // event, even if the writer has not committed the dead letter yet.
  dead_[ev.seq] = DeadLetter{reason, now_ms};
  return publish_notice(ev, reason, now_ms);
}

bool Publisher::publish_notice(const storage::StoredEvent& ev, const std::string& reason,
                               int64_t failed_ms, uint64_t tag_bits) {
  build_dead_letter_notice(config_, outbox_.incarnation(), ev, reason, failed_ms, &payload_);
  const platform::PublishIdentity who{ev.id, ev.seq, outbox_.incarnation(), ev.type,
                                      ev.contract_version};
  if (max_packet_ > 0 && platform::MqttTransport::packet_size(dead_letter_topic_, payload_.size(),
                                                              who) > max_packet_) {
    // A broker with a tiny maximum: the reason is what can give way (the hub keeps the id).
    build_dead_letter_notice(config_, outbox_.incarnation(), ev, "too large for the hub", failed_ms,
                             &payload_);
  }
  Status s = transport_->publish(dead_letter_topic_, payload_, who,
                                 static_cast<uint64_t>(ev.seq) | kNoticeTag | tag_bits);
  if (!s) {
    publish_not_started(ev.seq, s);
    return false;
  }
  return true;
}

void Publisher::publish_not_started(int64_t seq, const Status& s) {
  // Only a refusal of the message itself counts towards giving up on it; the usual cause, a
  // link that is going down, says nothing about the event.
  if (s.code() == Status::Code::kInvalidArgument) {
    if (seq == sync_refused_seq_) {
      ++sync_refusals_;
    } else {
      sync_refused_seq_ = seq;
      sync_refusals_ = 1;
    }
  }
  // No completion will come for it: never leave the window waiting. A new session resends
  // from the watermark; usually the connection was going away anyway.
  transport_->disconnect(std::chrono::milliseconds(0));
  connection_down("seq " + std::to_string(seq) + " not sent: " + s.to_string());
}

void Publisher::stop() {
  retry_timer_.cancel();
  linger_timer_.cancel();
  park_timer_.cancel();
  stall_timer_.cancel();
  bool was_connected = state_ == HubState::kConnected;
  set_state(HubState::kStopped, "");
  if (was_connected && transport_) {
    transport_->publish_retained(status_topic_, build_status_payload(config_, outbox_facts(outbox_),
                                                                     false, "agent stopped"));
    // Gives outstanding publishes up to 2 s to be acknowledged before the session ends.
    transport_->disconnect(std::chrono::milliseconds(2000));
    on_transport_events();  // take the final acks so the watermark moves past them
  }
}

}  // namespace edgesync::agent
