// Moves events from the outbox to the hub, in seq order, with a bounded in-flight window.
//
// States: disconnected -> connecting -> connected -> (lost) -> disconnected, with reconnects
// delayed by exponential backoff with full jitter. On every (re)connect it resends from the
// delivered watermark, so anything the broker did not acknowledge goes again: duplicates on the
// wire are possible, loss is not. Runs on the agent's io_context thread; paho's callbacks only
// post to it.
#pragma once

#include <asio.hpp>
#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "agent/config.h"
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
  // New events were committed: send them if the window has room, at once or, if a burst went
  // out less than hub.linger_ms ago, when that much time has passed.
  void wake();
  // Any thread (the outbox's writer, after a commit): true once after the publisher found the
  // outbox drained, i.e. when a wake() is needed. Saves a cross-thread wake-up per commit while
  // the hub is down or the publisher is still busy with earlier events.
  bool take_wake_request() { return wants_wake_.exchange(false); }
  // Publishes the offline status, waits briefly for outstanding acks, disconnects.
  void stop();

  HubState state() const { return state_; }
  int64_t delivered_through() const { return acked_through_; }

 private:
  struct InFlight {
    int64_t seq;
    bool acked;
  };

  void on_transport_events();
  void handle_publish_done(const platform::MqttEvent& e);
  void connect();
  void connection_down(const std::string& why);
  void fill();
  void fill_new_events();
  void set_state(HubState s, const std::string& detail);

  asio::io_context& io_;
  const Config& config_;
  storage::Outbox& outbox_;
  std::function<void(HubState, const std::string&)> on_state_;
  std::unique_ptr<platform::MqttTransport> transport_;

  HubState state_ = HubState::kDisconnected;
  uint64_t generation_ = 0;
  size_t window_ = 1;
  std::deque<InFlight> inflight_;
  std::vector<storage::StoredEvent> buffer_;
  size_t buffer_pos_ = 0;
  int64_t read_through_ = 0;   // highest seq handed to the transport this connection
  int64_t acked_through_ = 0;  // every seq at or below is delivered or dead-lettered
  bool outbox_drained_ = false;
  std::atomic<bool> wants_wake_{false};

  asio::steady_timer retry_timer_;
  asio::steady_timer linger_timer_;
  bool linger_armed_ = false;
  std::chrono::steady_clock::time_point last_burst_{};
  int attempt_ = 0;
  std::chrono::steady_clock::time_point connected_at_;
  std::mt19937_64 rng_;

  std::vector<platform::MqttEvent> events_;
  std::string topic_;
  std::string payload_;
  std::string status_topic_;
};

}  // namespace edgesync::agent
