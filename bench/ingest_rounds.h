// The producer cases with the hub connected and their raw counterparts, each measured in
// slices that alternate with the other, so that a disk or CPU disturbance from other work on the
// machine hits both sides of a ratio alike.
#pragma once

#include <cstdint>

#include "bench/ingest.h"
#include "bench/options.h"
#include "bench/raw_storage.h"
#include "tests/harness/mosquitto_broker.h"
#include "tests/harness/temp_dir.h"

namespace edgesync::bench {

struct IngestFigures {
  SqliteResult sq1, sq1000, sq64;
  // 64 rows per transaction with the ids the 64 producers send, one of each in turn: the same
  // rows as the agent's, where sq64 appends every id at one end of the id index.
  SqliteResult sq64_producers;
  IngestResult echo64;  // the do-nothing server, 64 lock-step clients
  IngestResult one, eight, many, many_hub_down, one_hub_down;
  int64_t stored_bytes = 0;  // counted size of one of these events

  // The 64-producer floor: a lock-step socket round trip and a 64-row commit in series.
  double floor64() const {
    return 1.0 / (1.0 / echo64.per_s + 1.0 / sq64.rows_per_s);
  }
  // The same with the commit of the producers' own ids (sq64_producers).
  double floor64_producers_ids() const {
    return 1.0 / (1.0 / echo64.per_s + 1.0 / sq64_producers.rows_per_s);
  }
};

// A fresh agent in <root>/ingest, warmed up past keep_delivered; the echo server beside it.
// Leaves the broker stopped (the last cases run with the hub down).
IngestFigures ingest_rounds(const Options& opt, test::TempDir& root,
                            test::MosquittoBroker& broker);

}  // namespace edgesync::bench
