// The `edgesync` subcommands other than `agent`. Each returns the process exit code.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "agent/config.h"
#include "storage/outbox.h"

namespace edgesync::agent {

// `edgesync send`: the request lines of `input_file` ("" or "-": standard input) through the
// ingest socket, or over HTTP ingest to `url` (http://HOST:PORT[/PATH] or unix:/PATH), each
// reply printed in input order. Exit 0 every event accepted, 1 one refused or without a reply,
// 2 the input cannot be read or the agent not reached (or a bad URL, or a build without HTTP).
int cli_send(const std::string& socket_path, const std::string& input_file);
int cli_send_http(const std::string& url, const std::string& input_file);
int cli_status(const Config& config, bool json);
int cli_outbox_list(const Config& config, bool all, size_t limit, bool json);
int cli_dead_letters(const Config& config, size_t limit, bool json);

// A repair (dead-letters retry|purge, outbox hold|release) through the running agent's control
// socket, or on the outbox file when no agent runs. `older_than_s`: a purge's as given. Exit 0
// done, 1 refused or failed or something asked for was skipped, 2 usage.
int cli_repair(const Config& config, const storage::RepairRequest& request, int64_t older_than_s,
               bool json);
// The running agent's log level until it restarts or reloads. Exit 0 done, 1 no agent or
// refused, 2 not a level.
int cli_log_level(const Config& config, const std::string& level, bool json);

// Pushed configuration (docs/FLEET.md). Exit codes: 0 done, 1 a verdict or state that is not
// ok (an invalid envelope, an unreadable state file), 2 refused input (bad options, a layer a
// box would refuse, a file that would be overwritten).
int cli_keys_generate(const std::string& out_dir, const std::string& name);
int cli_enroll(const Config& config, const std::string& out_dir);

struct ConfigSignOptions {
  std::string key_file;
  std::string key_id;
  std::string target;  // fleet, STORE_ID or STORE_ID/DEVICE_ID: the one topic it is for
  int64_t version = 0;
  bool expires_given = false;  // false: no expiry
  std::string expires;         // "30d", "12h", "90m", "3600s"
  std::string file;     // the layer's JSON; "" or "-": standard input
};
int cli_config_sign(const ConfigSignOptions& options);
// `scope` is empty or fleet|store|device; `envelope_file` "" or "-" reads standard input.
int cli_config_verify(const std::string& keys_dir, const std::string& scope,
                      const std::string& envelope_file, bool json);

enum class ConfigView { kSummary, kEffective, kHistory };
int cli_config_show(const std::string& config_path, ConfigView view, bool json);

// `edgesync doctor`: checks the box (configuration, clock, outbox, disk, agent, socket,
// certificates) and the hub link (DNS, TCP, TLS, MQTT), each network step within `timeout_s`.
// Loads the configuration itself: an invalid one is a finding, not a usage error. Exit 0
// nothing failed (warnings allowed), 1 some check failed, 2 bad usage.
int cli_doctor(const std::string& config_path, bool json, int timeout_s);

// The outbox as a technician looks into it (agent/cli_outbox.cc), read-only.
struct OutboxListOptions {
  bool all = false;  // also the delivered history kept for de-duplication
  size_t limit = 100;
  std::string type;   // "" any; "sale.completed" exactly that type; "pos.*" a prefix
  std::string since;  // "" any; else received within that long: "30m", "12h", "7d", "3600s"
};
// Exit 0, 1 the outbox could not be read, 2 a bad --type or --since.
int cli_outbox_list(const Config& config, const OutboxListOptions& options, bool json);
// `what`: digits only is a seq, anything else an id. Exit 0 found, 1 not found (or the outbox
// could not be read), 2 usage.
int cli_outbox_show(const Config& config, const std::string& what, bool json);
// Follows accepted events, the delivered watermark and new dead letters until SIGINT or
// SIGTERM; exit 0.
int cli_outbox_tail(const Config& config, bool json);
// A consistent copy of the outbox at `out` (refused if it exists) and out.summary.json;
// `since` "" or a duration: older events and dead letters left out. Exit 0, 1 failed (or the
// copy did not pass quick_check), 2 usage or a file that would be overwritten.
int cli_export(const Config& config, const std::string& out, const std::string& since,
               bool json);

// `edgesync reconcile` (agent/cli_reconcile.cc): the hub's proof per box and incarnation that
// every seq is received or announced (agent/reconcile.h), from a capture or a live subscription.
// Needs no box configuration. Exit 0 nothing lost, 1 a seq lost, 2 usage, an unreadable capture
// or a hub that cannot be reached or refuses the subscription.
struct ReconcileCliOptions {
  std::string capture;  // NDJSON capture ("-": standard input); empty: subscribe to hub_uri
  std::string hub_uri;
  std::string ca_file;
  std::string cert_file;  // with key_file, or neither
  std::string key_file;
  std::string username;
  std::string password;
  std::string topic_prefix = "edgesync/v1";
  int duration_s = 10;
  std::string save;              // with hub_uri: record what arrives as a capture (made 0600)
  bool from_first_seen = false;  // captures only; a live run always checks from the first seen
  bool json = false;
};
int cli_reconcile(const ReconcileCliOptions& options);

// `edgesync contracts list|check|diff` (agent/cli_contracts.cc). `dirs` given: those folders
// instead of the configuration's (an integrator's laptop has no agent configuration).
struct ContractsCliOptions {
  std::vector<std::string> dirs;
};
// `config`: null when --contracts was given and no configuration was read.
int cli_contracts_list(const ContractsCliOptions& options, const Config* config, bool json);
int cli_contracts_check(const ContractsCliOptions& options, const Config* config,
                        const std::string& file, bool json);
int cli_contracts_diff(const std::string& old_file, const std::string& new_file, bool json);

}  // namespace edgesync::agent
