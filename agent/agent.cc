#include "agent/agent.h"

#include <unistd.h>

#include <asio.hpp>
#include <atomic>
#include <iostream>
#include <thread>

#include "agent/ingest_server.h"
#include "agent/publisher.h"
#include "agent/state_file.h"
#include "platform/clock.h"
#include "platform/files.h"
#include "platform/systemd_notify.h"
#include "platform/threads.h"
#include "storage/outbox.h"

namespace edgesync::agent {

// Two event loops, each on its own thread:
//  - ingest (this thread): producers' sockets, replies, signals, the watchdog;
//  - delivery: the publisher and paho's notifications, a little below ingest's priority.
// Keeping them apart means a producer's reply never waits behind MQTT work: measured on this
// design's first version, sharing one loop added ~0.2 ms to every single-producer ack. The
// outbox's writer thread completes appends on the ingest loop and wakes the delivery loop.
int run_agent(const Config& config) {
  asio::io_context io(1);
  asio::io_context delivery_io(1);

  Status s = platform::ensure_parent_dir(config.storage.path, 0750);
  if (!s) {
    std::cerr << "edgesync: storage.path: " << s.to_string() << "\n";
    return 1;
  }
  // Every producer connection holds a file descriptor; the outbox, the hub link and the event
  // loops take about 20 more.
  const long open_files = platform::raise_open_file_limit();
  if (open_files >= 0 && open_files < config.ingest.max_connections + 64) {
    std::cerr << "edgesync: the open-file limit is " << open_files
              << " (ulimit -n, LimitNOFILE=) and ingest.max_connections is "
              << config.ingest.max_connections
              << ": producers beyond what it allows wait until one disconnects\n";
  }
  storage::Outbox::Options oo;
  oo.path = config.storage.path;
  oo.max_bytes = config.storage.max_bytes;
  oo.keep_delivered = config.storage.keep_delivered;
  oo.max_dead_letters = config.storage.max_dead_letters;
  oo.dead_letter_max_age = std::chrono::hours(24 * config.storage.dead_letter_days);
  auto opened = storage::Outbox::open(oo, [&io](std::function<void()> fn) {
    asio::post(io, std::move(fn));
  });
  if (!opened) {
    std::cerr << "edgesync: cannot open the outbox: " << opened.status().to_string() << "\n";
    return 1;
  }
  storage::Outbox& outbox = **opened;
  const int64_t next_seq = outbox.stats().next_seq;
  if (const auto& q = outbox.quarantine()) {
    std::cerr << "edgesync: WARNING: outbox quarantined at "
              << platform::format_rfc3339_ms(q->at_ms) << ": " << config.storage.path << ": "
              << q->reason << ". It is kept, unchanged, as " << q->file
              << (q->incarnation.empty() ? "" : " (incarnation " + q->incarnation + ")")
              << "; events still pending in it were not delivered. Capture goes on in a fresh "
                 "outbox (incarnation "
              << outbox.incarnation() << ")\n";
  }

  // Written by the delivery thread while it runs, by this one before and after.
  AgentState state;
  state.pid = static_cast<long>(::getpid());
  state.running = true;
  state.started_ms = platform::unix_ms();
  state.hub_uri = config.hub.uri;
  const std::string state_path = config.state_file();
  auto save_state = [&] {
    state.updated_ms = platform::unix_ms();
    Status w = write_agent_state(state_path, state);
    if (!w) std::cerr << "edgesync: cannot write " << state_path << ": " << w.to_string() << "\n";
  };

  Publisher publisher(delivery_io, config, outbox, [&](HubState hs, const std::string& detail) {
    state.hub_state = hub_state_name(hs);
    state.hub_since_ms = platform::unix_ms();
    if (!detail.empty()) state.last_error = detail;
    // A damaged page met while running stops delivery at it; the publisher reports that as a
    // state change, and the reason goes to the status file with it.
    if (auto c = outbox.corruption_seen()) state.outbox_error = *c;
    if (hs != HubState::kStopped) save_state();
  });
  outbox.set_on_committed([&] {
    if (publisher.take_wake_request()) asio::post(delivery_io, [&] { publisher.wake(); });
  });

  IngestServer ingest(io, config, outbox);
  s = ingest.start();
  if (!s) {
    std::cerr << "edgesync: " << s.to_string() << "\n";
    return 1;
  }
  save_state();
  s = publisher.start();
  if (!s) {
    std::cerr << "edgesync: " << s.to_string() << "\n";
    return 1;
  }
  auto delivery_work = asio::make_work_guard(delivery_io);
  std::thread delivery_thread([&] {
    // Delivery gives way to ingest without being starved (platform/threads.h); paho's
    // threads, started by the first connect on this thread, inherit its priority.
    platform::set_current_thread_name("delivery");
    if (!platform::lower_current_thread_priority(platform::kDeliveryNiceSteps)) {
      std::cerr << "edgesync: cannot lower the delivery thread's priority; it competes with "
                   "ingest for the CPU\n";
    }
    delivery_io.run();
  });

  // The watchdog is pinged from the ingest loop, and only while the delivery loop answers too:
  // a hang in either gets the service restarted.
  asio::steady_timer watchdog(io);
  auto interval = platform::watchdog_interval() / 2;
  std::atomic<bool> delivery_alive{true};
  std::function<void()> ping = [&] {
    if (delivery_alive.exchange(false)) platform::notify_watchdog();
    asio::post(delivery_io, [&] { delivery_alive = true; });
    watchdog.expires_after(interval);
    watchdog.async_wait([&](asio::error_code ec) {
      if (!ec) ping();
    });
  };
  if (interval.count() > 0) ping();

  bool stopping = false;
  bool finished = false;
  asio::steady_timer stop_deadline(io);
  auto finish = [&] {
    if (finished) return;
    finished = true;
    stop_deadline.cancel();
    watchdog.cancel();
    asio::post(delivery_io, [&] {
      publisher.stop();
      delivery_work.reset();
      delivery_io.stop();
    });
    delivery_thread.join();
    outbox.close();
    state.running = false;
    state.hub_state = hub_state_name(HubState::kStopped);
    save_state();
    io.stop();
  };
  // SIGHUP would terminate the process by default; until config reload exists it is logged
  // and ignored, so a habit (logrotate, `kill -HUP`) cannot take the agent down.
  asio::signal_set signals(io, SIGTERM, SIGINT, SIGHUP);
  std::function<void()> wait_signal = [&] {
    signals.async_wait([&](asio::error_code ec, int signo) {
      if (ec) return;
      if (signo == SIGHUP) {
        std::cerr << "edgesync: SIGHUP ignored: configuration reload is not supported yet; "
                     "restart the service to apply a new configuration\n";
        wait_signal();
        return;
      }
      if (stopping) {
        wait_signal();
        return;
      }
      stopping = true;
      std::cerr << "edgesync: signal " << signo << ", stopping\n";
      platform::notify_stopping();
      // Producers with replies still unread get 10 s; after that their replies are dropped
      // (the events themselves are committed or refused already).
      stop_deadline.expires_after(std::chrono::seconds(10));
      stop_deadline.async_wait([&](asio::error_code e) {
        if (!e) finish();
      });
      ingest.stop([&] { asio::post(io, finish); });
      wait_signal();
    });
  };
  wait_signal();

  platform::notify_ready();
  std::cerr << "edgesync: agent " << config.device.store_id << "/" << config.device.id
            << " listening on " << config.ingest.socket << ", outbox " << config.storage.path
            << " (next seq " << next_seq << ")\n";
  io.run();
  if (!finished) finish();
  std::cerr << "edgesync: stopped\n";
  return 0;
}

}  // namespace edgesync::agent
