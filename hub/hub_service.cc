#include "hub/hub_service.h"

#include <pthread.h>
#include <signal.h>

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <thread>

#include "hub/batch_committer.h"
#include "hub/mqtt_consumer.h"
#include "hub/resend_sweep.h"
#include "hub/web_server.h"
#include "platform/log.h"
#include "platform/systemd_notify.h"

namespace edgesync::hub {

namespace {

// A handler whose message was not committed does not return: returning would acknowledge it.
// It waits here for the process to end; the broker keeps the message for the next start.
[[noreturn]] void park_unacknowledged() {
  while (true) std::this_thread::sleep_for(std::chrono::hours(1));
}

}  // namespace

int run_hub(const HubConfig& config) {
  // Signals are taken by sigwait on this thread: blocked before any thread starts.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  // A page address that will be refused is said now, not after waiting for the database.
  if (!config.web.listen.empty()) {
    Status s = HubWebServer::check_listen(config.web.listen);
    if (!s) {
      std::cerr << "edgesync-hub: " << s.message() << "\n";
      return 1;
    }
  }

  // PostgreSQL first: without it nothing may be acknowledged. It is waited for, as systemd would
  // otherwise restart the hub in a loop while the database starts.
  std::unique_ptr<HubStore> store;
  for (int attempt = 0;; ++attempt) {
    auto opened = HubStore::open(config.database, config.topic_prefix);
    if (opened) {
      store = std::move(*opened);
      break;
    }
    if (attempt == 0 || attempt % 30 == 0) {
      std::cerr << "edgesync-hub: waiting for the database: " << opened.status().message()
                << "\n";
    }
    timespec one_second{1, 0};
    if (sigtimedwait(&stop_signals, nullptr, &one_second) > 0) return 0;
  }
  std::unique_ptr<HubWebServer> web;
  if (!config.web.listen.empty()) {
    web = std::make_unique<HubWebServer>(config.web.listen, config.database);
    Status s = web->start();
    if (!s) {
      std::cerr << "edgesync-hub: " << s.message() << "\n";
      return 1;
    }
    std::cerr << "edgesync-hub: page on " << web->url() << "\n";
  }
  HubStore* db = store.get();
  BatchCommitter committer(
      [db](const std::vector<InboundMessage>& batch, BatchOutcome* outcome) {
        return db->apply(batch, outcome);
      },
      config.max_batch);

  std::vector<std::unique_ptr<MqttConsumer>> consumers;
  for (int i = 0; i < config.consumers; ++i) {
    consumers.push_back(std::make_unique<MqttConsumer>(config, i, [&committer](InboundMessage m) {
      if (!committer.commit(std::move(m))) park_unacknowledged();
    }));
  }
  for (auto& c : consumers) {
    Status s = c->start();
    if (!s) {
      std::cerr << "edgesync-hub: " << s.message() << "\n";
      // Connections already made may hold handlers in commit: end without waiting for them.
      committer.stop();
      std::cerr.flush();
      std::_Exit(1);
    }
  }
  // Asks boxes for what the hub lacks, through the first connection.
  MqttConsumer* first = consumers.front().get();
  ResendSweeper sweeper(
      config,
      [first](const std::string& topic, const std::string& payload) {
        return first->publish(topic, payload);
      },
      [first] { return first->connected(); });
  sweeper.start();
  platform::notify_ready();
  std::cerr << "edgesync-hub: consuming " << config.topic_prefix << " with "
            << consumers.size() << " connection(s)"
            << (config.subscription.shared_group.empty()
                    ? std::string()
                    : " in shared group " + config.subscription.shared_group)
            << (config.subscription.stores.empty()
                    ? std::string()
                    : ", " + std::to_string(config.subscription.stores.size()) + " store(s)")
            << "\n";

  int sig = 0;
  sigwait(&stop_signals, &sig);
  std::cerr << "edgesync-hub: stopping (signal " << sig << ")\n";
  if (web) web->stop();  // ends the pages' streams; _Exit below would not
  // Connections first, while the committer still runs: a handler waiting for a commit gets it,
  // its PUBACK is written, then the DISCONNECT. Then the committer: handlers still waiting (the
  // database is down) park, unacknowledged, and the broker keeps their messages.
  for (auto& c : consumers) c->request_stop();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  for (auto& c : consumers) c->wait_stopped(deadline);
  sweeper.stop();  // at most one look (statement_timeout 20 s) after the DISCONNECTs
  committer.stop();
  CommitterFigures f = committer.figures();
  std::cerr << "edgesync-hub: stopped after " << f.messages << " message(s) in " << f.batches
            << " transaction(s): " << f.events_new << " new event(s), " << f.events_repeated
            << " repeated, " << f.rejected << " rejected\n";
  std::cerr.flush();
  // Connection threads may be parked in a handler: leave without running their destructors.
  // What is committed is in PostgreSQL; the rest is still the broker's.
  std::_Exit(0);
}

}  // namespace edgesync::hub
