// What the box remembers about pushed configuration, in one file beside the database
// (remote-config.json), replaced atomically (temp file, fsync, rename) at every change.
//
// It holds the envelopes as received, so a start re-verifies them against the keys trusted
// then, and the bookkeeping for replay protection, last-known-good and the start counter.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>

#include "agent/config_layers.h"
#include "platform/status.h"

namespace edgesync::agent {

struct AppliedLayer {
  int64_t version = 0;
  std::string envelope;  // the message as received
  std::string key_id;
  int64_t issued_at_ms = 0;
  int64_t applied_at_ms = 0;
  bool operator==(const AppliedLayer&) const = default;
};
using LayerSet = std::map<Scope, AppliedLayer>;

// One line of the history: applied, rejected, rolled_back, reloaded (the local file), refused
// (a local reload).
struct ConfigRecord {
  int64_t at_ms = 0;
  std::string kind;
  std::string scope;  // fleet, store, device, local; empty for a rollback
  int64_t version = 0;
  std::string reason;
  std::string sha256;  // of the effective config after it (applied, rolled_back, reloaded)
};

struct RemoteConfigState {
  LayerSet applied;    // what the agent runs with, on top of the local file
  // What it rolls back to: the layers that ran before the newest push (unless those never
  // reached the hub), or the applied ones once they completed a start and their probation.
  LayerSet last_good;
  // The highest version considered per scope (applied, rejected after verification, or
  // rolled back): a retained message delivered again is not applied or reported again.
  std::map<Scope, int64_t> seen;
  // The applied layers have not completed a start of the agent yet.
  bool unproven = false;
  // Starts begun and not completed. A start that finds it at 1 or more while `unproven` rolls
  // back one step (to last_good, then to the local file alone): the last start with these
  // layers did not get through.
  int64_t failed_starts = 0;
  // A push changed the hub connection at this time and the hub has not been reached since.
  int64_t probation_since_ms = 0;
  std::string effective_sha256;
  // Messages on the config topics dropped because their signature did not verify, since the
  // agent started (not persisted).
  int64_t unverified_dropped = 0;
  // The newest of those: when, on which scope's topic and why (kind "dropped"). In memory only,
  // like the count: a flood of junk must not write to the flash or the history.
  std::optional<ConfigRecord> last_unverified;
  std::optional<ConfigRecord> last_rejection;
  std::optional<ConfigRecord> last_rollback;
  std::deque<ConfigRecord> history;  // oldest first, at most kMaxHistory

  static constexpr size_t kMaxHistory = 50;
  void record(ConfigRecord r);
};

// <directory of storage.path>/remote-config.json
std::string remote_config_state_path(const Config& config);

Status write_remote_config_state(const std::string& path, const RemoteConfigState& state);
// NotFound when there is no file yet (nothing was ever pushed); Corruption if it is unreadable.
Result<RemoteConfigState> read_remote_config_state(const std::string& path);

// The reported state (the retained config/status message and `edgesync status`), as
// config/contracts/config-status.schema.json describes it: {"device_id","store_id",
// "remote_config","scopes":{"fleet":{"version","key_id","issued_at","applied_at"}|null,...},
// "effective_sha256","probation"?:{"since","until"},"last_rejection"?,"last_rollback"?,"at"}.
nlohmann::json config_status_json(const Config& config, const RemoteConfigState& state,
                                  int64_t now_ms);

}  // namespace edgesync::agent
