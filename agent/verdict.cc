#include "agent/verdict.h"

#include <cstdio>

namespace edgesync::agent {

const char* verdict_name(VerdictLevel level) {
  switch (level) {
    case VerdictLevel::kOk: return "OK";
    case VerdictLevel::kDegraded: return "DEGRADED";
    case VerdictLevel::kDown: return "DOWN";
  }
  return "?";
}

std::string short_duration(int64_t ms) {
  if (ms < 0) ms = 0;
  char buf[32];
  if (ms < 120'000) {
    std::snprintf(buf, sizeof buf, "%lld s", static_cast<long long>(ms / 1000));
  } else if (ms < 2 * 3'600'000) {
    std::snprintf(buf, sizeof buf, "%lld min", static_cast<long long>(ms / 60'000));
  } else if (ms < 2 * 86'400'000LL) {
    std::snprintf(buf, sizeof buf, "%.1f h", ms / 3'600'000.0);
  } else {
    std::snprintf(buf, sizeof buf, "%lld days", static_cast<long long>(ms / 86'400'000LL));
  }
  return buf;
}

std::string grouped(int64_t n) {
  std::string digits = std::to_string(n < 0 ? -n : n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return n < 0 ? "-" + out : out;
}

std::string Verdict::line() const {
  std::string s = verdict_name(level);
  for (size_t i = 0; i < reasons.size(); ++i) s += (i == 0 ? ": " : "; ") + reasons[i];
  return s;
}

Verdict judge(const VerdictInputs& in) {
  Verdict v;
  std::vector<std::string> down, degraded;
  const std::string waiting =
      in.pending > 0
          ? grouped(in.pending) + (in.pending == 1 ? " event waiting" : " events waiting") +
                (in.oldest_pending_ms ? ", oldest " + short_duration(in.now_ms - *in.oldest_pending_ms)
                                      : "")
          : "nothing waiting";

  if (!in.agent_running) down.push_back("agent not running, " + waiting);
  if (!in.outbox_error.empty()) down.push_back("outbox unreadable: " + in.outbox_error);
  if (!in.outbox_damage.empty()) {
    down.push_back("outbox damaged, delivery stopped (restart the agent to quarantine it): " +
                   in.outbox_damage);
  }
  if (in.max_bytes > 0 && in.pending_bytes * 100 >= in.max_bytes * 98) {
    down.push_back("outbox full: new events are refused");
  }
  if (in.certificate_state == "expired") down.push_back("client certificate expired");

  if (in.agent_running && in.outbox_damage.empty()) {
    const int64_t since = in.hub_since_ms > 0 ? in.now_ms - in.hub_since_ms : 0;
    if (in.held_since_ms > 0) {
      degraded.push_back("delivery held for " + short_duration(in.now_ms - in.held_since_ms) +
                         " (edgesync outbox release), " + waiting);
    } else if (in.hub_state != "connected" && since >= kHubGraceMs) {
      degraded.push_back("hub unreachable for " + short_duration(since) + ", " + waiting);
    } else if (in.oldest_pending_ms && in.now_ms - *in.oldest_pending_ms >= kBehindAfterMs) {
      degraded.push_back("delivery behind: " + waiting);
    }
  }
  if (in.certificate_state == "expiring") {
    degraded.push_back("client certificate expires in " +
                       std::to_string(in.certificate_days_left) + " days");
  } else if (in.certificate_state == "unreadable" || in.certificate_state == "not_yet_valid") {
    degraded.push_back("client certificate " + in.certificate_state);
  }
  if (in.dead_letters_last_day > 0) {
    degraded.push_back(grouped(in.dead_letters_last_day) +
                       (in.dead_letters_last_day == 1 ? " dead letter" : " dead letters") +
                       " in the last 24 h (edgesync dead-letters)");
  }
  if (in.free_disk_bytes && in.max_bytes > in.pending_bytes &&
      *in.free_disk_bytes < in.max_bytes - in.pending_bytes) {
    degraded.push_back("disk: " + grouped(*in.free_disk_bytes / (1024 * 1024)) +
                       " MiB free, less than the outbox may still need");
  }

  if (!down.empty()) {
    v.level = VerdictLevel::kDown;
  } else if (!degraded.empty()) {
    v.level = VerdictLevel::kDegraded;
  }
  v.reasons = std::move(down);
  v.reasons.insert(v.reasons.end(), degraded.begin(), degraded.end());
  return v;
}

}  // namespace edgesync::agent
