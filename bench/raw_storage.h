// What the disk and SQLite alone can do: a write+fdatasync loop, and inserts into a database
// opened exactly as the agent opens its outbox (storage::open_outbox_database).
#pragma once

#include <cstdint>
#include <string>

namespace edgesync::bench {

struct SyncResult {
  double per_s = 0, p50_ms = 0, p99_ms = 0;
  int64_t n = 0;
};

// write 300 B + fdatasync in a loop for `seconds`.
SyncResult raw_fdatasync(const std::string& path, double seconds);

struct SqliteResult {
  double rows_per_s = 0;
  int64_t rows = 0;
  double elapsed_s = 0;
  int64_t counted_bytes = 0;  // what one row counts against storage.max_bytes
  double cpu_s = 0;           // the inserting thread's CPU (user + system)
  int64_t written_bytes = 0;  // the bench process's write_bytes over the run (-1: unreadable)

  // Adds another slice of the same case.
  void merge(const SqliteResult& o);
  double cpu_us_per_row() const;  // -1 without rows
};

// One prepared storage::kInsertEventSql per row, `rows_per_txn` rows per BEGIN IMMEDIATE ...
// COMMIT, and a PASSIVE checkpoint when the agent's writer would take one (storage's
// CheckpointPolicy with the agent's default threshold; SQLite's own auto-checkpoint is off in
// storage::Database). The ids are those of `id_runs` producers in turn ("<prefix>-<producer>-
// <n>", as the bench's producers send them): 1 appends every id at one end of the id index; 64
// puts the rows of a 64-row transaction in 64 places of it, as 64 lock-step producers do.
SqliteResult raw_sqlite(const std::string& path, int rows_per_txn, double seconds,
                        int64_t max_rows, int id_runs = 1);

// The same, one row per transaction, paced at `rate` rows/s for `seconds` (sleeping until each
// slot of a steady clock): the floor for the agent's CPU and bytes written per event at that
// pace, where each event is committed on its own and nothing is amortised over a batch.
SqliteResult raw_sqlite_paced(const std::string& path, int rate, double seconds);

}  // namespace edgesync::bench
