// Producers on an ingest socket: lock-step producer threads (send one line, wait for its reply),
// the pipelined backlog fill, and the CPU and bytes written around them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bench/agent_process.h"
#include "tests/harness/mosquitto_broker.h"

namespace edgesync::bench {

class EchoServer;

struct IngestResult {
  int producers = 0;
  int64_t accepted = 0;
  int64_t errors = 0;
  double elapsed_s = 0;
  double per_s = 0, p50_ms = 0, p99_ms = 0;
  std::string first_error;
  std::vector<double> lat_ms;
  // CPU (utime+stime, in clock ticks) used during the case by the agent, by the producers (this
  // process) and by the broker: where the cores went.
  int64_t agent_ticks = 0, producer_ticks = 0, broker_ticks = 0;
  int64_t agent_write_bytes = 0;  // /proc/PID/io write_bytes; -1 if unreadable

  // Adds another slice of the same case.
  void merge(IngestResult&& o);
};

// Flushes every dirty page to disk and lets the device go idle, so the next measurement does not
// pay for the previous one's write-back.
void settle();

// `producers` threads, each with its own connection, one request at a time. Any server that
// answers each line with a line starting {"ok":true counts.
IngestResult ingest_closed_loop(const std::string& socket, int producers, double seconds,
                                const std::string& prefix);

// ingest_closed_loop() against the agent, with the CPU each side used and the agent's writes.
IngestResult ingest_case(const Agent& agent, test::MosquittoBroker& broker, int producers,
                         double seconds, const std::string& prefix);

// ingest_closed_loop() against the echo server (its CPU in agent_ticks).
IngestResult echo_case(const EchoServer& echo, int producers, double seconds,
                       const std::string& prefix);

// "CPU/event: agent 41 us, producers 22 us, broker 9 us"
std::string cpu_per_event(const IngestResult& r);
// echo_case()'s: "CPU/round trip: server 12 us, clients 16 us"
std::string echo_cpu_per_event(const IngestResult& r);

// The CPU the case took per event on the whole machine (server, producers, broker), in us;
// NaN when nothing was accepted.
double cpu_us_per_event(const IngestResult& r);

// This process's utime+stime in clock ticks.
int64_t self_cpu_ticks();

// Fills the outbox fast: `connections` pipelined producers, `depth` requests per write. Returns
// events/s; throws if any request was refused.
double fill_backlog(const std::string& socket, int64_t n, const std::string& prefix,
                    int connections = 8, int depth = 256);

// `events` sent and delivered: a store's agent has delivered more than storage.keep_delivered
// (default 10000) events within hours, and from then on commits also prune history.
void warm_up(const Agent& agent, int64_t events);

}  // namespace edgesync::bench
