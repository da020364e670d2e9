#include "agent/agent.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <asio.hpp>
#include <atomic>
#include <future>
#include <iostream>
#include <memory>
#include <optional>
#include <thread>

#include "agent/agent_counters.h"
#include "agent/certificate_check.h"
#include "agent/control_server.h"
#include "agent/health.h"
#include "agent/ingest_server.h"
#include "agent/http_ingest.h"
#include "agent/metrics_server.h"
#include "agent/metrics_text.h"
#include "agent/publisher.h"
#include "agent/spool_ingest.h"
#include "agent/state_file.h"
#include "events/json_text.h"
#include "platform/clock.h"
#include "platform/files.h"
#include "platform/log.h"
#include "platform/memory.h"
#include "platform/systemd_notify.h"
#include "platform/threads.h"
#include "storage/outbox.h"

namespace edgesync::agent {
namespace {

storage::Outbox::Limits outbox_limits(const Config& c) {
  storage::Outbox::Limits l;
  l.max_bytes = c.storage.max_bytes;
  l.keep_delivered = c.storage.keep_delivered;
  l.max_dead_letters = c.storage.max_dead_letters;
  l.dead_letter_max_age = std::chrono::hours(24 * c.storage.dead_letter_days);
  return l;
}

}  // namespace

// Two event loops, each on its own thread:
//  - ingest (this thread): producers' sockets, replies, signals, the watchdog;
//  - delivery: the publisher and paho's notifications, a little below ingest's priority.
// Keeping them apart means a producer's reply never waits behind MQTT work: measured on this
// design's first version, sharing one loop added ~0.2 ms to every single-producer ack. The
// outbox's writer thread completes appends on the ingest loop and wakes the delivery loop.
int run_agent(const std::string& config_path, LocalConfig local) {
  platform::use_one_heap();
  // SIGTERM, SIGINT and SIGHUP wait until the handler below is in place: one arriving during
  // start-up (opening the outbox, connecting) would otherwise end the agent uncleanly with the
  // default action. Every thread started meanwhile keeps them blocked, so they reach this one.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  asio::io_context io(1);
  asio::io_context delivery_io(1);

  // The state files live beside the database: its directory first.
  Status s = platform::ensure_parent_dir(local.config.storage.path, 0750);
  if (!s) {
    std::cerr << "edgesync: storage.path: " << s.to_string() << "\n";
    return 1;
  }
  // Pushed configuration is decided on the delivery thread, where its messages arrive: a flood
  // on the config topics slows delivery, never a producer's reply. `config` is this thread's
  // copy of the running configuration, changed in place when a change is applied: the ingest
  // server reads it live.
  // The log first, from the local file (log.format is local-only), so what the start decides
  // about pushed layers (a rollback, a layer not used) is logged in its structured form.
  platform::set_log_format(*platform::parse_log_format(local.config.log.format));
  platform::set_log_level(*platform::parse_log_level(local.config.log.level));
  RemoteConfig remote(delivery_io, config_path, std::move(local));
  Config config = remote.begin_start();
  // Validated with the configuration: it parses. A pushed layer may set the level.
  platform::set_log_level(*platform::parse_log_level(config.log.level));
  for (const auto& e : check_effective(config)) {
    std::cerr << "edgesync: refusing to start: " << e << "\n";
    return 1;
  }
  {
    const std::string warning = certificate_warning(config, certificate_facts(config, platform::unix_ms()));
    if (!warning.empty()) platform::log(platform::LogLevel::kWarning, "certificate", warning);
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
  const storage::Outbox::Limits limits = outbox_limits(config);
  oo.max_bytes = limits.max_bytes;
  oo.keep_delivered = limits.keep_delivered;
  oo.max_dead_letters = limits.max_dead_letters;
  oo.dead_letter_max_age = limits.dead_letter_max_age;
  auto opened = storage::Outbox::open(oo, [&io](std::function<void()> fn) {
    asio::post(io, std::move(fn));
  });
  if (!opened) {
    platform::log(platform::LogLevel::kError, "storage_error",
                  "cannot open the outbox: " + opened.status().to_string());
    return 1;
  }
  storage::Outbox& outbox = **opened;
  const int64_t next_seq = outbox.stats().next_seq;
  if (const auto& q = outbox.quarantine()) {
    platform::log(
        platform::LogLevel::kError, "outbox_quarantined",
        "WARNING: outbox quarantined at " + platform::format_rfc3339_ms(q->at_ms) + ": " +
            config.storage.path + ": " + q->reason + ". It is kept, unchanged, as " + q->file +
            (q->incarnation.empty() ? "" : " (incarnation " + q->incarnation + ")") +
            "; events still pending in it were not delivered. Capture goes on in a fresh "
            "outbox (incarnation " + outbox.incarnation() + ")",
        {{"file", q->file}, {"reason", q->reason}, {"incarnation", outbox.incarnation()}});
  }

  // Written by the delivery thread while it runs, by this one before and after.
  const std::string state_path = config.state_file();
  nlohmann::json totals_before = nlohmann::json::object();
  if (auto previous = read_agent_state(state_path); previous && previous->totals.is_object()) {
    totals_before = previous->totals;
  } else if (!previous && previous.status().code() == Status::Code::kCorruption) {
    // Rewritten below: the totals of earlier runs start again from this one.
    platform::log(platform::LogLevel::kWarning, "state_file_damaged",
                  previous.status().message() + "; it is written anew, the totals of earlier "
                                                "runs are lost");
  }
  AgentState state;
  state.pid = static_cast<long>(::getpid());
  state.running = true;
  state.started_ms = platform::unix_ms();
  state.hub_uri = config.hub.uri;
  state.totals = totals_before;
  auto save_state = [&] {
    state.updated_ms = platform::unix_ms();
    Status w = write_agent_state(state_path, state);
    if (!w) {
      platform::log(platform::LogLevel::kError, "storage_error",
                    "cannot write " + state_path + ": " + w.to_string());
    }
  };

  AgentCounters counters;
  counters.started_ms = state.started_ms;
  {
    // The last day's dead letters from before this start count in the verdict, as the file's
    // count does in edgesync status: the two must not disagree after a restart.
    std::vector<int64_t> failed;
    if (storage::Outbox::dead_letter_times(config.storage.path, state.started_ms - 86'400'000,
                                           &failed)) {
      for (int64_t at : failed) counters.dead_letter_window.add(at);
    }
  }
  // The delivery thread's copy of the running configuration (the health message reads it).
  Config delivery_config = config;
  // Delivery thread: the health message from what the agent has and does now.
  auto build_health = [&]() -> nlohmann::json {
    HealthSnapshot snap;
    snap.config = &delivery_config;
    snap.counters = &counters;
    snap.outbox = outbox.stats();
    snap.incarnation = outbox.incarnation();
    if (auto c = outbox.corruption_seen()) snap.outbox_damage = *c;
    snap.hub_state = state.hub_state;
    snap.hub_uri = state.hub_uri;
    snap.hub_since_ms = state.hub_since_ms;
    snap.now_ms = platform::unix_ms();
    if (!delivery_config.remote_config.trusted_keys.empty()) {
      auto st = nlohmann::json::parse(remote.status_payload(), nullptr, false);
      if (st.is_object()) {
        snap.config_status = {{"effective_sha256", st.value("effective_sha256", "")},
                              {"scopes", st.value("scopes", nlohmann::json::object())}};
        // Kept only in memory: the health message and `edgesync status` are where they show.
        for (const char* k : {"unverified_dropped", "last_unverified"}) {
          if (st.contains(k)) snap.config_status[k] = st[k];
        }
      }
    }
    snap.certificate = certificate_facts(delivery_config, snap.now_ms);
    if (auto free = platform::free_disk_bytes(platform::dirname_of(delivery_config.storage.path))) {
      snap.free_disk_bytes = *free;
    }
    snap.pid = state.pid;
    snap.totals_before = totals_before;
    nlohmann::json h = health_json(snap);
    state.totals = h["totals"];
    return h;
  };
  Publisher* publisher_ptr = nullptr;  // set below: the state callback needs the publisher
  IngestCore* ingest_ptr = nullptr;  // set below: an applied config gives it its contracts
  Publisher publisher(delivery_io, config, outbox, [&](HubState hs, const std::string& detail) {
    if (hs == HubState::kConnected) {
      // Posted: the publisher is in the middle of its connect handling.
      asio::post(delivery_io, [&remote] { remote.start_completed(); });
    }
    // "since" counts from the last change between connected and not: the attempts and
    // backoffs of one outage are one outage, which the verdict's "unreachable for" measures.
    const bool connected = hs == HubState::kConnected;
    if (connected != (state.hub_state == "connected") || state.hub_since_ms == 0) {
      state.hub_since_ms = platform::unix_ms();
    }
    state.hub_state = hub_state_name(hs);
    // The broker it is on (or tries next): one of hub.uri and hub.fallback_uris.
    if (publisher_ptr) state.hub_uri = publisher_ptr->current_uri();
    if (!detail.empty()) state.last_error = detail;
    // A damaged page met while running stops delivery at it; the publisher reports that as a
    // state change, and the reason goes to the status file with it.
    if (auto c = outbox.corruption_seen()) state.outbox_error = *c;
    if (hs != HubState::kStopped) {
      save_state();
      // Posted: the publisher is in the middle of its state change.
      asio::post(delivery_io, [&] {
        if (publisher_ptr) publisher_ptr->publish_health(events::json_text(build_health()));
      });
    }
  });
  publisher_ptr = &publisher;
  publisher.set_counters(&counters);
  outbox.set_on_committed([&] {
    if (publisher.take_wake_request()) asio::post(delivery_io, [&] { publisher.wake(); });
  });

  // Everything below runs on the delivery thread once it starts. Messages are posted, not
  // handled inside the publisher's event loop: applying one may reconnect the publisher.
  publisher.set_config_channel(
      remote.topics(),
      [&](const std::string& topic, const std::string& payload) {
        asio::post(delivery_io, [&remote, topic, payload] { remote.on_message(topic, payload); });
      },
      [&](uint64_t epoch) {
        asio::post(delivery_io, [&remote, epoch] { remote.on_config_channel_up(epoch); });
      });
  publisher.publish_config_status(remote.status_payload());
  remote.set_hooks(RemoteConfig::Hooks{
      [&](const Config& next, const ConfigChange& change, bool topics_changed) {
        state.hub_uri = next.hub.uri;
        // The file's (or a push's) level, also over a level set through the control socket.
        platform::set_log_level(*platform::parse_log_level(next.log.level));
        delivery_config = next;
        publisher.set_config_topics(remote.topics());
        publisher.reconfigure(next, change.reconnect || topics_changed, remote.epoch());
        // Contracts are read again on every apply (a reload after editing a schema file
        // picks it up); on failure the running ones stay (check_effective refused such a
        // config already, so only a file changed since gets here).
        auto contracts = ContractRegistry::load(next.ingest.contract_dirs());
        if (!contracts) {
          platform::log(platform::LogLevel::kError, "contracts_not_reloaded",
                        "event contracts not reloaded, the running ones stay: " +
                            contracts.status().message());
        }
        std::shared_ptr<const ContractRegistry> reloaded = contracts ? *contracts : nullptr;
        asio::post(io, [&, next, reloaded] {
          config = next;  // the ingest server's limits apply from its next read of them
          outbox.set_limits(outbox_limits(next));
          ingest_ptr->set_max_line_bytes(next.ingest.max_line_bytes);
          if (reloaded) ingest_ptr->set_contracts(reloaded);
        });
      },
      [&](const std::string& payload) { publisher.publish_config_status(payload); }});

  IngestCore ingest_core(io, config, outbox);
  ingest_core.set_counters(&counters);
  {
    // check_effective() loaded them once already: a failure here is a file changed since.
    auto contracts = ContractRegistry::load(config.ingest.contract_dirs());
    if (!contracts) {
      std::cerr << "edgesync: refusing to start: event contracts: " << contracts.status().message()
                << "\n";
      return 1;
    }
    platform::log(platform::LogLevel::kInfo, "contracts_loaded",
                  "event contracts: " + std::to_string((*contracts)->size()) + " loaded from " +
                      std::to_string(config.ingest.contract_dirs().size()) + " folder(s)",
                  {{"contracts", std::to_string((*contracts)->size())}});
    ingest_core.set_contracts(std::move(*contracts));
  }
  ingest_ptr = &ingest_core;
  IngestServer ingest(ingest_core);
  s = ingest.start();
  if (!s) {
    std::cerr << "edgesync: " << s.to_string() << "\n";
    return 1;
  }
  SpoolIngest spool(ingest_core);  // ingest.spool_dir; off when empty
  s = spool.start();
  if (!s) {
    std::cerr << "edgesync: refusing to start: " << s.to_string() << "\n";
    return 1;
  }
  // HTTP on loopback (ingest.http.listen; off when empty): the same core as the socket.
  std::unique_ptr<HttpIngest> http;
  if (!config.ingest.http.listen.empty()) {
    http = std::make_unique<HttpIngest>(ingest_core);
    s = http->start();
    if (!s) {
      std::cerr << "edgesync: refusing to start: " << s.to_string() << "\n";
      return 1;
    }
    std::cerr << "edgesync: HTTP ingest on " << http->bound() << "\n";
  }
  // HTTP's stop waits for the commits of the requests in progress, which run on this thread:
  // it runs on a thread of its own, and the rest of ingest stops after it.
  std::thread http_stopper;
  // The technician's requests: repairs through the outbox's writer, live figures from the
  // delivery thread (which owns them), replies back on this one.
  ControlServer control(
      io, config.control_socket(), outbox,
      ControlServer::Handlers{
          [&](std::function<void(nlohmann::json)> reply) {
            asio::post(delivery_io, [&, reply] {
              nlohmann::json h = build_health();
              asio::post(io, [reply, h = std::move(h)] { reply(h); });
            });
          },
          [&] { asio::post(delivery_io, [&] { publisher.wake(); }); }});
  s = control.start();
  if (!s) {
    std::cerr << "edgesync: " << s.to_string() << "\n";
    return 1;
  }
  // Prometheus text on metrics.listen (off when empty). The figures are the delivery thread's:
  // a scrape asks it, as the control socket does, from one of the server's own threads, and
  // gives up after 2 s (503) rather than wait on a delivery loop that does not answer.
  std::unique_ptr<MetricsServer> metrics;
  if (!config.metrics.listen.empty()) {
    auto scrape = [&]() -> std::optional<std::string> {
      struct Figures {
        nlohmann::json health;
        LatencyHistogram::Snapshot ack_latency;
        LatencyHistogram::Snapshot age_at_delivery;
      };
      auto answer = std::make_shared<std::promise<Figures>>();
      std::future<Figures> figures = answer->get_future();
      asio::post(delivery_io, [&, answer] {
        // Read together on the thread that writes them: _count matches the delivered total.
        answer->set_value(Figures{build_health(), counters.ack_latency.snapshot(),
                                  counters.age_at_delivery.snapshot()});
      });
      if (figures.wait_for(std::chrono::seconds(2)) != std::future_status::ready) {
        return std::nullopt;
      }
      const Figures f = figures.get();
      return metrics_text(f.health, f.ack_latency, f.age_at_delivery);
    };
    metrics = std::make_unique<MetricsServer>(config.metrics.listen, scrape);
    s = metrics->start();
    if (!s) {
      std::cerr << "edgesync: refusing to start: " << s.to_string() << "\n";
      return 1;
    }
    std::cerr << "edgesync: metrics on http://" << metrics->bound() << "/metrics\n";
  }
  save_state();
  s = publisher.start();
  if (!s) {
    std::cerr << "edgesync: " << s.to_string() << "\n";
    return 1;
  }
  // A start is complete once the hub is reached (above) or, with the hub away, once the agent
  // has run this long: a setting that crashes the agent while it connects is rolled back too.
  // The health message, every health.interval_s (and at every state change, above).
  asio::steady_timer health_timer(delivery_io);
  std::function<void()> health_tick = [&] {
    health_timer.expires_after(std::chrono::seconds(delivery_config.health.interval_s));
    health_timer.async_wait([&](asio::error_code ec) {
      if (ec) return;
      publisher.publish_health(events::json_text(build_health()));
      save_state();  // with the totals
      health_tick();
    });
  };
  health_tick();
  asio::steady_timer start_complete_timer(delivery_io);
  start_complete_timer.expires_after(std::chrono::seconds(30));
  start_complete_timer.async_wait([&](asio::error_code ec) {
    if (!ec) remote.start_completed();
  });
  auto delivery_work = asio::make_work_guard(delivery_io);
  std::thread delivery_thread([&] {
    // Delivery gives way to ingest without being starved (platform/threads.h); paho's
    // threads, started by the first connect on this thread, inherit its priority.
    platform::set_current_thread_name("delivery");
    if (!platform::lower_current_thread_priority(platform::kDeliveryNiceSteps)) {
      platform::log(platform::LogLevel::kWarning, "thread_priority",
                    "cannot lower the delivery thread's priority; it competes with ingest for the "
                    "CPU");
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

  // The client certificate's expiry, read again every day: a warning 30 days ahead, an error
  // once expired, in the log and in the hub's status message.
  asio::steady_timer certificate_timer(io);
  std::function<void()> check_certificate = [&] {
    certificate_timer.expires_after(std::chrono::hours(24));
    certificate_timer.async_wait([&](asio::error_code ec) {
      if (ec) return;
      const std::string warning =
          certificate_warning(config, certificate_facts(config, platform::unix_ms()));
      if (!warning.empty()) platform::log(platform::LogLevel::kWarning, "certificate", warning);
      asio::post(delivery_io, [&publisher] { publisher.refresh_status(); });
      check_certificate();
    });
  };
  check_certificate();

  bool stopping = false;
  bool finished = false;
  asio::steady_timer stop_deadline(io);
  auto finish = [&] {
    if (finished) return;
    finished = true;
    stop_deadline.cancel();
    watchdog.cancel();
    certificate_timer.cancel();
    control.stop();
    if (http) {
      http->abandon();  // past the deadline: requests still waiting are answered 503
      if (http_stopper.joinable()) http_stopper.join();
    }
    // Before the delivery thread goes: a scrape in progress gets its answer, not a 2 s wait.
    if (metrics) metrics->stop();
    asio::post(delivery_io, [&] {
      start_complete_timer.cancel();
      health_timer.cancel();
      remote.stop();
      publisher.stop();
      delivery_work.reset();
      delivery_io.stop();
    });
    delivery_thread.join();
    outbox.close();
    state.running = false;
    state.hub_state = hub_state_name(HubState::kStopped);
    state.totals = add_counts(totals_before, counts_json(counters));
    save_state();
    io.stop();
  };
  // SIGHUP (systemctl reload) re-reads the local file; a bad one is refused and the running
  // configuration stays.
  asio::signal_set signals(io, SIGTERM, SIGINT, SIGHUP);
  std::function<void()> wait_signal = [&] {
    signals.async_wait([&](asio::error_code ec, int signo) {
      if (ec) return;
      if (signo == SIGHUP) {
        if (!stopping) asio::post(delivery_io, [&remote] { remote.reload_local(); });
        wait_signal();
        return;
      }
      if (stopping) {
        wait_signal();
        return;
      }
      stopping = true;
      platform::log(platform::LogLevel::kNotice, "agent_stopping",
                    "signal " + std::to_string(signo) + ", stopping");
      platform::notify_stopping();
      // Producers with replies still unread get 10 s; after that their replies are dropped
      // (the events themselves are committed or refused already).
      stop_deadline.expires_after(std::chrono::seconds(10));
      stop_deadline.async_wait([&](asio::error_code e) {
        if (!e) finish();
      });
      // The spool's requests in flight finish first: they need the ingest core running.
      auto stop_ingest = [&] {
        spool.stop([&] { ingest.stop([&] { asio::post(io, finish); }); });
      };
      if (http) {
        http_stopper = std::thread([&, stop_ingest] {
          http->stop();
          asio::post(io, stop_ingest);
        });
      } else {
        stop_ingest();
      }
      wait_signal();
    });
  };
  wait_signal();
  // The handler is armed: a signal that came during start-up is delivered now.
  pthread_sigmask(SIG_UNBLOCK, &stop_signals, nullptr);

  platform::notify_ready();
  platform::log(platform::LogLevel::kNotice, "agent_started",
                "agent " + config.device.store_id + "/" + config.device.id + " listening on " +
                    config.ingest.socket + ", outbox " + config.storage.path + " (next seq " +
                    std::to_string(next_seq) + ")",
                {{"next_seq", std::to_string(next_seq)}});
  io.run();
  if (!finished) finish();
  platform::log(platform::LogLevel::kNotice, "agent_stopped", "stopped");
  return 0;
}

}  // namespace edgesync::agent
