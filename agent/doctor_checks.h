// `edgesync doctor`'s checks: is this box able to capture events and deliver them, and if not,
// what exactly is wrong and what to do about it.
//
// Each check looks at one thing (the configuration, the clock, the outbox file, the disk, the
// agent process, the ingest socket, the CA and client certificate and key, then the hub link
// step by step: name, TCP, TLS, MQTT) and says ok, warn (works now, will not for long or not
// fully) or fail (broken), what it found, and the fix: the key, file or command concerned.
// A check that needs what an earlier one found broken is skipped with the reason, so the first
// failure is the one to fix. Only reads: nothing on the box is changed, the database is opened
// read-only, and the MQTT probe uses a client id of its own.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "agent/config.h"

namespace edgesync::agent::doctor {

enum class Outcome { kOk, kWarn, kFail, kSkipped };
const char* outcome_name(Outcome outcome);  // "ok", "warn", "fail", "skipped"

struct Check {
  std::string name;  // stable, for scripts: "config", "clock", "database", ...
  Outcome result = Outcome::kOk;
  std::string detail;  // what was found; for skipped, why
  std::string fix;     // what to do, concretely; empty when nothing is to be done
};

struct Options {
  std::string config_path;
  std::chrono::milliseconds timeout{5000};  // each network step: DNS, TCP, TLS, MQTT
  int64_t now_ms = 0;                       // the wall clock
  int64_t build_unix_s = 0;                 // when this binary was built
};

// Every check, in order. Never throws; a check that cannot run says so in its own result.
std::vector<Check> run_checks(const Options& options);

// ---- the judgements, apart from gathering the facts (pure: unit-tested) ----

// A clock more than a year before the build date has never been set (a box without a
// battery-backed clock boots in 1970): fail. Before the build date: warn.
Check judge_clock(int64_t now_ms, int64_t build_unix_s);

// What the outbox's file system has. The outbox may grow to storage.max_bytes, plus its WAL.
struct DiskFacts {
  std::string dir;           // where the outbox lives (or would)
  int64_t free_bytes = 0;    // available to the agent's (unprivileged) user
  int64_t outbox_bytes = 0;  // the database and its WAL now
};
// The WAL beside the database stays below this (docs: "~12 MB").
inline constexpr int64_t kWalAllowanceBytes = int64_t{12} << 20;
Check judge_disk(const DiskFacts& disk, const Config& config, const std::string& config_path);

// What the broker's CONNACK announced; 0: not sent (no limit below the protocol's).
struct BrokerLimits {
  int receive_maximum = 0;
  int64_t maximum_packet_size = 0;
};
// A publish carries the event's data in an envelope (ids, times, topic, properties) of up to
// about this much beyond the size of the request line it came in.
inline constexpr int64_t kPublishOverheadBytes = 1024;
Check judge_broker_limits(const BrokerLimits& limits, const Config& config,
                          const std::string& config_path, const std::string& client_id);

}  // namespace edgesync::agent::doctor
