#include "agent/metrics_text.h"

#include <charconv>
#include <cmath>
#include <initializer_list>
#include <string_view>
#include <utility>

#include "agent/event_contract.h"
#include "platform/clock.h"

namespace edgesync::agent {

using nlohmann::json;

namespace {

// The member at `path`, or null when any step is missing.
const json& member(const json& j, std::initializer_list<const char*> path) {
  static const json kNull;
  const json* at = &j;
  for (const char* key : path) {
    if (!at->is_object()) return kNull;
    auto it = at->find(key);
    if (it == at->end()) return kNull;
    at = &*it;
  }
  return *at;
}

// Shortest text that reads back as the same double; the format's spellings for the rest.
std::string double_text(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return ec == std::errc() ? std::string(buf, end) : std::to_string(v);
}

// A JSON number (or boolean) as a sample value; anything else reads as 0.
std::string number_text(const json& v) {
  if (v.is_number_unsigned()) return std::to_string(v.get<uint64_t>());
  if (v.is_number_integer()) return std::to_string(v.get<int64_t>());
  if (v.is_number_float()) return double_text(v.get<double>());
  if (v.is_boolean()) return v.get<bool>() ? "1" : "0";
  return "0";
}

std::string string_of(const json& v) { return v.is_string() ? v.get<std::string>() : ""; }

int status_level(const std::string& verdict) {
  if (verdict == "OK") return 0;
  if (verdict == "DEGRADED") return 1;
  return 2;  // DOWN, or a verdict this version does not know: the worst
}

// {name="value",...}, the values escaped. Appended piece by piece: gcc 12 warns (-Wrestrict,
// a false alarm) at "literal" + std::string chains.
std::string labels(std::initializer_list<std::pair<std::string_view, std::string>> pairs) {
  std::string out = "{";
  for (const auto& [name, value] : pairs) {
    if (out.size() > 1) out.push_back(',');
    out.append(name).append("=\"").append(escape_label_value(value)).append("\"");
  }
  out.push_back('}');
  return out;
}

// The page, one metric family after another: HELP and TYPE once, then its samples.
class Page {
 public:
  void family(std::string_view name, std::string_view type, std::string_view help) {
    out_.append("# HELP ").append(name).append(" ");
    for (char c : help) {  // HELP escapes backslash and newline (not quotes)
      if (c == '\\') {
        out_.append("\\\\");
      } else if (c == '\n') {
        out_.append("\\n");
      } else {
        out_.push_back(c);
      }
    }
    out_.append("\n# TYPE ").append(name).append(" ").append(type).append("\n");
  }
  // `labels` is empty or a complete {name="value",...} with values already escaped.
  void sample(std::string_view name, std::string_view labels, std::string_view value) {
    out_.append(name).append(labels).append(" ").append(value).append("\n");
  }
  void gauge(std::string_view name, std::string_view help, std::string_view value) {
    family(name, "gauge", help);
    sample(name, "", value);
  }
  void counter(std::string_view name, std::string_view help, std::string_view value) {
    family(name, "counter", help);
    sample(name, "", value);
  }
  void histogram(const std::string& name, std::string_view help,
                 const LatencyHistogram::Snapshot& s) {
    family(name, "histogram", help);
    const std::string bucket = name + "_bucket";
    for (size_t i = 0; i < LatencyHistogram::kBoundsMs.size(); ++i) {
      sample(bucket, labels({{"le", double_text(LatencyHistogram::kBoundsMs[i] / 1000.0)}}),
             std::to_string(s.cumulative[i]));
    }
    sample(bucket, "{le=\"+Inf\"}", std::to_string(s.count));
    sample(name + "_sum", "", double_text(s.sum_ms / 1000.0));
    sample(name + "_count", "", std::to_string(s.count));
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

}  // namespace

std::string escape_label_value(const std::string& value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out.append("\\\\");
    } else if (c == '"') {
      out.append("\\\"");
    } else if (c == '\n') {
      out.append("\\n");
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string metrics_text(const json& health, const LatencyHistogram::Snapshot& ack_latency,
                         const LatencyHistogram::Snapshot& age_at_delivery) {
  const json& h = health;
  Page p;
  p.gauge("edgesync_up", "Always 1: the agent answered this scrape.", "1");
  p.family("edgesync_info", "gauge",
           "The running agent: version, device, store and outbox incarnation. Always 1.");
  p.sample("edgesync_info",
           labels({{"version", string_of(member(h, {"agent", "version"}))},
                   {"device_id", string_of(member(h, {"device_id"}))},
                   {"store_id", string_of(member(h, {"store_id"}))},
                   {"incarnation", string_of(member(h, {"outbox", "incarnation"}))}}),
           "1");
  p.gauge("edgesync_status_level",
          "The agent's verdict, as edgesync status gives it: 0 OK, 1 DEGRADED, 2 DOWN.",
          std::to_string(status_level(string_of(member(h, {"verdict", "level"})))));
  p.gauge("edgesync_uptime_seconds", "Seconds since the agent started.",
          number_text(member(h, {"agent", "uptime_s"})));

  p.gauge("edgesync_hub_connected", "1 while the agent is connected to the hub, else 0.",
          string_of(member(h, {"hub", "state"})) == "connected" ? "1" : "0");
  p.counter("edgesync_hub_connects_total",
            "Successful connections to the hub since the agent started, the first included.",
            number_text(member(h, {"hub", "connects"})));

  p.family("edgesync_events_accepted_total", "counter",
           "Events acknowledged to producers since the agent started: stored (new) or "
           "duplicate (an id stored before, not stored again).");
  p.sample("edgesync_events_accepted_total", "{result=\"stored\"}",
           number_text(member(h, {"since_start", "accepted"})));
  p.sample("edgesync_events_accepted_total", "{result=\"duplicate\"}",
           number_text(member(h, {"since_start", "duplicates"})));
  p.counter("edgesync_events_unchecked_total",
            "Events of a type without a contract stored unchecked since the agent started "
            "(ingest.unknown_types: accept).",
            number_text(member(h, {"since_start", "unchecked"})));
  // Every code the agent can answer, zeros included: a rate() over a series that appears only
  // with its first refusal misses that refusal.
  p.family("edgesync_events_refused_total", "counter",
           "Requests refused since the agent started, by the error code of the reply.");
  for (size_t i = 0; i < AgentCounters::kRefusalKinds; ++i) {
    const char* code = error_code_name(static_cast<IngestError>(i));
    p.sample("edgesync_events_refused_total", labels({{"code", code}}),
             number_text(member(h, {"since_start", "refused", code})));
  }
  p.counter("edgesync_events_delivered_total",
            "Events acknowledged by the hub since the agent started.",
            number_text(member(h, {"since_start", "delivered"})));
  p.counter("edgesync_events_dead_lettered_total",
            "Events the hub refused for good since the agent started, announced to it by a "
            "dead-letter notice instead.",
            number_text(member(h, {"since_start", "dead_lettered"})));
  p.family("edgesync_spool_files_total", "counter",
           "Spool folder files (ingest.spool_dir) moved to done/ (every request accepted) or "
           "to failed/ since the agent started.");
  for (const char* outcome : {"done", "failed"}) {
    p.sample("edgesync_spool_files_total", labels({{"outcome", outcome}}),
             number_text(member(h, {"since_start", "spool_files", outcome})));
  }

  p.gauge("edgesync_outbox_pending_events", "Events in the outbox not yet acknowledged by the hub.",
          number_text(member(h, {"outbox", "pending"})));
  p.gauge("edgesync_outbox_pending_bytes", "Bytes of the pending events.",
          number_text(member(h, {"outbox", "pending_bytes"})));
  p.gauge("edgesync_outbox_max_bytes",
          "storage.max_bytes: beyond it the outbox refuses new events (outbox_full).",
          number_text(member(h, {"outbox", "max_bytes"})));
  p.gauge("edgesync_outbox_oldest_pending_age_seconds",
          "Age of the oldest event not yet acknowledged by the hub; 0 when none is pending.",
          number_text(member(h, {"outbox", "oldest_pending_age_s"})));
  p.gauge("edgesync_outbox_highest_accepted_seq",
          "The highest seq given to an event in this outbox incarnation.",
          number_text(member(h, {"outbox", "highest_accepted_seq"})));
  p.gauge("edgesync_outbox_highest_delivered_seq",
          "Every seq up to this one was acknowledged by the hub, as an event or as a "
          "dead-letter notice.",
          number_text(member(h, {"outbox", "highest_delivered_seq"})));
  p.gauge("edgesync_delivery_held",
          "1 while a technician holds delivery (edgesync outbox hold), else 0.",
          member(h, {"outbox", "held_since"}).is_null() ? "0" : "1");
  // Unknown is left out rather than given as 0: 0 free bytes would raise a false alarm.
  if (const json& free = member(h, {"outbox", "free_disk_bytes"}); free.is_number()) {
    p.gauge("edgesync_disk_free_bytes", "Free space on the outbox's file system.",
            number_text(free));
  }
  if (auto not_after =
          platform::parse_rfc3339_ms(string_of(member(h, {"certificate", "not_after"})))) {
    p.gauge("edgesync_certificate_expiry_timestamp_seconds",
            "Unix time at which the client certificate (hub.cert_file) expires.",
            double_text(static_cast<double>(*not_after) / 1000.0));
  }

  p.histogram("edgesync_ack_latency_seconds",
              "Time from publishing an event to the hub's acknowledgement (PUBACK).", ack_latency);
  p.histogram("edgesync_event_age_at_delivery_seconds",
              "Time from the agent accepting an event to the hub's acknowledgement.",
              age_at_delivery);
  return p.take();
}

}  // namespace edgesync::agent
