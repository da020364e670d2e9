// The metrics page: the exact text for a fixed health message, HELP and TYPE once per metric,
// label values escaped, and the health message the agent really builds read right.
#include "agent/metrics_text.h"

#include <gtest/gtest.h>

#include <array>
#include <map>
#include <set>
#include <sstream>

#include "agent/config.h"
#include "agent/health.h"

namespace edgesync::agent {
namespace {

using nlohmann::json;

// A health message as agent/health.cc writes it (config/contracts/health.schema.json).
json fixed_health() {
  return json::parse(R"({
    "format": 1, "device_id": "pos-01", "store_id": "store-042",
    "at": "2027-01-15T08:00:00.000Z",
    "verdict": {"level": "DEGRADED", "reasons": ["hub unreachable for 14 min"], "line": "x"},
    "agent": {"version": "0.1.0", "pid": 4242, "started_at": "2027-01-15T07:00:00.000Z",
              "uptime_s": 3600},
    "hub": {"uri": "ssl://hub:8883", "state": "disconnected", "since": null, "connects": 3,
            "reconnects": 2, "last_error": "lost", "last_error_at": null, "next_retry_at": null},
    "outbox": {"incarnation": "0b7e1f2a-3c4d-4e5f-8a9b-0c1d2e3f4a5b",
               "highest_accepted_seq": 120, "highest_delivered_seq": 100, "pending": 20,
               "pending_bytes": 5120, "max_bytes": 1073741824, "oldest_pending_age_s": 840.5,
               "held_since": null, "damaged": null, "free_disk_bytes": 8589934592},
    "since_start": {"accepted": 118, "duplicates": 2, "unchecked": 6,
                    "refused": {"bad_json": 1, "invalid_event": 4, "too_large": 0,
                                "outbox_full": 0, "storage_error": 0, "unknown_type": 5},
                    "delivered": 97, "dead_lettered": 1,
                    "spool_files": {"done": 12, "failed": 2}},
    "last_minute": {"accepted": 0, "delivered": 0},
    "last_hour": {"accepted": 118, "delivered": 97},
    "config": null,
    "certificate": {"file": "/etc/edgesync/client.crt", "state": "ok", "subject": "CN=pos-01",
                    "not_before": "2026-01-15T00:00:00.000Z",
                    "not_after": "2028-01-15T00:00:00.000Z", "days_left": 365}
  })");
}

// Cumulative, as snapshot() gives them, for the bounds 1 2.5 5 10 25 50 100 250 1000 10000
// 60000 600000 ms.
LatencyHistogram::Snapshot snapshot_of(std::array<uint64_t, 12> cumulative, uint64_t count,
                                       double sum_ms) {
  LatencyHistogram::Snapshot s;
  for (size_t i = 0; i < s.cumulative.size(); ++i) s.cumulative[i] = cumulative[i];
  s.count = count;
  s.sum_ms = sum_ms;
  return s;
}
const LatencyHistogram::Snapshot kAckLatency =
    snapshot_of({0, 1, 3, 10, 40, 70, 90, 95, 96, 96, 97, 97}, 97, 2345.5);
// Two events older than the last bound: only +Inf and _count hold them.
const LatencyHistogram::Snapshot kAgeAtDelivery =
    snapshot_of({0, 0, 0, 0, 0, 0, 0, 2, 10, 50, 90, 97}, 99, 1234567.0);

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// The metric family a sample line belongs to: its name, less a histogram's suffixes.
std::string family_of(const std::string& sample, const std::map<std::string, std::string>& types) {
  std::string name = sample.substr(0, sample.find_first_of("{ "));
  for (const char* suffix : {"_bucket", "_sum", "_count"}) {
    const std::string s = suffix;
    if (name.size() > s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0) {
      const std::string base = name.substr(0, name.size() - s.size());
      auto t = types.find(base);
      if (t != types.end() && t->second == "histogram") return base;
    }
  }
  return name;
}

// Every sample follows its own family's HELP and TYPE, each given once, and a family's samples
// come together.
void expect_well_formed(const std::string& text) {
  std::map<std::string, int> helps;
  std::map<std::string, std::string> types;
  std::set<std::string> finished;  // families whose samples are over
  std::string current;
  size_t samples = 0;
  for (const std::string& line : lines_of(text)) {
    SCOPED_TRACE(line);
    ASSERT_FALSE(line.empty()) << "no blank lines";
    if (line.rfind("# HELP ", 0) == 0) {
      const std::string name = line.substr(7, line.find(' ', 7) - 7);
      EXPECT_EQ(++helps[name], 1) << "HELP twice for " << name;
      if (!current.empty()) finished.insert(current);
      current = name;
      continue;
    }
    if (line.rfind("# TYPE ", 0) == 0) {
      const std::string name = line.substr(7, line.find(' ', 7) - 7);
      EXPECT_EQ(name, current) << "TYPE right after its HELP";
      EXPECT_EQ(types.count(name), 0u) << "TYPE twice for " << name;
      const std::string type = line.substr(line.find(' ', 7) + 1);
      EXPECT_TRUE(type == "gauge" || type == "counter" || type == "histogram") << type;
      types[name] = type;
      continue;
    }
    ASSERT_NE(line[0], '#');
    ++samples;
    const std::string family = family_of(line, types);
    EXPECT_EQ(family, current) << "a sample outside its family's block";
    EXPECT_EQ(finished.count(family), 0u) << "samples of " << family << " split up";
    EXPECT_EQ(helps.count(family), 1u) << "no HELP for " << family;
    EXPECT_EQ(types.count(family), 1u) << "no TYPE for " << family;
    if (types[family] == "counter") {
      EXPECT_GE(family.size(), 6u);
      EXPECT_EQ(family.substr(family.size() - 6), "_total") << "counters end in _total";
    }
  }
  EXPECT_EQ(helps.size(), types.size());
  EXPECT_GT(samples, 0u);
}

TEST(MetricsText, ExactTextForAFixedHealthMessage) {
  const std::string expected = R"(# HELP edgesync_up Always 1: the agent answered this scrape.
# TYPE edgesync_up gauge
edgesync_up 1
# HELP edgesync_info The running agent: version, device, store and outbox incarnation. Always 1.
# TYPE edgesync_info gauge
edgesync_info{version="0.1.0",device_id="pos-01",store_id="store-042",incarnation="0b7e1f2a-3c4d-4e5f-8a9b-0c1d2e3f4a5b"} 1
# HELP edgesync_status_level The agent's verdict, as edgesync status gives it: 0 OK, 1 DEGRADED, 2 DOWN.
# TYPE edgesync_status_level gauge
edgesync_status_level 1
# HELP edgesync_uptime_seconds Seconds since the agent started.
# TYPE edgesync_uptime_seconds gauge
edgesync_uptime_seconds 3600
# HELP edgesync_hub_connected 1 while the agent is connected to the hub, else 0.
# TYPE edgesync_hub_connected gauge
edgesync_hub_connected 0
# HELP edgesync_hub_connects_total Successful connections to the hub since the agent started, the first included.
# TYPE edgesync_hub_connects_total counter
edgesync_hub_connects_total 3
# HELP edgesync_events_accepted_total Events acknowledged to producers since the agent started: stored (new) or duplicate (an id stored before, not stored again).
# TYPE edgesync_events_accepted_total counter
edgesync_events_accepted_total{result="stored"} 118
edgesync_events_accepted_total{result="duplicate"} 2
# HELP edgesync_events_unchecked_total Events of a type without a contract stored unchecked since the agent started (ingest.unknown_types: accept).
# TYPE edgesync_events_unchecked_total counter
edgesync_events_unchecked_total 6
# HELP edgesync_events_refused_total Requests refused since the agent started, by the error code of the reply.
# TYPE edgesync_events_refused_total counter
edgesync_events_refused_total{code="bad_json"} 1
edgesync_events_refused_total{code="invalid_event"} 4
edgesync_events_refused_total{code="too_large"} 0
edgesync_events_refused_total{code="outbox_full"} 0
edgesync_events_refused_total{code="storage_error"} 0
edgesync_events_refused_total{code="unknown_type"} 5
# HELP edgesync_events_delivered_total Events acknowledged by the hub since the agent started.
# TYPE edgesync_events_delivered_total counter
edgesync_events_delivered_total 97
# HELP edgesync_events_dead_lettered_total Events the hub refused for good since the agent started, announced to it by a dead-letter notice instead.
# TYPE edgesync_events_dead_lettered_total counter
edgesync_events_dead_lettered_total 1
# HELP edgesync_spool_files_total Spool folder files (ingest.spool_dir) moved to done/ (every request accepted) or to failed/ since the agent started.
# TYPE edgesync_spool_files_total counter
edgesync_spool_files_total{outcome="done"} 12
edgesync_spool_files_total{outcome="failed"} 2
# HELP edgesync_outbox_pending_events Events in the outbox not yet acknowledged by the hub.
# TYPE edgesync_outbox_pending_events gauge
edgesync_outbox_pending_events 20
# HELP edgesync_outbox_pending_bytes Bytes of the pending events.
# TYPE edgesync_outbox_pending_bytes gauge
edgesync_outbox_pending_bytes 5120
# HELP edgesync_outbox_max_bytes storage.max_bytes: beyond it the outbox refuses new events (outbox_full).
# TYPE edgesync_outbox_max_bytes gauge
edgesync_outbox_max_bytes 1073741824
# HELP edgesync_outbox_oldest_pending_age_seconds Age of the oldest event not yet acknowledged by the hub; 0 when none is pending.
# TYPE edgesync_outbox_oldest_pending_age_seconds gauge
edgesync_outbox_oldest_pending_age_seconds 840.5
# HELP edgesync_outbox_highest_accepted_seq The highest seq given to an event in this outbox incarnation.
# TYPE edgesync_outbox_highest_accepted_seq gauge
edgesync_outbox_highest_accepted_seq 120
# HELP edgesync_outbox_highest_delivered_seq Every seq up to this one was acknowledged by the hub, as an event or as a dead-letter notice.
# TYPE edgesync_outbox_highest_delivered_seq gauge
edgesync_outbox_highest_delivered_seq 100
# HELP edgesync_delivery_held 1 while a technician holds delivery (edgesync outbox hold), else 0.
# TYPE edgesync_delivery_held gauge
edgesync_delivery_held 0
# HELP edgesync_disk_free_bytes Free space on the outbox's file system.
# TYPE edgesync_disk_free_bytes gauge
edgesync_disk_free_bytes 8589934592
# HELP edgesync_certificate_expiry_timestamp_seconds Unix time at which the client certificate (hub.cert_file) expires.
# TYPE edgesync_certificate_expiry_timestamp_seconds gauge
edgesync_certificate_expiry_timestamp_seconds 1831507200
# HELP edgesync_ack_latency_seconds Time from publishing an event to the hub's acknowledgement (PUBACK).
# TYPE edgesync_ack_latency_seconds histogram
edgesync_ack_latency_seconds_bucket{le="0.001"} 0
edgesync_ack_latency_seconds_bucket{le="0.0025"} 1
edgesync_ack_latency_seconds_bucket{le="0.005"} 3
edgesync_ack_latency_seconds_bucket{le="0.01"} 10
edgesync_ack_latency_seconds_bucket{le="0.025"} 40
edgesync_ack_latency_seconds_bucket{le="0.05"} 70
edgesync_ack_latency_seconds_bucket{le="0.1"} 90
edgesync_ack_latency_seconds_bucket{le="0.25"} 95
edgesync_ack_latency_seconds_bucket{le="1"} 96
edgesync_ack_latency_seconds_bucket{le="10"} 96
edgesync_ack_latency_seconds_bucket{le="60"} 97
edgesync_ack_latency_seconds_bucket{le="600"} 97
edgesync_ack_latency_seconds_bucket{le="+Inf"} 97
edgesync_ack_latency_seconds_sum 2.3455
edgesync_ack_latency_seconds_count 97
# HELP edgesync_event_age_at_delivery_seconds Time from the agent accepting an event to the hub's acknowledgement.
# TYPE edgesync_event_age_at_delivery_seconds histogram
edgesync_event_age_at_delivery_seconds_bucket{le="0.001"} 0
edgesync_event_age_at_delivery_seconds_bucket{le="0.0025"} 0
edgesync_event_age_at_delivery_seconds_bucket{le="0.005"} 0
edgesync_event_age_at_delivery_seconds_bucket{le="0.01"} 0
edgesync_event_age_at_delivery_seconds_bucket{le="0.025"} 0
edgesync_event_age_at_delivery_seconds_bucket{le="0.05"} 0
edgesync_event_age_at_delivery_seconds_bucket{le="0.1"} 0
edgesync_event_age_at_delivery_seconds_bucket{le="0.25"} 2
edgesync_event_age_at_delivery_seconds_bucket{le="1"} 10
edgesync_event_age_at_delivery_seconds_bucket{le="10"} 50
edgesync_event_age_at_delivery_seconds_bucket{le="60"} 90
edgesync_event_age_at_delivery_seconds_bucket{le="600"} 97
edgesync_event_age_at_delivery_seconds_bucket{le="+Inf"} 99
edgesync_event_age_at_delivery_seconds_sum 1234.567
edgesync_event_age_at_delivery_seconds_count 99
)";
  EXPECT_EQ(metrics_text(fixed_health(), kAckLatency, kAgeAtDelivery), expected);
}

