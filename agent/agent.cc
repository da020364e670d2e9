#include "agent/agent.h"

#include <unistd.h>

#include <asio.hpp>
#include <iostream>

#include "agent/ingest_server.h"
#include "agent/publisher.h"
#include "agent/state_file.h"
#include "platform/clock.h"
#include "platform/files.h"
#include "platform/systemd_notify.h"
#include "storage/outbox.h"

namespace edgesync::agent {

int run_agent(const Config& config) {
  asio::io_context io(1);

  Status s = platform::ensure_parent_dir(config.storage.path, 0750);
  if (!s) {
    std::cerr << "edgesync: storage.path: " << s.to_string() << "\n";
    return 1;
  }
  storage::Outbox::Options oo;
  oo.path = config.storage.path;
  oo.max_bytes = config.storage.max_bytes;
  oo.keep_delivered = config.storage.keep_delivered;
  auto opened = storage::Outbox::open(oo, [&io](std::function<void()> fn) {
    asio::post(io, std::move(fn));
  });
  if (!opened) {
    std::cerr << "edgesync: cannot open the outbox: " << opened.status().to_string() << "\n";
    return 1;
  }
  storage::Outbox& outbox = **opened;

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

  Publisher publisher(io, config, outbox, [&](HubState hs, const std::string& detail) {
    state.hub_state = hub_state_name(hs);
    state.hub_since_ms = platform::unix_ms();
    if (!detail.empty()) state.last_error = detail;
    if (hs != HubState::kStopped) save_state();
  });
  outbox.set_on_committed([&publisher] { publisher.wake(); });

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

  // The watchdog is pinged from this loop, so a hung loop gets the service restarted.
  asio::steady_timer watchdog(io);
  auto interval = platform::watchdog_interval() / 2;
  std::function<void()> ping = [&] {
    platform::notify_watchdog();
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
    publisher.stop();
    outbox.close();
    state.running = false;
    state.hub_state = hub_state_name(HubState::kStopped);
    save_state();
    watchdog.cancel();
    io.stop();
  };
  asio::signal_set signals(io, SIGTERM, SIGINT);
  std::function<void()> wait_signal = [&] {
    signals.async_wait([&](asio::error_code ec, int signo) {
      if (ec) return;
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
            << " (next seq " << outbox.stats().next_seq << ")\n";
  io.run();
  std::cerr << "edgesync: stopped\n";
  return 0;
}

}  // namespace edgesync::agent
