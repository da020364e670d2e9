// The one-line answer to "is this box all right?": OK, DEGRADED or DOWN with the reasons, worst
// first. The same rules for `edgesync status` (its first line and exit status), the health
// message and the metrics, so the technician and the central team never see two answers.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace edgesync::agent {

enum class VerdictLevel { kOk = 0, kDegraded = 1, kDown = 2 };
const char* verdict_name(VerdictLevel level);  // "OK", "DEGRADED", "DOWN"

struct VerdictInputs {
  bool agent_running = true;
  std::string hub_state;   // "connected", "connecting", "disconnected", ...
  int64_t hub_since_ms = 0;  // since when connected, or not connected; 0: unknown
  int64_t pending = 0;
  int64_t pending_bytes = 0;
  int64_t max_bytes = 0;
  std::optional<int64_t> oldest_pending_ms;  // received time of the oldest pending event
  int64_t held_since_ms = 0;                 // edgesync outbox hold
  std::string outbox_damage;                 // set: delivery stopped at a damaged page
  std::string outbox_error;                  // set: the outbox cannot be read at all
  int64_t dead_letters_last_day = 0;
  std::string certificate_state;  // certificate_facts(): "", ok, expiring, expired, ...
  int64_t certificate_days_left = 0;
  std::optional<int64_t> free_disk_bytes;  // on the outbox's file system
  int64_t now_ms = 0;
};

struct Verdict {
  VerdictLevel level = VerdictLevel::kOk;
  std::vector<std::string> reasons;  // worst first; empty when OK
  // "DEGRADED: hub unreachable for 14 min, 3,120 events waiting, oldest 14 min"
  std::string line() const;
};

// Pending events older than this mean delivery is behind (DEGRADED).
constexpr int64_t kBehindAfterMs = 60'000;
// A hub connection down for less than this is a reconnect, not yet worth a DEGRADED.
constexpr int64_t kHubGraceMs = 30'000;

Verdict judge(const VerdictInputs& in);

// "14 min", "2.5 h", "40 s": for verdicts and status lines.
std::string short_duration(int64_t ms);
// "3,120": thousands grouped, as a technician reads counts.
std::string grouped(int64_t n);

}  // namespace edgesync::agent
