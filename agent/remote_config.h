// Pushed configuration on the box: which configuration the agent runs with, and every change
// to it (docs/FLEET.md).
//
// The local file is the base; the signed layers the central team publishes (fleet, store,
// device) are merged onto it. A push is verified (key, signature, expiry, version), merged and
// validated whole, persisted with its version, and only then applied to the running agent. A
// push that changed the hub connection is on probation: if the hub is not reached within
// remote_config.probation_s, the agent rolls back to the last known good layers. A start that
// did not complete with freshly applied layers rolls them back at the next start.
//
// Threads: everything here runs on the agent's ingest thread (asio io_context); the
// publisher's events are posted to it.
#pragma once

#include <asio.hpp>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "agent/config.h"
#include "agent/config_envelope.h"
#include "agent/config_layers.h"
#include "agent/remote_config_state.h"

namespace edgesync::agent {

// The local configuration file: its JSON (for merging) and its parsed form.
struct LocalConfig {
  nlohmann::json json;
  Config config;
};
// Reads and validates the local file (FileChecks::kCheck). The message lists every problem.
Result<LocalConfig> load_local_config(const std::string& path);

// Checks the effective configuration needs beyond parse_config: the private key's mode.
std::vector<std::string> check_effective(const Config& config);

// For the tools beside a running agent (`edgesync status`): `local` with the layers `state`
// says are applied, as the agent runs it. The agent verified them; this does not again (the
// tools may not read the trusted keys). `local` itself if the merge is not a valid config.
Config effective_config(const Config& local, const RemoteConfigState& state);

class RemoteConfig {
 public:
  struct Hooks {
    // Switch the running agent to `config`. `change` says what differs from the one before;
    // `topics_changed`: the config topics to subscribe to are different (a reconnect).
    std::function<void(const Config& config, const ConfigChange& change, bool topics_changed)>
        apply;
    // The reported state changed: publish this payload (retained) on the config status topic.
    std::function<void(const std::string& payload)> report;
  };

  RemoteConfig(asio::io_context& io, std::string local_path, LocalConfig local);

  // Before anything else starts: the configuration this start runs with, the local file with
  // the pushed layers, or what is left after rolling back layers that cannot be used (each
  // reason recorded). Counts the start (see RemoteConfigState::failed_starts).
  const Config& begin_start();
  void set_hooks(Hooks hooks) { hooks_ = std::move(hooks); }
  // The agent is up (it reached the hub, or ran for a while without): the start counter is
  // reset, and a probation interrupted by a restart goes on to its deadline. Once per run.
  void start_completed();
  // The agent is stopping: no timer fires and nothing is applied any more.
  void stop();

  const Config& current() const { return current_; }
  // Incremented by every apply; the publisher reports which one it runs with.
  uint64_t epoch() const { return epoch_; }
  // The three scope topics, or none when remote configuration is off (no trusted keys).
  std::vector<std::string> topics() const;
  // The config status payload as it stands.
  std::string status_payload() const;

  // A message on a config topic.
  void on_message(const std::string& topic, const std::string& payload);
  // The hub granted the config topics to a connection made with configuration `epoch`: the box
  // can be reached by the next push, which is what ends a probation.
  void on_config_channel_up(uint64_t epoch);
  // SIGHUP: re-read the local file; refuse it (keeping the running config) if it is invalid or
  // changes settings only a restart can apply.
  void reload_local();

 private:
  // The effective config for these layers on top of `local`, or every reason it is unusable.
  // `verify`: check each layer's signature against the trusted keys again (at start).
  // `dropped`: the layers left out (scope, why), when given.
  Result<Config> build(const LocalConfig& local, const LayerSet& layers, bool verify,
                       std::vector<std::pair<Scope, std::string>>* dropped) const;
  // A message whose signature did not verify (or could not be checked): counted, logged at
  // most once a minute per scope, nothing written.
  void unverified(Scope scope, const std::string& reason);
  // A message the team signed and the box refuses: recorded, persisted, reported once.
  void reject(Scope scope, int64_t version, const std::string& reason,
              const std::string& message);
  void rollback(const std::string& reason);
  // `next` becomes the running configuration.
  void switch_to(Config next);
  void arm_probation(std::chrono::milliseconds after);
  // Layers through both a start and their probation become last known good.
  void promote_if_proven();
  bool persist();
  void report();
  bool enabled() const { return !current_.remote_config.trusted_keys.empty(); }

  asio::io_context& io_;
  std::string local_path_;
  LocalConfig local_;
  TrustedKeys keys_;
  std::string state_path_;
  RemoteConfigState state_;
  Config current_;
  uint64_t epoch_ = 0;
  uint64_t probation_epoch_ = 0;
  bool start_completed_ = false;
  bool stopped_ = false;
  asio::steady_timer probation_timer_;
  Hooks hooks_;
  // Per scope, the hash of the last message reported as rejected: a retained message the
  // broker delivers again at every connect is reported once.
  std::map<Scope, std::string> last_rejected_message_;
  std::map<Scope, std::chrono::steady_clock::time_point> last_unverified_log_;
};

}  // namespace edgesync::agent
