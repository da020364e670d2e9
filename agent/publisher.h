// Moves events from the outbox to the hub, in seq order, with a bounded in-flight window.
//
// States: disconnected -> connecting -> connected -> (lost) -> disconnected, with reconnects
// delayed by exponential backoff with full jitter. On every (re)connect it resends from the
// delivered watermark, so anything the broker did not acknowledge goes again: duplicates on the
// wire are possible, loss is not. Runs on the agent's io_context thread; paho's callbacks only
// post to it.
//
// An event the hub can never take (a PUBACK saying so, or bigger than the broker's Maximum
// Packet Size) is dead-lettered and a notice takes its place in the stream. An event the hub
// refuses for a reason that may clear (not authorized, ...) is parked: retried with backoff for
// hub.refused_retry_s while the events behind it keep flowing, then dead-lettered. The
// watermark waits at a parked event, so a reconnect resends what was delivered behind it (at
// most kMaxHeld events).
//
// The hub may ask for seqs it lacks that the box already counts delivered (events/resend.h):
// the box sends them again from its delivered history, in the room the window has after its own
// stream, and answers with what it no longer has.
#pragma once

#include <asio.hpp>
#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "agent/agent_counters.h"
#include "agent/config.h"
#include "agent/resend_job.h"
#include "platform/mqtt_transport.h"
#include "storage/outbox.h"

namespace edgesync::agent {

enum class HubState { kDisconnected, kConnecting, kConnected, kStopped };
const char* hub_state_name(HubState s);

class Publisher {
 public:
  // `on_state` runs (on the io thread) at every connection state change, with the last error.
  Publisher(asio::io_context& io, const Config& config, storage::Outbox& outbox,
            std::function<void(HubState, const std::string&)> on_state);
  ~Publisher();

  Status start();
  // Delivery thread: runs with `config` from now on. `reconnect`: the hub connection settings
  // changed (or the config topics did): the session is dropped and made again with the new
  // ones; everything not acknowledged is resent from the watermark, as after any reconnect.
  // `epoch` names this configuration in the state reports (config_epoch()).
  void reconfigure(const Config& config, bool reconnect, uint64_t epoch);
  uint64_t config_epoch() const { return config_epoch_; }
  // The broker this agent is on, or tries next: hub.uri or one of hub.fallback_uris.
  std::string current_uri() const;
  // The pushed-configuration channel: topics subscribed on every connect, and what to do with a
  // message on one of them (called on the delivery thread). Before start().
  // `on_subscribed` runs when the broker granted every config topic, with config_epoch().
  void set_config_channel(std::vector<std::string> topics,
                          std::function<void(const std::string&, const std::string&)> on_message,
                          std::function<void(uint64_t)> on_subscribed);
  // Delivery thread: the topics from the next connect on (reconfigure() reconnects when they
  // change).
  void set_config_topics(std::vector<std::string> topics) { config_topics_ = std::move(topics); }
  // The retained config status (docs/FLEET.md): published now if connected, and again on
  // every connect.
  void publish_config_status(std::string payload);
  // The retained health message (agent/health.h), if connected; the agent sends it every
  // health.interval_s and at every state change (connects included).
  void publish_health(const std::string& payload);
  // Publishes the online status again (its certificate facts are read afresh).
  void refresh_status();
  // New events were committed: send them if the window has room, at once or, if a burst went
  // out less than hub.linger_ms ago, when that much time has passed.
  void wake();
  // Any thread (the outbox's writer, after a commit): true once after the publisher found the
  // outbox drained, i.e. when a wake() is needed. Saves a cross-thread wake-up per commit while
  // the hub is down or the publisher is still busy with earlier events.
  bool take_wake_request() { return wants_wake_.exchange(false); }
  // Publishes the offline status, waits briefly for outstanding acks, disconnects.
  void stop();

  // Before start(): where delivery counts what it does (default: figures of its own).
  void set_counters(AgentCounters* counters) { counters_ = counters; }

  HubState state() const { return state_; }
  int64_t delivered_through() const { return acked_through_; }

