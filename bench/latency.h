// End-to-end latency as a new user sees it: the agent with its default pacing config, one
// producer sending at a steady pace, and a QoS 1 subscriber on the same broker. Each event is
// timed from just before the producer's write to its arrival at the subscriber (matched by the
// id in the payload; one process, one steady clock). The same runs give the agent's CPU and
// bytes written per event at that pace.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "bench/disk_io.h"
#include "bench/options.h"
#include "tests/harness/mosquitto_broker.h"

namespace edgesync::bench {

struct LatencyResult {
  int rate = 0;              // events/s asked for
  double seconds = 0;        // first send -> last send
  int64_t sent = 0;
  int64_t acked = 0;         // ok replies
  int64_t errors = 0;        // error replies or a broken connection
  std::string first_error;
  int64_t missing = 0;       // acked, but never seen by the subscriber
  double p50_ms = 0, p99_ms = 0, max_ms = 0;  // write -> arrival at the subscriber
  double ack_p50_ms = 0, ack_p99_ms = 0;      // write -> reply
  int64_t agent_ticks = 0;   // utime+stime of the whole agent over the run
  std::map<std::string, int64_t> thread_ticks;  // the same per thread name
  IoDelta io;                // the agent's write_bytes and the device's, over the run

  double achieved_per_s() const { return seconds > 0 ? acked / seconds : 0; }
  double agent_cpu_us_per_event() const;
  // "edgesync 120 us, outbox-writer 80 us, delivery 250 us"
  std::string cpu_per_event_by_thread() const;
};

// A fresh agent in <root>/latency, the broker started if it is not running, one run per rate in
// kLatencyRates for opt.latency_seconds.
std::vector<LatencyResult> latency_runs(const Options& opt, const std::string& root,
                                        test::MosquittoBroker& broker, const BlockDevice& device);

}  // namespace edgesync::bench
