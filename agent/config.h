// The agent's configuration: one struct filled from the JSON file, then checked as a whole.
//
// Every problem is reported with its key path ("hub.uri: required"), all of them at once, and
// unknown keys are errors so that a typo cannot silently fall back to a default.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "platform/status.h"

namespace edgesync::agent {

struct Config {
  struct Device {
    std::string id;
    std::string store_id;
  } device;
  struct Storage {
    std::string path = "/var/lib/edgesync/outbox.db";
    int64_t max_bytes = int64_t{1} << 30;
    int64_t keep_delivered = 10000;
    int64_t max_dead_letters = 10000;  // the newest are kept
    int64_t dead_letter_days = 30;     // older ones are dropped
  } storage;
  struct Ingest {
    std::string socket = "/run/edgesync/ingest.sock";
    int64_t max_line_bytes = 256 * 1024;
    int64_t max_connections = 256;
    // A connection that sent part of a line and then nothing for this long is closed: the
    // partial line was never a request, and the connection holds one of max_connections.
    int64_t idle_timeout_s = 30;
    // Event contracts (docs/CONTRACTS.md): the shipped folder, then the operator's own. Empty
    // contracts_dir: none shipped (development and tests).
    std::string contracts_dir = "/usr/share/edgesync/contracts/events";
    std::vector<std::string> extra_contract_dirs;
    std::string unknown_types = "reject";  // reject, or accept (passed on unchecked)
    // Every folder to load, in order.
    std::vector<std::string> contract_dirs() const;
    // HTTP on loopback (docs/PROTOCOL.md): POST /v1/events, GET /v1/health. Off when empty;
    // HOST:PORT (a loopback address unless the operator says otherwise) or an absolute path,
    // a Unix socket.
    struct Http {
      std::string listen;
      int64_t max_body_bytes = 1 << 20;  // a larger request is answered 413
      int64_t max_connections = 8;       // served at once; more wait in the listen queue
    } http;
    // The spool folder (docs/PROTOCOL.md): files renamed into it are ingested, then moved to
    // done/ or failed/ beside a result file. Off when empty.
    std::string spool_dir;
  } ingest;
  struct Control {
    // The technician's request socket (docs/OPERATIONS.md), the agent's group only (mode 0660).
    // Empty: control.sock beside ingest.socket.
    std::string socket;
  } control;
  struct Health {
    // The retained health message is published this often, and on every connect and change
    // of the hub connection's state.
    int64_t interval_s = 60;
  } health;
  struct Log {
    std::string level = "info";   // error, warning, notice, info, debug (platform/log.h)
    std::string format = "auto";  // auto (journal under systemd, else text), text, json, journal
  } log;
  struct Metrics {
    // host:port for Prometheus text metrics over HTTP, e.g. 127.0.0.1:9465. Empty: off.
    std::string listen;
  } metrics;
  struct Hub {
    std::string uri;
    // More brokers of the same cluster, tried in turn after `uri` when it cannot be reached
    // (docs/HUB.md: the agent fails over and says which one it is on).
    std::vector<std::string> fallback_uris;
    std::string topic_prefix = "edgesync/v1";
    std::string client_id;  // default: edgesync-<store_id>-<device_id>
    std::string ca_file;
    std::string cert_file;
    std::string key_file;
    std::string username;
    std::string password;
    int64_t keepalive_s = 30;
    int64_t max_inflight = 64;
    // 0 (the default): every event is published as soon as it is committed, if the in-flight
    // window has room. Above 0, an opt-in for operators who want fewer, larger bursts: while
    // events keep arriving, publish them at most this often (an event after a quiet spell still
    // goes out at once).
    int64_t linger_ms = 0;
    // An event the hub refuses with a reason that may clear (not authorized, quota exceeded,
    // an unspecified or plugin error) is retried with backoff for this long, while the events
    // behind it keep flowing; then it is dead-lettered with the reason code.
    int64_t refused_retry_s = 300;
    bool allow_insecure = false;
  } hub;
  struct Retry {
    int64_t initial_ms = 500;
    int64_t max_ms = 60000;
    // The reconnect after losing a connection that was up (a broker restart drops the whole
    // fleet at once) is spread over this window, at most max_ms, so the broker gets about
    // fleet / (reconnect_spread_ms / 1000) reconnects a second, not the fleet in one. The price:
    // a box whose own link blipped is back on average half the window later (its events wait
    // in the outbox, acknowledged). 0: the usual backoff, initial_ms to 2 * initial_ms first.
    int64_t reconnect_spread_ms = 10000;
  } retry;
  // Configuration pushed by the central team over MQTT (docs/FLEET.md). Local-only: a push can
  // never change this section.
  struct RemoteConfig {
    // Key id -> PEM file of a public key whose signatures the box accepts. Several, so the team
    // can rotate keys. Empty: remote configuration is off and the agent does not subscribe.
    std::map<std::string, std::string> trusted_keys;
    // After a push that changed the hub connection, the agent must reach the hub within this
    // many seconds or it rolls back to the configuration before the push.
    int64_t probation_s = 300;
  } remote_config;

  // <topic_prefix>/<store_id>/<device_id>
  std::string topic_base() const;
  // hub.uri then hub.fallback_uris: the order a connection is tried in.
  std::vector<std::string> hub_uris() const;
  // Directory of storage.path: the agent's state file lives beside the database.
  std::string state_file() const;
  // control.socket, or its default beside ingest.socket.
  std::string control_socket() const;
};

// 1-64 of A-Z a-z 0-9 . _ -: device and store ids, key ids, the parts of a config target. They
// become MQTT topic levels and log text, so nothing else is allowed.
bool is_valid_name(std::string_view s);

// Whether validation also checks that the TLS files the config names are readable. The agent
// and check-config need them; the tools that only use the socket path or read the outbox
// (send, status, outbox, dead-letters) must not, or a producer's or an operator's account that
// may not read the device's private key could not use them.
enum class FileChecks { kCheck, kSkip };

// How deep arrays and objects may nest in a configuration (a file or a pushed payload). The
// deepest real setting is a few levels down; copying, flattening or merging a value recurses
// once per level, and one nested tens of thousands deep (a few tens of KB of brackets) would
// overflow the stack: it is refused with a message instead (events/json_nesting.h).
inline constexpr int kMaxConfigNesting = 32;

// Parses JSON text (// and /* */ comments allowed) into `out`; returns every problem found,
// each as "key.path: what is wrong". Empty means the config is usable. A document nested
// deeper than kMaxConfigNesting is refused as a whole.
std::vector<std::string> parse_config(const std::string& text, Config* out,
                                      FileChecks files = FileChecks::kCheck);

// The same for a parsed JSON value (the merged result of the local file and pushed layers).
std::vector<std::string> parse_config_json(const nlohmann::json& root, Config* out,
                                           FileChecks files = FileChecks::kCheck);

// Every setting of `config`, defaults filled in, as JSON in the file's shape: what the agent
// runs with. hub.password is included; callers that print it redact it.
nlohmann::json config_to_json(const Config& config);

// Reads and parses a file. The Status message lists every problem, one per line.
Result<Config> load_config(const std::string& path, FileChecks files = FileChecks::kCheck);

}  // namespace edgesync::agent