  // Events held between the watermark and the newest sent: in flight, delivered behind a parked
  // event, or parked. Bounds memory and the duplicates a reconnect can cause.
  static constexpr size_t kMaxHeld = 65536;
  // Resend requests waiting or being answered; a further one is dropped (the hub asks again).
  static constexpr size_t kMaxResendJobs = 4;
  // Seqs one resend request may look up; the rest are deferred to the hub's next request.
  static constexpr int64_t kMaxResendSeqs = 20000;

 private:
  enum class Slot : uint8_t {
    kSent,    // the event or its dead-letter notice is in flight
    kParked,  // refused; waits for its retry
    kDone,    // delivered or announced as a dead letter
  };
  struct InFlight {
    int64_t seq;
    Slot slot;
    int64_t received_ms;  // when the agent took the event: its age at delivery
    std::chrono::steady_clock::time_point sent;  // for the ack latency
  };
  // An event the hub refused with a reason that may clear. Kept across reconnects (not across
  // restarts), so hub.refused_retry_s counts from the first refusal.
  struct Refusal {
    std::chrono::steady_clock::time_point first;
    std::chrono::steady_clock::time_point next_try;
    // Events: first + hub.refused_retry_s, then the notice goes instead; notices: never.
    std::chrono::steady_clock::time_point deadline;
    int attempts = 0;
    std::string detail;
    bool parked = false;  // waiting in inflight_ on this connection
  };

  void on_transport_events();
  void handle_publish_done(const platform::MqttEvent& e);
  Status make_transport();
  platform::MqttOptions transport_options() const;
  void connect();
  // A failed connect with other brokers to try: switches to the next and connects at once
  // (true); false when there is none or every one failed this round (back off as usual).
  bool fail_over(const std::string& why);
  // retry false: the caller connects at once (a reconfiguration), so no backoff is drawn,
  // logged or shown as the next retry.
  void connection_down(const std::string& why, bool retry = true);
  void fill();
  // outbox_.read_pending(); on failure the outbox is reported damaged or the connection
  // dropped (to read again after the reconnect), and false returned.
  bool read_outbox(int64_t after_seq, size_t limit, std::vector<storage::StoredEvent>* out);
  void count_delivered(const InFlight& slot);
  void fill_new_events();
  // The retained online status, with what the outbox reports (incarnation, quarantine, damage).
  void publish_status();
  // Publishes `ev` (or its dead-letter notice, if it has one or can never fit). False: nothing
  // was started and the connection is being torn down.
  bool send(const storage::StoredEvent& ev);
  // The event's message, into topic_ and payload_; the identity that goes with it.
  platform::PublishIdentity build_message(const storage::StoredEvent& ev);
  // The built message's packet size if it is over the hub's Maximum Packet Size, else 0.
  int64_t oversize(const platform::PublishIdentity& who) const;
  // Publishes the built message, tagged with its seq and `tag_bits`. False: paho refused to
  // start it and the connection is being torn down.
  bool publish_built(const platform::PublishIdentity& who, uint64_t tag_bits);
  // Dead-letters `ev` with `reason` and publishes the notice in its place.
  bool send_dead_letter(const storage::StoredEvent& ev, const std::string& reason);
  // `tag_bits`: added to the completion's tag (a notice sent again for a resend request).
  bool publish_notice(const storage::StoredEvent& ev, const std::string& reason, int64_t failed_ms,
                      uint64_t tag_bits = 0);
  // A refusal that may clear: park the slot and schedule its retry, or dead-letter it once
  // hub.refused_retry_s has passed since the first refusal.
  void refused(size_t index, const platform::MqttEvent& e, bool notice);
  std::string refusal_reason(const std::string& detail) const;
  void retry_parked();
  void arm_park_timer();
  // One event from the outbox for a retry or a dead letter. False: it could not be read, and
  // the publisher has gone down (or stopped at a damaged outbox).
  bool read_one(int64_t seq, storage::StoredEvent* out);
  // A read met corruption: stop delivering, stay connected, report it.
  void outbox_damaged();
  void arm_stall_timer();
  // paho refused to start a publish: tear the session down; the same seq refused this way
  // kMaxSyncRefusals times in a row is dead-lettered.
  void publish_not_started(int64_t seq, const Status& s);
  void pop_done();
  // A request on the resend topic: answered at once when nothing is to be sent again, else
  // queued for send_resends().
  void on_resend_request(const std::string& payload);
  // Sends rows of the queued resend requests while the window has room after the stream.
  void send_resends();
  // Publishes `ev` again (or its dead-letter notice); false when the connection is going down.
  bool send_again(const storage::StoredEvent& ev, ResendJob& job);
  void publish_resend_reply(const ResendJob& job);
  // A message sent again is in flight: counted in the window, watched by the stall timer.
  void note_resent();
  size_t index_of(int64_t seq) const;
  void set_state(HubState s, const std::string& detail);