TEST(MetricsText, EveryMetricHasHelpAndTypeOnceBeforeItsSamples) {
  expect_well_formed(metrics_text(fixed_health(), kAckLatency, kAgeAtDelivery));
  expect_well_formed(metrics_text(json::object(), {}, {}));
}

TEST(MetricsText, LabelValuesAreEscaped) {
  EXPECT_EQ(escape_label_value("plain-1.0"), "plain-1.0");
  EXPECT_EQ(escape_label_value("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
  json h = fixed_health();
  h["agent"]["version"] = "1.2 \"beta\"\n\\x";
  const std::string text = metrics_text(h, {}, {});
  EXPECT_NE(text.find(R"(edgesync_info{version="1.2 \"beta\"\n\\x",device_id="pos-01",)"),
            std::string::npos)
      << text;
}

// What is not known is left out rather than given as a value that would read as an alarm (0
// free bytes) or as a fact (an expiry date); what is absent reads as 0.
TEST(MetricsText, UnknownFiguresAreLeftOutAndAbsentOnesReadZero) {
  json h = fixed_health();
  h["certificate"] = nullptr;
  h["outbox"]["free_disk_bytes"] = nullptr;
  h["outbox"]["oldest_pending_age_s"] = nullptr;
  h["outbox"]["held_since"] = "2027-01-15T07:30:00.000Z";
  h["hub"]["state"] = "connected";
  h["verdict"]["level"] = "OK";
  const std::string text = metrics_text(h, {}, {});
  EXPECT_EQ(text.find("edgesync_disk_free_bytes"), std::string::npos) << text;
  EXPECT_EQ(text.find("edgesync_certificate_expiry"), std::string::npos) << text;
  EXPECT_NE(text.find("\nedgesync_outbox_oldest_pending_age_seconds 0\n"), std::string::npos);
  EXPECT_NE(text.find("\nedgesync_delivery_held 1\n"), std::string::npos);
  EXPECT_NE(text.find("\nedgesync_hub_connected 1\n"), std::string::npos);
  EXPECT_NE(text.find("\nedgesync_status_level 0\n"), std::string::npos);
  expect_well_formed(text);

  // An unreadable certificate has no expiry either.
  h["certificate"] = {
      {"file", "/etc/edgesync/client.crt"}, {"state", "unreadable"}, {"detail", "no such file"}};
  EXPECT_EQ(metrics_text(h, {}, {}).find("edgesync_certificate_expiry"), std::string::npos);

  h["verdict"]["level"] = "DOWN";
  EXPECT_NE(metrics_text(h, {}, {}).find("\nedgesync_status_level 2\n"), std::string::npos);
}

// The page reads the members health_json() really writes: a renamed member would read as 0.
TEST(MetricsText, ReadsTheHealthMessageTheAgentBuilds) {
  Config config;
  config.device.id = "pos-07";
  config.device.store_id = "store-9";
  config.storage.max_bytes = 5'000'000;
  AgentCounters counters;
  counters.started_ms = 1'800'000'000'000;
  counters.accepted = 5;
  counters.duplicates = 2;
  counters.count_refused(IngestError::kTooLarge);
  counters.delivered = 3;
  counters.dead_lettered = 1;
  counters.connects = 4;
  counters.spool_files_done = 7;
  counters.spool_files_failed = 3;
  HealthSnapshot snap;
  snap.config = &config;
  snap.counters = &counters;
  snap.outbox.next_seq = 6;
  snap.outbox.delivered_seq = 4;
  snap.outbox.pending = 2;
  snap.outbox.pending_bytes = 300;
  snap.outbox.oldest_pending_received_ms = counters.started_ms + 1'500;
  snap.incarnation = "inc-1";
  snap.hub_state = "connected";
  snap.hub_since_ms = counters.started_ms;
  snap.free_disk_bytes = 123456789;
  snap.now_ms = counters.started_ms + 61'000;
  const std::string text = metrics_text(health_json(snap), {}, {});
  SCOPED_TRACE(text);
  for (const char* line : {
           "edgesync_info{version=\"",
           "\",device_id=\"pos-07\",store_id=\"store-9\",incarnation=\"inc-1\"} 1\n",
           "\nedgesync_status_level 0\n",
           "\nedgesync_uptime_seconds 61\n",
           "\nedgesync_hub_connected 1\n",
           "\nedgesync_hub_connects_total 4\n",
           "\nedgesync_events_accepted_total{result=\"stored\"} 5\n",
           "\nedgesync_events_accepted_total{result=\"duplicate\"} 2\n",
           "\nedgesync_events_refused_total{code=\"too_large\"} 1\n",
           "\nedgesync_events_refused_total{code=\"bad_json\"} 0\n",
           "\nedgesync_events_delivered_total 3\n",
           "\nedgesync_events_dead_lettered_total 1\n",
           "\nedgesync_spool_files_total{outcome=\"done\"} 7\n",
           "\nedgesync_spool_files_total{outcome=\"failed\"} 3\n",
           "\nedgesync_outbox_pending_events 2\n",
           "\nedgesync_outbox_pending_bytes 300\n",
           "\nedgesync_outbox_max_bytes 5000000\n",
           "\nedgesync_outbox_oldest_pending_age_seconds 59.5\n",
           "\nedgesync_outbox_highest_accepted_seq 5\n",
           "\nedgesync_outbox_highest_delivered_seq 4\n",
           "\nedgesync_delivery_held 0\n",
           "\nedgesync_disk_free_bytes 123456789\n",
       }) {
    EXPECT_NE(text.find(line), std::string::npos) << "missing: " << line;
  }
  EXPECT_EQ(text.find("edgesync_certificate_expiry"), std::string::npos)
      << "no client certificate configured";
  expect_well_formed(text);
}

}  // namespace
}  // namespace edgesync::agent
