// The agent under test as a child process, with a config written by the bench, and a cheap
// reader of its delivered watermark.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "bench/options.h"
#include "storage/sqlite.h"
#include "tests/harness/mosquitto_broker.h"
#include "tests/harness/process.h"

namespace edgesync::bench {

class Agent {
 public:
  // `patch` is merged into the config (JSON merge patch). The bench sets no pacing keys
  // (hub.linger_ms): every case runs with the agent's default for them.
  Agent(const Options& opt, const std::string& dir, const test::MosquittoBroker& broker,
        const nlohmann::json& patch = nlohmann::json::object());
  ~Agent();
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  void start();
  void stop();
  // SIGSTOP / SIGCONT: holds the agent still (timers, reconnects) while the bench sets up
  // something that must be in place before it acts. stop() resumes it first.
  void pause();
  void resume();
  pid_t pid() const { return child_.pid(); }
  std::string socket() const { return dir_ + "/ingest.sock"; }
  std::string db() const { return dir_ + "/outbox.db"; }
  std::string log() const { return dir_ + "/agent.log"; }

  // `edgesync status --config F --json`.
  nlohmann::json status() const;
  bool wait_hub_connected(std::chrono::seconds timeout) const;

 private:
  const Options& opt_;
  std::string dir_;
  std::string config_;
  test::ChildProcess child_;
};

// Polls the persisted delivered watermark (what `edgesync status` reports as
// outbox.last_delivered_seq) straight from the database, read-only, without starting a process
// ten times a second.
class WatermarkReader {
 public:
  explicit WatermarkReader(const std::string& db_path);
  ~WatermarkReader();
  int64_t read();

 private:
  std::unique_ptr<storage::Database> db_;
  std::unique_ptr<storage::Statement> query_;
};

}  // namespace edgesync::bench
