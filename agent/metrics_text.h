// The metrics endpoint's page: the Prometheus text exposition format, version 0.0.4, rendered
// from the health message (agent/health.h, config/contracts/health.schema.json) and the two
// delivery histograms. One source of truth: a figure reads the same in the health message, in
// `edgesync status` and on a dashboard.
//
// Pure: no clock, no I/O, any thread.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "agent/agent_counters.h"

namespace edgesync::agent {

inline constexpr char kMetricsContentType[] = "text/plain; version=0.0.4; charset=utf-8";

// Every metric with its HELP and TYPE lines, in a fixed order. A member missing from `health`
// reads as 0 (or the metric is left out where 0 would be a false reading: free disk space, the
// certificate's expiry). Histogram bounds are LatencyHistogram::kBoundsMs in seconds.
std::string metrics_text(const nlohmann::json& health,
                         const LatencyHistogram::Snapshot& ack_latency,
                         const LatencyHistogram::Snapshot& age_at_delivery);

// A label value as the format wants it: backslash, double quote and newline escaped.
std::string escape_label_value(const std::string& value);

}  // namespace edgesync::agent
