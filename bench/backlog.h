// A backlog built with the hub down (pipelined producers), then drained once the broker starts:
// drain time, memory, idle CPU afterwards, and on request the delivery rate at a subscriber.
#pragma once

#include <cstdint>
#include <string>

#include "bench/arrival_rate.h"
#include "bench/options.h"
#include "tests/harness/mosquitto_broker.h"

namespace edgesync::bench {

struct BacklogResult {
  int64_t events = 0;
  int64_t counted_bytes = 0;  // per event, against storage.max_bytes
  int64_t max_bytes = 0;      // the agent's storage.max_bytes for this run
  double fill_per_s = 0;
  int64_t rss_kb_backlog = 0;  // VmRSS with the backlog waiting, hub down
  double drain_s = 0;          // hub start -> pending == 0 (the persisted watermark)
  int64_t drain_ticks = 0;     // the agent's utime+stime over the drain
  ArrivalRate arrivals;        // only with count_arrivals
  int64_t hwm_kb = 0;          // VmHWM after the drain
  int64_t rss_kb_after = 0;    // VmRSS after the drain
  int64_t idle_ticks = -1;     // utime+stime over idle_seconds, hub connected, no events
  double idle_seconds = 0;
  std::string status_line;
};

// A fresh agent in <root>/<name>. Throws if the fill is refused or the drain does not finish.
// count_arrivals: a QoS 1 subscriber (arrival_rate.h) subscribes while the agent is held still
// at the broker's start, and counts the events arriving; drain_s then includes that wait and the
// broker's forwarding to the subscriber, so it is not a drain-time figure.
BacklogResult backlog_run(const Options& opt, const std::string& root, const std::string& name,
                          test::MosquittoBroker& broker, int64_t n, bool measure_idle,
                          bool count_arrivals = false);

}  // namespace edgesync::bench
