// A consistent copy of a live outbox for a technician to carry away (edgesync export), taken
// beside the running agent without stalling it.
//
// The copy is SQLite's online backup from a read-only connection holding one read transaction:
// in WAL mode the agent's writer carries on beside it (its commits go to the WAL; its passive
// checkpoints stop short of the copy's snapshot until the copy ends, so the WAL grows for that
// long), and the copy is exactly that snapshot. It goes a bounded number of pages per step
// with a pause between steps, so a large outbox on a small box's flash does not take the
// I/O the agent's syncs need. The copy is then made a single file (rollback journal, not WAL),
// optionally trimmed to recent events, and checked.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "platform/status.h"

namespace edgesync::storage {

struct ExportOptions {
  std::string source;  // the outbox database
  std::string out;     // the copy: must not exist; created mode 0600 (it holds business data)
  // Set: events received before this Unix time (ms), and dead letters that failed before it,
  // are deleted from the copy, which is then vacuumed (their pages are gone from the file too).
  std::optional<int64_t> keep_since_ms;
  int pages_per_step = 256;
  std::chrono::milliseconds pause{5};
};

// Figures read from the finished copy (never from the live outbox).
struct ExportFigures {
  std::string incarnation;
  int64_t schema_version = 0;
  int64_t delivered_seq = 0;  // the watermark in the copy
  int64_t first_seq = 0;      // 0: no event in the copy
  int64_t last_seq = 0;
  int64_t events = 0;
  int64_t pending = 0;    // events above the watermark
  int64_t delivered = 0;  // events at or below it (the kept history)
  int64_t dead_letters = 0;
  int64_t removed_events = 0;  // by keep_since_ms
  int64_t removed_dead_letters = 0;
  int64_t pages_copied = 0;
  int64_t bytes = 0;        // the copy's size
  std::string quick_check;  // "ok", or SQLite's findings, one per line
};

// InvalidArgument if `out` exists (nothing touched), NotFound if `source` does not; on any
// other failure the partial copy is removed. A copy whose quick_check is not "ok" is kept
// (with the figures) for whoever reads it to judge.
Result<ExportFigures> export_outbox(const ExportOptions& options);

// Writes `text` to a new file, mode 0600, synced. InvalidArgument if `path` exists.
Status write_new_private_file(const std::string& path, const std::string& text);

}  // namespace edgesync::storage
