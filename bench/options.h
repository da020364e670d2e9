// The bench's command-line options and the sizes of every case; --quick shrinks them.
#pragma once

#include <cstdint>
#include <string>

namespace edgesync::bench {

struct Options {
  std::string agent_bin;
  std::string self_exe;  // this binary, re-executed as the echo server
  std::string base_dir;
  bool quick = false;
  bool keep = false;
  bool raw_only = false;      // stop after the raw limits (for repeated runs)
  bool ingest_only = false;   // stop after the ingest cases (for repeated runs)
  bool latency_only = false;  // only the paced end-to-end latency runs
  bool drain_only = false;    // only the large backlog: fill, drain, RSS, idle
  int load_producers = 0;     // --load N: only N producers for ingest_seconds (for profiling)
  bool hub_down = false;      // --load with the broker stopped
  // Durations (s) and counts.
  double raw_seconds = 3;
  double ingest_seconds = 6;  // per producer case, split into `rounds` slices
  int rounds = 3;
  int64_t paho_messages = 30000;     // per delivery round
  int64_t delivery_backlog = 30000;  // per delivery round
  int64_t backlog_small = 10000;
  int64_t backlog_large = 1000000;
  double idle_seconds = 5;
  // Paced end-to-end latency: seconds at 20, 200 and 1,000 events/s.
  double latency_seconds[3] = {10, 5, 5};
  // SQLite alone, 1 row per transaction at kPacedSqliteRate rows/s.
  double paced_sqlite_seconds = 5;

  void make_quick() {
    quick = true;
    raw_seconds = 1;
    ingest_seconds = 2;
    rounds = 2;
    paho_messages = 10000;
    delivery_backlog = 10000;
    backlog_small = 2000;
    backlog_large = 100000;
    idle_seconds = 3;
    latency_seconds[0] = 4;
    latency_seconds[1] = 2;
    latency_seconds[2] = 2;
    paced_sqlite_seconds = 2;
  }
};

inline constexpr int kLatencyRates[3] = {20, 200, 1000};
// The pace of the target "agent CPU per event at 200 ev/s", for its raw SQLite floor.
inline constexpr int kPacedSqliteRate = 200;

}  // namespace edgesync::bench