  asio::io_context& io_;
  Config config_;
  uint64_t config_epoch_ = 0;
  std::vector<std::string> config_topics_;
  std::function<void(const std::string&, const std::string&)> on_config_message_;
  std::function<void(uint64_t)> on_config_subscribed_;
  std::string config_status_;  // the payload to keep retained; empty until set
  storage::Outbox& outbox_;
  AgentCounters own_counters_;
  AgentCounters* counters_ = &own_counters_;
  std::function<void(HubState, const std::string&)> on_state_;
  std::unique_ptr<platform::MqttTransport> transport_;

  HubState state_ = HubState::kDisconnected;
  uint64_t generation_ = 0;
  size_t window_ = 1;
  int64_t max_packet_ = 0;         // the broker's Maximum Packet Size; 0: not announced
  std::deque<InFlight> inflight_;  // consecutive seqs from acked_through_ + 1
  size_t sent_ = 0;                // slots in kSent: what the window counts
  std::map<int64_t, Refusal> refused_;
  size_t parked_ = 0;  // slots in kParked: at most window_
  // Dead-lettered this run and not yet passed by the watermark: a resend sends the notice even
  // before the writer has committed the dead letter (the pending reader's join would miss it).
  struct DeadLetter {
    std::string reason;
    int64_t failed_ms = 0;
  };
  std::map<int64_t, DeadLetter> dead_;
  asio::steady_timer park_timer_;
  // A link that swallows packets (half-open) shows as no completion at all: with something in
  // flight and nothing completed for 1.5 x hub.keepalive_s, the session is dropped and resent.
  // Armed only while something is in flight: an idle agent has no timer ticking.
  asio::steady_timer stall_timer_;
  bool stall_armed_ = false;
  std::chrono::steady_clock::time_point last_progress_{};
  int64_t sync_refused_seq_ = 0;
  int sync_refusals_ = 0;
  std::vector<storage::StoredEvent> buffer_;
  size_t buffer_pos_ = 0;
  int64_t read_through_ = 0;   // highest seq handed to the transport this connection
  int64_t acked_through_ = 0;  // every seq at or below is delivered or dead-lettered
  bool outbox_drained_ = false;
  bool outbox_damaged_ = false;  // a read met corruption: delivery stops until a restart
  std::atomic<bool> wants_wake_{false};

  asio::steady_timer retry_timer_;
  asio::steady_timer linger_timer_;
  bool linger_armed_ = false;
  std::chrono::steady_clock::time_point last_burst_{};
  int attempt_ = 0;
  // Which of hub.uri (0) and hub.fallback_uris (1...) the next connect goes to.
  size_t uri_index_ = 0;
  std::chrono::steady_clock::time_point connected_at_;
  std::mt19937_64 rng_;

  std::deque<ResendJob> resend_jobs_;  // dropped with the connection: the hub asks again
  size_t resend_sent_ = 0;             // resent messages in flight; they share the window
  std::vector<storage::StoredEvent> resend_buffer_;
  std::string resend_topic_;

  std::vector<platform::MqttEvent> events_;
  std::string topic_;
  std::string payload_;
  std::string status_topic_;
  std::string dead_letter_topic_;
};

}  // namespace edgesync::agent
