// The real edgesync agent binary (from $EDGESYNC_BIN) run as a child process.
//
// AgentConfig is the agent's JSON config file; AgentProcess writes it, runs
// `edgesync agent --config FILE` with stdout/stderr appended to agent.log in the test
// directory, and waits until the ingest socket accepts connections.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tests/harness/process.h"

namespace edgesync::test {

class MosquittoBroker;

// Path of the agent binary from $EDGESYNC_BIN; throws std::runtime_error if unset or missing.
std::string edgesync_bin();
// The command line that runs the agent binary with `args`: EDGESYNC_BIN_WRAPPER (qemu-user in
// cross builds) + EDGESYNC_BIN + args.
std::vector<std::string> edgesync_argv(const std::vector<std::string>& args);
// Environment entries that preload `library` into the agent. In ASan builds the runtime insists
// on coming first in the library list; a preloaded (uninstrumented) shim ahead of it is
// harmless, so the check is switched off, keeping any ASAN_OPTIONS the test runs with.
std::vector<std::string> preload_environment(const std::string& library);

struct AgentConfig {
  std::string device_id = "pos-01";
  std::string store_id = "store-042";
  std::string storage_path;
  int64_t max_bytes = 1073741824;
  int64_t keep_delivered = 10000;
  std::string socket_path;
  int64_t max_line_bytes = 262144;
  int64_t max_connections = -1;  // ingest.max_connections; -1 leaves it out (the default)
  int64_t idle_timeout_s = -1;   // ingest.idle_timeout_s; -1 leaves it out (the default)
  std::string hub_uri;
  std::string topic_prefix = "edgesync/v1";
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  int keepalive_s = 30;
  int max_inflight = 64;
  int linger_ms = -1;  // hub.linger_ms; -1 leaves it out (the agent's default)
  int refused_retry_s = -1;  // hub.refused_retry_s; -1 leaves it out (the agent's default)
  int retry_initial_ms = 100;
  int retry_max_ms = 2000;
  // retry.reconnect_spread_ms: 0, the usual backoff, so a test's broker restart is not waited
  // out over a window (backoff_test and bench/fleet cover the spread).
  int retry_reconnect_spread_ms = 0;
  // Merged into to_json() last (JSON merge patch): sections or keys the fields above do not
  // cover, e.g. "remote_config".
  nlohmann::json extra = nlohmann::json::object();

  // Defaults for a test: db and socket in dir, hub = the broker with the client cert.
  static AgentConfig for_test(const std::string& dir, const MosquittoBroker& broker);
  nlohmann::json to_json() const;
  // The config file text: to_json() pretty-printed under a `//` comment line.
  std::string to_text() const;
  // "<topic_prefix>/<store_id>/<device_id>"
  std::string topic_base() const;
};

class AgentProcess {
 public:
  // Writes the config to dir/agent.json (rewritten on every start()).
  AgentProcess(std::string dir, AgentConfig config);
  ~AgentProcess();  // SIGKILLs a still-running agent
  AgentProcess(const AgentProcess&) = delete;
  AgentProcess& operator=(const AgentProcess&) = delete;

  // Starts the agent and waits until the ingest socket accepts connections. Throws
  // std::runtime_error (with the agent log) if it exits first or the timeout passes.
  void start(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // SIGTERM, wait; returns the wait status, or nullopt if it did not exit within timeout (it
  // is then SIGKILLed so the test does not hang).
  std::optional<int> terminate(std::chrono::milliseconds timeout = std::chrono::seconds(20));
  // SIGKILL and reap.
  void kill9();
  // Extra NAME=VALUE entries for the agent's environment (LD_PRELOAD, FAKETIME, ...), from the
  // next start() on; the CLI (run_cli) does not get them. They go through env(1) ahead of
  // EDGESYNC_BIN_WRAPPER, so under qemu-user they reach the emulator, not the agent.
  void set_environment(std::vector<std::string> entries) { environment_ = std::move(entries); }
  // Sends `signo` to the agent (under qemu: to the emulator, which passes it on).
  void signal(int signo);
  bool running();
  // The agent's process id (under qemu-user: the emulator's); 0 if not started.
  pid_t pid() const;

  AgentConfig& config() { return config_; }
  // Writes config() to config_path() (start() does it too): for CLI runs without an agent.
  void write_config();
  const std::string& config_path() const { return config_path_; }
  const std::string& socket_path() const { return config_.socket_path; }
  std::string log_path() const { return dir_ + "/agent.log"; }
  std::string log() const;

  // Runs `edgesync <args...>` (for CLI subcommands) and captures its output.
  static CommandResult run_cli(const std::vector<std::string>& args,
                               const std::string& stdin_text = "",
                               std::chrono::milliseconds timeout = std::chrono::seconds(30));

 private:
  // The agent's ready line (printed after READY=1) is in the log after this start's marker.
  bool says_ready_since(const std::string& marker) const;
  std::string dir_;
  AgentConfig config_;
  std::string config_path_;
  std::unique_ptr<ChildProcess> child_;
  std::vector<std::string> environment_;
  int starts_ = 0;
};

}  // namespace edgesync::test
